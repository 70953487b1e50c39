// The marketplace search filters the cards as you type (the form still works without script: ?q= on the server).
(function () {
  "use strict";
  var box = document.getElementById("q");
  var grid = document.getElementById("connector-grid");
  var none = document.getElementById("no-match");
  if (!box || !grid) return;
  function filter() {
    var words = box.value.toLowerCase().split(/\s+/).filter(Boolean);
    var shown = 0;
    Array.prototype.forEach.call(grid.querySelectorAll("li.connector"), function (card) {
      var text = card.getAttribute("data-search") || "";
      var match = words.every(function (w) { return text.indexOf(w) >= 0; });
      card.hidden = !match;
      if (match) shown += 1;
    });
    if (none) none.hidden = shown > 0;
  }
  box.addEventListener("input", filter);
  box.form.addEventListener("submit", function (event) { event.preventDefault(); filter(); });
})();
