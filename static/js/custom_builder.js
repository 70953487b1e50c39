// Custom connector builder: filter the endpoint list while typing (Enter never submits from the filter box).
(function () {
  "use strict";
  var filter = document.getElementById("operation-filter");
  if (!filter) return;
  filter.addEventListener("keydown", function (e) { if (e.key === "Enter") e.preventDefault(); });
  filter.addEventListener("input", function () {
    var q = filter.value.toLowerCase();
    Array.prototype.forEach.call(document.querySelectorAll("#operations tbody tr"), function (row) {
      row.hidden = q && row.textContent.toLowerCase().indexOf(q) < 0;
    });
  });
})();
