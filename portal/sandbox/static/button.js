/*
 * amoCRM sandbox: the "Connect amoCRM" button, served as /auth/button.min.js (amoCRM) and /auth/button.js (Kommo).
 * Reads the data-* attributes of its <script class="amocrm_oauth"> (Kommo: "kommo_oauth") tags like the real
 * buttons do (Kommo's takes data-theme light|dark instead of data-color),
 * inserts a button after each tag and opens the consent page of the sandbox the script came from.
 * Refusals posted by the consent window ({client_id, error: "access_denied", error_description}) are passed
 * to window[data-error-callback]. Success messages (post_message mode) are left to the page's own listener.
 */
(function () {
  "use strict";

  var COLORS = {
    "default": "#339dc7", blue: "#1e88e5", violet: "#7b1fa2", green: "#43a047", orange: "#fb8c00", red: "#e53935"
  };
  var SECRETS_KEYS = ["name", "description", "redirect_uri", "secrets_uri", "logo", "scopes"];

  function originOf(script) {
    try {
      return new URL(script.src, document.baseURI).origin;
    } catch (e) {
      return window.location.origin;
    }
  }

  function consentUrl(origin, data) {
    var params = new URLSearchParams();
    params.set("mode", data.mode === "post_message" ? "post_message" : "popup");
    params.set("state", data.state || "");
    if (data.clientId) {
      params.set("client_id", data.clientId);
    } else {
      SECRETS_KEYS.forEach(function (key) {
        if (data[key]) { params.set(key, data[key]); }
      });
    }
    return origin + "/oauth?" + params.toString();
  }

  function openPopup(url) {
    var width = 750, height = 580;
    var left = (window.screenX || 0) + Math.max(0, (window.outerWidth - width) / 2);
    var top = (window.screenY || 0) + Math.max(0, (window.outerHeight - height) / 2);
    return window.open(url, "amocrm_oauth",
      "scrollbars=1,resizable=1,width=" + width + ",height=" + height + ",left=" + left + ",top=" + top);
  }

  function render(script) {
    if (script.getAttribute("data-amocrm-rendered")) { return; }
    script.setAttribute("data-amocrm-rendered", "1");
    var data = script.dataset;
    var origin = originOf(script);
    var button = document.createElement("button");
    button.type = "button";
    button.className = "amocrm_oauth_button" + (data.className ? " " + data.className : "");
    button.textContent = data.title || (data.compact === "true" ? "amoCRM" : "Подключить");
    var background = kommo ? (data.theme === "dark" ? "#1f2533" : "#5b6af0") : (COLORS[data.color] || COLORS["default"]);
    button.style.cssText = "background:" + background +
      ";color:#fff;border:0;border-radius:4px;cursor:pointer;font:14px sans-serif;" +
      (data.compact === "true" ? "padding:4px 10px;" : "padding:8px 16px;");
    button.addEventListener("click", function (event) {
      event.preventDefault();
      openPopup(consentUrl(origin, data));
    });
    script.parentNode.insertBefore(button, script.nextSibling);

    window.addEventListener("message", function (event) {
      if (event.origin !== origin || !event.data || typeof event.data !== "object" || !event.data.error) {
        return;
      }
      if (data.clientId && event.data.client_id && event.data.client_id !== data.clientId) { return; }
      var callback = data.errorCallback && window[data.errorCallback];
      if (typeof callback === "function") {
        callback({
          client_id: event.data.client_id, error: event.data.error,
          error_description: event.data.error_description
        });
      }
    });
  }

  // amoCRM's script (/auth/button.min.js) looks for class="amocrm_oauth", Kommo's (/auth/button.js) for
  // class="kommo_oauth" (Kommo oauth/button): a tag of the other region is left alone.
  var current = document.currentScript;
  var kommo = !!(current && /\/auth\/button\.js(\?|#|$)/.test(current.src));
  var tagClass = kommo ? "kommo_oauth" : "amocrm_oauth";
  var scripts = document.querySelectorAll("script." + tagClass);
  Array.prototype.forEach.call(scripts, render);
})();
