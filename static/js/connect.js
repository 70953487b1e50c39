// The connect step shows only what the chosen sign-in needs: OAuth shows the permissions, a key shows its fields.
(function () {
  "use strict";
  var radios = document.querySelectorAll("input[name=auth_method]");
  var sections = document.querySelectorAll("[data-auth]");
  var button = document.getElementById("connect-continue");
  if (!radios.length) return;
  var oauthLabel = button ? button.getAttribute("data-oauth-label") : "";
  function update() {
    var chosen = (document.querySelector("input[name=auth_method]:checked") || {}).value || "";
    Array.prototype.forEach.call(sections, function (section) {
      section.hidden = section.getAttribute("data-auth").split(/\s+/).indexOf(chosen) < 0;
    });
    if (button) button.textContent = chosen === "oauth2" ? oauthLabel : "Save and continue";
  }
  Array.prototype.forEach.call(radios, function (radio) { radio.addEventListener("change", update); });
  update();
})();
