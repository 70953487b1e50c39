// The document field's picker: browse a connected tool's sites, libraries and folders, choose a file; fill fields from a workbook.
(function () {
  "use strict";
  function csrf() {
    var input = document.querySelector("input[name=csrfmiddlewaretoken]");
    return input ? input.value : "";
  }
  function el(tag, text, cls) {
    var node = document.createElement(tag);
    if (text) { node.textContent = text; }
    if (cls) { node.className = cls; }
    return node;
  }
  function errorText(body, fallback) {
    var error = body && body.error;
    if (!error) { return fallback; }
    var details = [];
    Object.keys(error.fields || {}).forEach(function (k) { (error.fields[k] || []).forEach(function (m) { details.push(m); }); });
    return details.length > 1 ? details.join(" ") : error.message || fallback;
  }

  Array.prototype.forEach.call(document.querySelectorAll(".document-picker"), function (picker) {
    var tools = picker.querySelector(".document-tools");
    if (!tools) { return; }
    tools.hidden = false;
    var panel = tools.querySelector(".doc-panel"), list = tools.querySelector(".doc-list"), status = tools.querySelector(".doc-status");
    var up = tools.querySelector(".doc-up"), search = tools.querySelector(".doc-search"), tool = tools.querySelector(".doc-integration");
    var trail = [], timer = null;
    function part(name) { return picker.querySelector("input[data-part=" + name + "]"); }

    function load(folder, query) {
      status.textContent = "Loading…";
      var url = "/api/integrations/" + encodeURIComponent(tool.value) + "/documents?folder=" + encodeURIComponent(folder || "") + "&q=" + encodeURIComponent(query || "");
      fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (r) { return r.json().then(function (body) { return { ok: r.ok, body: body }; }); })
        .then(function (res) {
          if (!res.ok) { status.textContent = errorText(res.body, "The folder could not be read."); return; }
          list.textContent = "";
          status.textContent = res.body.items.length ? "" : "Nothing here.";
          res.body.items.forEach(function (item) {
            var li = el("li"), button = el("button", (item.is_folder ? "📁 " : "") + item.name, "link-button");
            button.type = "button";
            button.addEventListener("click", function () { return item.is_folder ? open(item) : choose(item); });
            li.appendChild(button);
            if (item.path) { li.appendChild(el("span", " " + item.path, "small muted")); }
            list.appendChild(li);
          });
          up.hidden = !trail.length;
        })
        .catch(function () { status.textContent = "The documents tool could not be reached."; });
    }
    function open(item) { trail.push(item.id); search.value = ""; load(item.id, ""); }
    function choose(item) {
      part("integration_id").value = tool.value;
      ["id", "name", "path", "url"].forEach(function (k) { part(k).value = item[k] || ""; });
      var chosen = picker.querySelector(".document-chosen");
      chosen.textContent = "";
      var link = el(item.url ? "a" : "span", item.name);
      if (item.url) { link.href = item.url; link.target = "_blank"; link.rel = "noopener noreferrer"; }
      chosen.appendChild(link);
      if (item.path) { chosen.appendChild(el("span", " in " + item.path, "small muted")); }
      panel.hidden = true;
      status.textContent = "Chosen: " + item.name + " (save the scenario to keep it).";
      picker.dispatchEvent(new Event("change", { bubbles: true }));
    }
    tools.querySelector(".doc-browse").addEventListener("click", function () {
      panel.hidden = !panel.hidden;
      if (!panel.hidden) { trail = []; load("", ""); }
    });
    up.addEventListener("click", function () { trail.pop(); load(trail[trail.length - 1] || "", ""); });
    tool.addEventListener("change", function () { trail = []; if (!panel.hidden) { load("", ""); } });
    search.addEventListener("input", function () {
      clearTimeout(timer);
      timer = setTimeout(function () { load(trail[trail.length - 1] || "", search.value.trim()); }, 300);
    });

    var fill = tools.querySelector(".doc-import");
    if (fill) {
      fill.addEventListener("click", function () {
        if (!part("id").value) { status.textContent = "Choose the workbook first."; return; }
        status.textContent = "Reading the workbook…";
        fetch(fill.dataset.url, {
          method: "POST",
          credentials: "same-origin",
          headers: { "Content-Type": "application/json", "X-CSRFToken": csrf(), Accept: "application/json" },
          body: JSON.stringify({
            integration: part("integration_id").value,
            document: { id: part("id").value, name: part("name").value },
            mapping: JSON.parse(fill.dataset.mapping)
          })
        })
          .then(function (r) { return r.json().then(function (body) { return { ok: r.ok, body: body }; }); })
          .then(function (res) {
            if (!res.ok) { status.textContent = errorText(res.body, "The workbook could not be imported."); return; }
            status.textContent = "Filled " + Object.keys(res.body.values).join(", ") + ". Reloading…";
            window.location.reload();
          })
          .catch(function () { status.textContent = "The import could not be sent."; });
      });
    }
  });
})();
