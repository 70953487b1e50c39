// A searchable list of choices read from the vendor: typing filters the options (Enter never submits from the box).
(function () {
  "use strict";
  Array.prototype.forEach.call(document.querySelectorAll("[data-searchable]"), function (box) {
    var filter = box.querySelector(".choice-filter");
    if (!filter) return;
    filter.addEventListener("keydown", function (e) { if (e.key === "Enter") e.preventDefault(); });
    filter.addEventListener("input", function () {
      var q = filter.value.toLowerCase();
      Array.prototype.forEach.call(box.querySelectorAll("li"), function (li) { li.hidden = q && li.textContent.toLowerCase().indexOf(q) < 0; });
    });
  });
})();
