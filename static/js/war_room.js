// War room live updates: poll the run's API every 2 s and redraw from JSON (textContent only, never innerHTML).
(function () {
  "use strict";
  var root = document.getElementById("war-room");
  if (!root) return;
  var url = root.getAttribute("data-run-url");
  var timer = null;
  var POLL_MS = 2000;

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (key) { node.setAttribute(key, attrs[key]); });
    (children || []).forEach(function (child) {
      node.appendChild(typeof child === "string" ? document.createTextNode(child) : child);
    });
    return node;
  }

  function badge(status, text) { return el("span", { "class": "badge badge-" + status }, [text || status]); }

  function safeUrl(href) { return /^https?:\/\//i.test(href || "") || (href || "").charAt(0) === "/" ? href : ""; }

  function replace(id, nodes) {
    var target = document.getElementById(id);
    if (!target) return;
    while (target.firstChild) target.removeChild(target.firstChild);
    nodes.forEach(function (node) { target.appendChild(node); });
  }

  function link(href, text) {
    var safe = safeUrl(href);
    return safe ? el("a", { href: safe }, [text]) : document.createTextNode(text);
  }

  function render(run) {
    var status = document.getElementById("run-status");
    if (status) { status.className = "badge badge-" + run.status; status.textContent = run.status; }
    var live = document.getElementById("run-live");
    if (live) live.textContent = run.is_live ? "· updating live" : "";
    var saved = run.time_saved || {};
    replace("time-saved", saved.activation_ms === null || saved.activation_ms === undefined
      ? [document.createTextNode("Activation in progress…")]
      : [document.createTextNode("Activated in "), el("strong", {}, [saved.activation_ms + " ms"]),
         document.createTextNode(" — about "), el("strong", {}, [saved.saved_minutes + " minutes"]),
         document.createTextNode(" saved against " + saved.baseline_minutes + " minutes by hand (" + saved.saved_percent + "%).")]);
    replace("attention", run.attention.length
      ? run.attention.map(function (a) { return el("li", { "class": "error" }, [a.message]); })
      : [el("li", { "class": "muted" }, ["Nothing needs a person right now."])]);
    replace("steps", run.steps.map(function (step) {
      var result = el("td", {}, []);
      step.items.forEach(function (item) {
        var text = (item.data && item.data.key) || (step.items.length > 1 && item.title) || item.external_id;
        if (item.external_id) { result.appendChild(link(item.external_url, text)); result.appendChild(document.createTextNode(" ")); }
        if (item.last_error) { result.appendChild(el("span", { "class": "error" }, [item.last_error])); result.appendChild(document.createTextNode(" ")); }
      });
      var statusCell = el("td", {}, [badge(step.status)]);
      if (step.items.length > 1) statusCell.appendChild(el("span", { "class": "muted" }, [" " + (step.counts.succeeded || 0) + "/" + step.items.length]));
      return el("tr", { "data-step": step.key }, [
        el("td", {}, [step.name]), el("td", {}, [step.integration || step.connector_key]), statusCell,
        el("td", {}, [step.duration_ms === null ? "" : step.duration_ms + " ms"]), result]);
    }));
    replace("tasks", run.tasks.length ? run.tasks.map(function (task) {
      var what = el("td", {}, [link(task.url, task.external_key || task.title)]);
      if (task.external_key) what.appendChild(document.createTextNode(" " + task.title));
      var statusCell = el("td", {}, [badge(task.is_done ? "done" : "pending", task.status)]);
      if (task.status_source && task.status_source !== "created") {
        statusCell.appendChild(el("span", { "class": "muted small status-source" }, [" via " + (task.status_source === "poll" ? "polling" : task.status_source)]));
      }
      return el("tr", { "data-task": task.id }, [what, el("td", {}, [task.kind]), el("td", {}, [task.owner]), statusCell]);
    }) : [el("tr", {}, [el("td", { colspan: "4", "class": "muted" }, ["Nothing created yet."])])]);
    var undo = run.undo || { items: [] };
    var undoCard = document.getElementById("undo-card");
    if (undoCard && undo.requested_at) {
      undoCard.hidden = false;
      replace("undo-items", undo.items.map(function (item) {
        var statusCell = el("td", {}, [badge(item.status)]);
        if (item.last_error) statusCell.appendChild(el("span", { "class": "error" }, [" " + item.last_error]));
        return el("tr", { "data-undo": item.external_id }, [el("td", {}, [item.label]), el("td", {}, [link(item.external_url, item.object)]),
          el("td", {}, [item.description]), statusCell]);
      }));
    }
    replace("timeline", run.timeline.map(function (event) {
      var at = new Date(event.at);
      return el("li", {}, [el("time", { datetime: event.at }, [at.toLocaleTimeString()]), " " + event.message]);
    }));
  }

  function poll() {
    fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) { if (!response.ok) throw new Error("HTTP " + response.status); return response.json(); })
      .then(function (run) {
        render(run);
        // Keep polling while the run moves and for a while after, so webhook status updates still show up.
        timer = window.setTimeout(poll, run.is_live ? POLL_MS : POLL_MS * 2);
      })
      .catch(function () { timer = window.setTimeout(poll, POLL_MS * 3); });
  }

  timer = window.setTimeout(poll, root.getAttribute("data-live") === "true" ? 300 : POLL_MS);
  window.addEventListener("beforeunload", function () { if (timer) window.clearTimeout(timer); });
})();
