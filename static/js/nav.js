// The navigation collapses behind "Menu" on narrow screens (CSS keys off the "js" class; without script it stays open).
(function () {
  "use strict";
  document.documentElement.classList.add("js");
  document.addEventListener("DOMContentLoaded", function () {
    var bar = document.querySelector(".topbar");
    var toggle = document.getElementById("menu-toggle");
    if (!bar || !toggle) return;
    toggle.addEventListener("click", function () {
      var open = bar.classList.toggle("open");
      toggle.setAttribute("aria-expanded", open ? "true" : "false");
    });
  });
})();
