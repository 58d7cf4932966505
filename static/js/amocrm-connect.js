/*
 * Settings → amoCRM. The official button opens amoCRM's consent window; this script
 * - reloads the page when our callback (in that window) reports back by postMessage from our own origin;
 * - in post_message mode, takes {code, state, referer} posted by the OAuth host and opens our callback with them;
 * - shows a refusal passed to window.leadpathAmocrmDenied (the button's data-error-callback).
 */
(function () {
  "use strict";

  var box = document.getElementById("amocrm-connect");
  if (!box) { return; }
  var oauthOrigin = box.getAttribute("data-oauth-origin");
  var callbackUrl = box.getAttribute("data-callback-url");
  var denied = document.getElementById("amocrm-denied");

  window.leadpathAmocrmDenied = function (details) {
    if (!denied) { return; }
    denied.textContent = denied.getAttribute("data-message");  // in the page's language
    denied.hidden = false;
    if (details && details.error_description) { denied.setAttribute("title", details.error_description); }
  };

  window.addEventListener("message", function (event) {
    var data = event.data;
    if (!data || typeof data !== "object") { return; }
    if (event.origin === window.location.origin && data.source === "leadpath-amocrm") {
      window.location.reload();
      return;
    }
    if (event.origin === oauthOrigin && data.code && data.state && data.referer && !data.error) {
      var query = new URLSearchParams({ code: data.code, state: data.state, referer: data.referer });
      window.location.assign(callbackUrl + "?" + query.toString());
    }
  });
})();
