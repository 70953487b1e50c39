/* The dynamic scenario form, progressively enhanced: conditions (JSON Logic, same operators as the server),
   validation while typing (the server's /validate, debounced), typeahead pickers, imports from sources and CSV.
   Without this script the form still works: every field is a plain input and the server validates on submit. */
(function () {
  "use strict";
  var form = document.getElementById("scenario-form");
  var schemaNode = document.getElementById("form-schema");
  if (!form || !schemaNode || !window.jsonLogic) { return; }
  var schema = JSON.parse(schemaNode.textContent);
  var fieldsByKey = {};
  schema.fields.forEach(function (f) { fieldsByKey[f.key] = f; });
  var sourcesInput = document.getElementById("value-sources");
  var readonly = !document.getElementById("save-scenario");
  var connectorNames = {};
  schema.fields.forEach(function (f) {
    ((f.source || {}).connectors || []).forEach(function (c) { connectorNames[c.connector] = c.name; });
  });

  function csrf() {
    var input = form.querySelector("input[name=csrfmiddlewaretoken]");
    return input ? input.value : "";
  }
  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    if (text !== undefined) { node.textContent = text; }
    return node;
  }
  function input(key, suffix) { return form.elements[key + (suffix || "")]; }

  // ---- CSV helpers shared by the stakeholder and channel line formats (the server parses the same lines).
  function parseLine(line) {
    var cells = [], cur = "", quoted = false;
    for (var i = 0; i < line.length; i++) {
      var ch = line[i];
      if (quoted) {
        if (ch === '"' && line[i + 1] === '"') { cur += '"'; i++; }
        else if (ch === '"') { quoted = false; }
        else { cur += ch; }
      } else if (ch === '"') { quoted = true; }
      else if (ch === ",") { cells.push(cur.trim()); cur = ""; }
      else { cur += ch; }
    }
    cells.push(cur.trim());
    return cells;
  }
  function csvCell(value) {
    value = String(value || "");
    return /[",\n]/.test(value) ? '"' + value.replace(/"/g, '""') + '"' : value;
  }
  function lines(text) {
    return (text || "").split(/\r?\n/).map(parseLine).filter(function (c) { return c.some(function (x) { return x; }); });
  }

  // ---- Values as JSON, for conditions (the server reads the same inputs with forms_engine.forms.values_from_post).
  function collectValues() {
    var values = {};
    schema.fields.forEach(function (f) {
      var k = f.key, node;
      if (f.type === "money") {
        node = input(k, "__amount");
        if (node && node.value) { values[k] = { amount: Number(node.value), currency: (input(k, "__currency") || {}).value || "USD" }; }
      } else if (f.type === "document_link") {
        node = input(k, "__url");
        if (node && node.value) { values[k] = { url: node.value, title: (input(k, "__title") || {}).value || "" }; }
      } else if (f.type === "multi_select") {
        var chosen = Array.prototype.slice.call(form.querySelectorAll("[name='" + k + "']"))
          .reduce(function (acc, n) {
            if (n.tagName === "SELECT") { Array.prototype.forEach.call(n.selectedOptions, function (o) { acc.push(o.value); }); }
            else if (n.checked) { acc.push(n.value); }
            return acc;
          }, []);
        if (chosen.length) { values[k] = chosen; }
      } else if (f.type === "boolean") {
        node = form.querySelector("input[type=checkbox][name='" + k + "']");
        values[k] = !!(node && node.checked);
      } else if (f.type === "stakeholder_list") {
        node = input(k);
        var people = lines(node && node.value).map(function (c) { return { name: c[0] || "", email: c[1] || "", role: c[2] || "member", department: departmentOf(k, c[1]) }; });
        if (people.length) { values[k] = people; }
      } else if (f.type === "channel") {
        node = input(k);
        var channels = lines(node && node.value).map(function (c) { return { name: c[0], external_id: c[1] || "", integration_id: c[2] || "" }; });
        if (channels.length) { values[k] = f.multiple ? channels : channels[0]; }
      } else if (f.type === "person") {
        node = input(k);
        if (node && node.value) { values[k] = { email: node.value, person_id: (input(k, "__person_id") || {}).value || null }; }
      } else if (f.type === "number") {
        node = input(k);
        if (node && node.value !== "") { values[k] = Number(node.value); }
      } else {
        node = input(k);
        if (node && node.value) { values[k] = node.value; }
      }
    });
    return values;
  }
  var departments = {};  // email -> department, learnt from imports, so "department Legal" rules work client-side too
  function departmentOf(key, email) { return departments[(email || "").toLowerCase()] || ""; }

  // ---- Conditions: a field is visible when its JSON Logic holds over the values of visible fields.
  function applyConditions() {
    var values = collectValues();
    var visible = {};
    function isVisible(key, trail) {
      if (key in visible) { return visible[key]; }
      var f = fieldsByKey[key];
      if (!f.visible_if) { visible[key] = true; return true; }
      if (trail.indexOf(key) >= 0) { return false; }
      var data = {};
      Object.keys(values).forEach(function (k) { if (fieldsByKey[k] && isVisible(k, trail.concat([key]))) { data[k] = values[k]; } });
      visible[key] = window.jsonLogic.truthy(window.jsonLogic.apply(f.visible_if, data));
      return visible[key];
    }
    schema.fields.forEach(function (f) {
      var shown = isVisible(f.key, []);
      var node = document.getElementById("field-" + f.key);
      if (node) { node.hidden = !shown; }
    });
    Array.prototype.forEach.call(form.querySelectorAll("fieldset.section"), function (section) {
      var fields = section.querySelectorAll(".field");
      section.hidden = fields.length > 0 && Array.prototype.every.call(fields, function (n) { return n.hidden; });
    });
    return visible;
  }

  // ---- Validation while typing: the server is the one authority, so the page shows exactly the API's messages.
  var timer = null, touched = {}, sequence = 0;
  function scheduleValidate(key) {
    if (key) { touched[key] = true; }
    clearTimeout(timer);
    timer = setTimeout(validateNow, 350);
  }
  function validateNow() {
    var mine = ++sequence;
    return fetch(form.dataset.validateUrl, {
      method: "POST", body: new FormData(form), credentials: "same-origin",
      headers: { "X-CSRFToken": csrf(), "Accept": "application/json" }
    }).then(function (r) { return r.json(); }).then(function (result) {
      if (mine !== sequence || !result || !result.errors) { return; }
      showErrors(result.errors, false);
    }).catch(function () { /* offline: the server validates again on save */ });
  }
  function showErrors(errors, all) {
    schema.fields.forEach(function (f) {
      var list = document.getElementById("errors-" + f.key);
      if (!list) { return; }
      var messages = (all || touched[f.key] || rulesTouch(f.key)) ? (errors[f.key] || []) : [];
      list.innerHTML = "";
      messages.forEach(function (m) { list.appendChild(el("li", {}, m)); });
      list.parentNode.classList.toggle("has-errors", messages.length > 0);
    });
    var general = document.getElementById("non-field-errors");
    if (general) {
      general.innerHTML = "";
      (errors.non_field_errors || []).forEach(function (m) { general.appendChild(el("li", {}, m)); });
    }
    var summary = document.getElementById("form-summary");
    if (summary) {
      var first = summary.querySelector("p");
      if (first) { first.remove(); }
      summary.hidden = !(errors.non_field_errors || []).length;
    }
  }
  function rulesTouch(key) {
    // A cross-field rule about this field speaks as soon as the person touched any field the rule reads.
    return (schema.rules || []).some(function (r) { return (r.fields || []).indexOf(key) >= 0 && (r.fields || []).some(function (k) { return touched[k]; }); });
  }

  // ---- Provenance kept in one hidden JSON input; the server verifies every item against the records store.
  function sources() { try { return JSON.parse(sourcesInput.value || "{}"); } catch (e) { return {}; } }
  function addSources(key, items, origin) {
    var all = sources();
    var entry = all[key] || { origin: origin, items: [] };
    var seen = {};
    entry.items.forEach(function (i) { seen[i.match] = true; });
    items.forEach(function (i) { if (!seen[i.match]) { entry.items.push(i); seen[i.match] = true; } });
    entry.origin = origin;
    all[key] = entry;
    sourcesInput.value = JSON.stringify(all);
  }

  // ---- Stakeholder lists: a table over the textarea (which remains the submitted value).
  function stakeholderWidget(f) {
    var container = document.getElementById("field-" + f.key);
    var area = input(f.key);
    if (!container || !area) { return null; }
    area.hidden = true;
    var help = container.querySelector(".nojs-help");
    if (help) { help.hidden = true; }
    var table = el("table", { "class": "stakeholders stack compact", "data-field": f.key });
    table.appendChild(el("thead")).appendChild(el("tr")).innerHTML = "<th>Name</th><th>Email</th><th>Role</th><th>From</th><th></th>";
    var body = table.appendChild(el("tbody"));
    area.parentNode.insertBefore(table, area);
    var origin = {};
    (sources()[f.key] || { items: [] }).items.forEach(function (i) { origin[i.match] = i.source; });
    function rows() { return lines(area.value).map(function (c) { return { name: c[0] || "", email: (c[1] || "").toLowerCase(), role: c[2] || "member" }; }); }
    function write(list) {
      area.value = list.map(function (p) { return [p.name, p.email, p.role].map(csvCell).join(","); }).join("\n");
      render();
      applyConditions();
      scheduleValidate(f.key);
    }
    function render() {
      body.innerHTML = "";
      table.hidden = !rows().length;  // no empty header over nobody
      rows().forEach(function (p, index) {
        var tr = body.appendChild(el("tr", { "data-email": p.email }));
        tr.appendChild(el("td", { "data-label": "Name" }, p.name));
        tr.appendChild(el("td", { "data-label": "Email" }, p.email));
        var roleCell = tr.appendChild(el("td", { "data-label": "Role" }));
        var select = roleCell.appendChild(el("select", { "aria-label": "Role of " + (p.name || p.email), "class": "role-select" }));
        (f.options || []).forEach(function (o) {
          var opt = select.appendChild(el("option", { value: o.value }, o.label));
          if (o.value === p.role) { opt.selected = true; }
        });
        select.disabled = readonly;
        select.addEventListener("change", function () { var list = rows(); list[index].role = select.value; write(list); });
        tr.appendChild(el("td", { "class": "small muted", "data-label": "From", "data-source": origin[p.email] || "manual" }, connectorNames[origin[p.email]] || (origin[p.email] === "csv" ? "CSV" : origin[p.email] === "directory" ? "Directory" : origin[p.email] || "typed")));
        var remove = tr.appendChild(el("td")).appendChild(el("button", { type: "button", "class": "link-button" }, "Remove"));
        remove.hidden = readonly;
        remove.addEventListener("click", function () { var list = rows(); list.splice(index, 1); write(list); });
      });
    }
    function add(people, items, originKind) {
      var list = rows();
      var known = {};
      list.forEach(function (p) { known[p.email] = true; });
      people.forEach(function (p) {
        var email = (p.email || "").toLowerCase();
        if (p.department) { departments[email] = p.department; }
        if (!email || known[email]) { return; }
        known[email] = true;
        list.push({ name: p.name || email, email: email, role: p.role || roleFor(p.department) });
        origin[email] = p.source || originKind;
      });
      if (items && items.length) { addSources(f.key, items, originKind); }
      write(list);
    }
    render();
    if (!readonly) {
      var search = el("input", { type: "search", placeholder: "Add a person: type a name, email or department", "class": "typeahead", "aria-label": "Add a person to " + f.label, autocomplete: "off" });
      table.parentNode.insertBefore(search, area);
      typeahead(search, f, function (option) {
        add([{ name: option.data.name, email: option.data.email, department: option.data.department, source: "directory" }], [], "manual");
        search.value = "";
      });
    }
    return { add: add };
  }
  // ---- Channels: chips with names over the textarea (which remains the submitted value, ids and all).
  function channelWidget(f) {
    var container = document.getElementById("field-" + f.key);
    var area = input(f.key);
    if (!container || !area) { return null; }
    area.hidden = true;
    var help = container.querySelector(".nojs-help");
    if (help) { help.hidden = true; }
    var chips = el("ul", { "class": "chips channel-chips", "data-field": f.key, "aria-label": f.label });
    area.parentNode.insertBefore(chips, area);
    function render() {
      chips.innerHTML = "";
      var rows = lines(area.value);
      if (!rows.length) { chips.appendChild(el("li", { "class": "muted small" }, "No channel yet: import from Slack below.")); }
      rows.forEach(function (c, index) {
        var chip = chips.appendChild(el("li", { "class": "chip", "data-name": c[0] }));
        chip.appendChild(el("span", {}, "#" + c[0].replace(/^#/, "")));
        if (!readonly) {
          var remove = chip.appendChild(el("button", { type: "button", "aria-label": "Remove #" + c[0] }, "×"));
          remove.addEventListener("click", function () {
            var list = lines(area.value);
            list.splice(index, 1);
            area.value = list.map(function (x) { return x.map(csvCell).join(","); }).join("\n");
            render();
            applyConditions();
            scheduleValidate(f.key);
          });
        }
      });
    }
    render();
    return { render: render };
  }
  function roleFor(department) { return schema.department_roles[(department || "").toLowerCase()] || "member"; }

  // ---- Typeahead over the options API (records store / people directory, never a vendor).
  // Arrow keys move through the suggestions, Enter picks one, Escape closes; Enter in the box never submits the form.
  var typeaheadCount = 0;
  function typeahead(box, f, onPick) {
    typeaheadCount += 1;
    var listId = "typeahead-" + typeaheadCount;
    var list = el("ul", { "class": "typeahead-results", role: "listbox", id: listId });
    list.hidden = true;
    box.parentNode.insertBefore(list, box.nextSibling);
    box.setAttribute("role", "combobox");
    box.setAttribute("aria-autocomplete", "list");
    box.setAttribute("aria-controls", listId);
    box.setAttribute("aria-expanded", "false");
    var pending = null;
    var options = [];
    var active = -1;
    function show(visible) { list.hidden = !visible; box.setAttribute("aria-expanded", visible ? "true" : "false"); }
    function highlight(index) {
      var items = list.querySelectorAll(".typeahead-option");
      active = items.length ? (index + items.length) % items.length : -1;
      Array.prototype.forEach.call(items, function (item, i) {
        item.classList.toggle("active", i === active);
        item.setAttribute("aria-selected", i === active ? "true" : "false");
      });
      if (active >= 0) { box.setAttribute("aria-activedescendant", items[active].id); items[active].scrollIntoView({ block: "nearest" }); }
      else { box.removeAttribute("aria-activedescendant"); }
    }
    function pick(option) { show(false); active = -1; onPick(option); }
    box.addEventListener("keydown", function (e) {
      if (e.key === "ArrowDown" || e.key === "ArrowUp") {
        if (list.hidden || !options.length) { return; }
        e.preventDefault();
        highlight(active + (e.key === "ArrowDown" ? 1 : -1));
      } else if (e.key === "Enter") {
        e.preventDefault();  // never submits the form from here
        if (!list.hidden && options.length) { pick(options[active >= 0 ? active : 0]); }
      } else if (e.key === "Escape") {
        show(false);
      }
    });
    box.addEventListener("blur", function () { setTimeout(function () { show(false); }, 200); });
    box.addEventListener("input", function () {
      clearTimeout(pending);
      var q = box.value.trim();
      if (!q || q.indexOf("@") > 0 && f.type === "person") { show(false); return; }
      pending = setTimeout(function () {
        fetch(f.options_url + "?limit=8&q=" + encodeURIComponent(q), { credentials: "same-origin", headers: { Accept: "application/json" } })
          .then(function (r) { return r.json(); })
          .then(function (data) {
            list.innerHTML = "";
            options = data.results || [];
            active = -1;
            options.forEach(function (option, index) {
              var item = list.appendChild(el("li", { role: "option", id: listId + "-" + index, "class": "typeahead-option", "aria-selected": "false" }));
              item.appendChild(el("strong", {}, option.label));
              if (option.description) { item.appendChild(el("span", { "class": "small muted" }, " " + option.description)); }
              item.addEventListener("mousedown", function (e) { e.preventDefault(); });  // keep focus in the box
              item.addEventListener("click", function () { pick(option); });
            });
            show(options.length > 0);
          });
      }, 150);
    });
  }

  function personWidget(f) {
    var box = input(f.key);
    if (!box || readonly || !f.options_url) { return; }
    typeahead(box, f, function (option) {
      box.value = option.data.email;
      input(f.key, "__person_id").value = option.data.person_id;
      var name = box.parentNode.querySelector(".person-name") || box.parentNode.appendChild(el("span", { "class": "small muted person-name" }));
      name.textContent = option.data.name;
      applyConditions();
      scheduleValidate(f.key);
    });
    box.addEventListener("input", function () { input(f.key, "__person_id").value = ""; });
  }

  // ---- Imports: choose records from a source (records store), or upload a CSV.
  function importPanel(f, connector, widget) {
    var container = document.getElementById("field-" + f.key);
    var panel = container.querySelector(".import-panel");
    var status = container.querySelector(".tool-status");
    panel.innerHTML = "";
    panel.hidden = false;
    var heading = panel.appendChild(el("p", { "class": "small" }, "Loading…"));
    var url = f.options_url + "?limit=50&connector=" + encodeURIComponent(connector);
    fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } }).then(function (r) { return r.json(); }).then(function (data) {
      var results = data.results || [];
      heading.textContent = results.length ? "Choose what to import (" + results.length + " available):" : "Nothing synced from this source yet. Try “Sync the connected sources now”.";
      var tools = results.length > 1 ? panel.appendChild(el("div", { "class": "import-tools" })) : null;
      var filter = tools ? tools.appendChild(el("input", { type: "search", "class": "import-filter", placeholder: "Search", "aria-label": "Search what to import" })) : null;
      var all = tools ? tools.appendChild(el("button", { type: "button", "class": "link-button import-all" }, "Select all")) : null;
      var none = tools ? tools.appendChild(el("button", { type: "button", "class": "link-button import-none" }, "None")) : null;
      var list = panel.appendChild(el("ul", { "class": "import-choices" }));
      results.forEach(function (option) {
        var label = list.appendChild(el("li")).appendChild(el("label", { "class": "check" }));
        var box = label.appendChild(el("input", { type: "checkbox", value: option.value, "data-label": option.label }));
        box.checked = false;  // nothing is imported unless chosen
        label.appendChild(document.createTextNode(" " + option.label + (option.description ? " — " + option.description : "")));
      });
      function visibleBoxes() {
        return Array.prototype.filter.call(list.querySelectorAll("li"), function (li) { return !li.hidden; }).map(function (li) { return li.querySelector("input"); });
      }
      function counted() { if (go) { var n = list.querySelectorAll("input:checked").length; go.textContent = n ? "Import " + n + " selected" : "Import selected"; go.disabled = !n; } }
      if (filter) {
        filter.addEventListener("keydown", function (e) { if (e.key === "Enter") { e.preventDefault(); } });
        filter.addEventListener("input", function () {
          var q = filter.value.toLowerCase();
          Array.prototype.forEach.call(list.querySelectorAll("li"), function (li) { li.hidden = q && li.textContent.toLowerCase().indexOf(q) < 0; });
        });
        all.addEventListener("click", function () { visibleBoxes().forEach(function (b) { b.checked = true; }); counted(); });
        none.addEventListener("click", function () { visibleBoxes().forEach(function (b) { b.checked = false; }); counted(); });
      }
      list.addEventListener("change", function () { counted(); });
      if (!results.length) { return; }
      var go = panel.appendChild(el("button", { type: "button", "class": "primary import-selected" }, "Import selected"));
      counted();
      go.addEventListener("click", function () {
        var chosen = Array.prototype.filter.call(list.querySelectorAll("input:checked"), function (b) { return true; }).map(function (b) { return b.value; });
        var body = { connector: connector };
        if (f.type === "person" || f.type === "stakeholder_list") { body.person_ids = chosen; } else { body.external_ids = chosen; }
        postJson(f.source.import_url, body).then(function (result) {
          panel.hidden = true;
          applyImport(f, widget, result, "import");
          status.textContent = "Imported " + (result.items || []).length + " from " + (connectorNames[connector] || connector) + ".";
        }).catch(function (message) { status.textContent = message; });
      });
    });
  }
  function postJson(url, body) {
    return fetch(url, {
      method: "POST", credentials: "same-origin", body: JSON.stringify(body),
      headers: { "Content-Type": "application/json", "X-CSRFToken": csrf(), Accept: "application/json" }
    }).then(function (r) {
      return r.json().then(function (data) { if (!r.ok) { throw (data.error && data.error.message) || "Import failed."; } return data; });
    });
  }
  function applyImport(f, widget, result, originKind) {
    var value = result.value;
    if (f.type === "stakeholder_list" && widget) {
      widget.add(value || [], result.items || [], originKind);
    } else if (f.type === "person" && value) {
      input(f.key).value = value.email;
      input(f.key, "__person_id").value = value.person_id || "";
      addSources(f.key, result.items || [], originKind);
    } else if (f.type === "channel") {
      var area = input(f.key);
      var existing = lines(area.value);
      var names = {};
      existing.forEach(function (c) { names[c[0]] = true; });
      (Array.isArray(value) ? value : (value ? [value] : [])).forEach(function (c) {
        if (!names[c.name]) { existing.push([c.name, c.external_id, c.integration_id]); names[c.name] = true; }
      });
      area.value = existing.map(function (c) { return c.map(csvCell).join(","); }).join("\n");
      addSources(f.key, result.items || [], originKind);
      if (widget && widget.render) { widget.render(); }
    } else if (f.type === "multi_select" || f.type === "select") {
      var select = input(f.key);
      (Array.isArray(value) ? value : [value]).forEach(function (v) {
        if (v === null || v === undefined) { return; }
        var option = Array.prototype.find.call(select.options, function (o) { return o.value === String(v); });
        if (!option) { option = select.appendChild(el("option", { value: String(v) }, String(v))); }
        option.selected = true;
      });
      addSources(f.key, result.items || [], originKind);
    }
    applyConditions();
    scheduleValidate(f.key);
  }
  function csvUpload(f, fileInput, widget) {
    var container = document.getElementById("field-" + f.key);
    var status = container.querySelector(".tool-status");
    var file = fileInput.files[0];
    if (!file) { return; }
    var data = new FormData();
    data.append("file", file);
    fetch(f.csv_import_url, { method: "POST", body: data, credentials: "same-origin", headers: { "X-CSRFToken": csrf(), Accept: "application/json" } })
      .then(function (r) { return r.json().then(function (d) { return { ok: r.ok, data: d }; }); })
      .then(function (res) {
        if (!res.ok) { status.textContent = (res.data.error && res.data.error.message) || "The CSV could not be read."; return; }
        applyImport(f, widget, res.data, "csv");
        var errors = res.data.errors || [];
        status.innerHTML = "";
        status.appendChild(el("span", {}, "Imported " + (res.data.items || []).length + " from " + file.name + "." + (errors.length ? " " + errors.length + " row(s) skipped:" : "")));
        if (errors.length) {
          var ul = status.appendChild(el("ul", { "class": "errorlist csv-errors" }));
          errors.forEach(function (e) { ul.appendChild(el("li", {}, e.message)); });
        }
        fileInput.value = "";
      });
  }
  function refresh(f) {
    var status = document.getElementById("field-" + f.key).querySelector(".tool-status");
    fetch(f.source.refresh_url, { method: "POST", credentials: "same-origin", headers: { "X-CSRFToken": csrf(), Accept: "application/json" } })
      .then(function (r) { return r.json().then(function (d) { return { ok: r.ok, data: d }; }); })
      .then(function (res) {
        status.textContent = res.ok ? "Sync started (" + res.data.jobs.length + " source" + (res.data.jobs.length === 1 ? "" : "s") + "). New records appear in the pickers when it finishes."
          : ((res.data.error && res.data.error.message) || "Could not start a sync.");
      });
  }

  // ---- Wire everything.
  schema.fields.forEach(function (f) {
    var container = document.getElementById("field-" + f.key);
    if (!container) { return; }
    var tools = container.querySelector(".field-tools");
    if (tools) { tools.hidden = false; }
    var widget = null;
    if (f.type === "stakeholder_list") { widget = stakeholderWidget(f); }
    if (f.type === "person") { personWidget(f); }
    if (f.type === "channel") { widget = channelWidget(f); }
    Array.prototype.forEach.call(container.querySelectorAll("button.import-source"), function (button) {
      button.addEventListener("click", function () { importPanel(f, button.dataset.connector, widget); });
    });
    var fileInput = container.querySelector("input.import-csv");
    if (fileInput) { fileInput.addEventListener("change", function () { csvUpload(f, fileInput, widget); }); }
    var refreshButton = container.querySelector("button.refresh-source");
    if (refreshButton) { refreshButton.addEventListener("click", function () { refresh(f); }); }
    var hint = container.querySelector(".condition-hint");
    if (hint) { hint.hidden = true; }
  });
  form.addEventListener("input", function (e) {
    var field = e.target.closest(".field");
    applyConditions();
    if (field && !e.target.classList.contains("typeahead")) { scheduleValidate(field.dataset.key); }
  });
  form.addEventListener("change", function (e) {
    var field = e.target.closest(".field");
    applyConditions();
    if (field && !e.target.classList.contains("import-csv")) { scheduleValidate(field.dataset.key); }
  });
  applyConditions();
  if (document.querySelector(".field.has-errors")) { schema.fields.forEach(function (f) { touched[f.key] = true; }); }
  form.dataset.enhanced = "1";
})();
