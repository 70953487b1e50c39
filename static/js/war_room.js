// War room live updates: while the run moves, fetch the server-rendered live part every 2 s and swap it in
// (the same template as the first render, so words, links and progress never differ between the two).
(function () {
  "use strict";
  var root = document.getElementById("war-room");
  var target = document.getElementById("war-room-live");
  if (!root || !target) return;
  var url = root.getAttribute("data-live-url");
  var POLL_MS = 2000;
  var timer = null;
  var openDetails = {};

  function rememberOpen() {
    openDetails = {};
    Array.prototype.forEach.call(target.querySelectorAll("details[open] > summary"), function (s) { openDetails[s.textContent] = true; });
  }

  function restoreOpen() {
    Array.prototype.forEach.call(target.querySelectorAll("details > summary"), function (s) {
      if (openDetails[s.textContent]) s.parentNode.open = true;
    });
  }

  function poll() {
    fetch(url, { credentials: "same-origin", headers: { Accept: "text/html" } })
      .then(function (response) {
        if (!response.ok) throw new Error("HTTP " + response.status);
        var live = response.headers.get("X-Run-Live") === "1";
        return response.text().then(function (html) { return { html: html, live: live }; });
      })
      .then(function (answer) {
        // Parsed as an inert document: nothing in it runs, and the CSP forbids inline script anyway.
        var doc = new DOMParser().parseFromString(answer.html, "text/html");
        rememberOpen();
        target.replaceChildren.apply(target, Array.prototype.slice.call(doc.body.childNodes));
        restoreOpen();
        // Keep polling after the run ends (slower), so status changes flowing back from the tools still show up.
        timer = window.setTimeout(poll, answer.live ? POLL_MS : POLL_MS * 3);
      })
      .catch(function () { timer = window.setTimeout(poll, POLL_MS * 3); });
  }

  timer = window.setTimeout(poll, root.getAttribute("data-live") === "true" ? 300 : POLL_MS);
  window.addEventListener("beforeunload", function () { if (timer) window.clearTimeout(timer); });
})();
