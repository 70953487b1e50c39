// Custom connector builder: filter the endpoint list while typing (Enter never submits from the filter box), and show
// the header/parameter fields only for API-key sign-in.
(function () {
  "use strict";
  var filter = document.getElementById("operation-filter");
  if (filter) {
    filter.addEventListener("keydown", function (e) { if (e.key === "Enter") e.preventDefault(); });
    filter.addEventListener("input", function () {
      var q = filter.value.toLowerCase();
      Array.prototype.forEach.call(document.querySelectorAll("#operations tbody tr"), function (row) {
        row.hidden = q && row.textContent.toLowerCase().indexOf(q) < 0;
      });
    });
  }
  var kind = document.getElementById("auth_kind");
  var keyFields = document.getElementById("api-key-fields");
  if (kind && keyFields) {
    var sync = function () { keyFields.hidden = keyFields.getAttribute("data-for").split(" ").indexOf(kind.value) < 0; };
    kind.addEventListener("change", sync);
    sync();
  }
})();
