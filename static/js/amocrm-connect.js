/*
 * Settings → amoCRM. The official button opens amoCRM's consent window; this script
 * - reloads the page when our callback (in that window) reports back by postMessage from our own origin;
 * - in post_message mode, takes {code, state, referer} posted by the OAuth host and opens our callback with them;
 * - shows a refusal passed to window.leadpathAmocrmDenied (the button's data-error-callback), or reported by our
 *   callback (?error=access_denied) from the consent window;
 * - says what happened when the consent window is closed before anything was decided. The button opens that
 *   window itself, so window.open is watched to learn of it; the page only checks whether it was closed.
 */
(function () {
  "use strict";

  var box = document.getElementById("amocrm-connect");
  if (!box) { return; }
  var oauthOrigin = box.getAttribute("data-oauth-origin");
  var callbackUrl = box.getAttribute("data-callback-url");
  var denied = document.getElementById("amocrm-denied");

  var decided = false;  // an answer (allowed or refused) came back from the consent window

  function show(attribute) {
    if (!denied) { return; }
    denied.textContent = denied.getAttribute(attribute);  // in the page's language
    denied.hidden = false;
  }

  window.leadpathAmocrmDenied = function (details) {
    decided = true;
    show("data-message");
    if (denied && details && details.error_description) {
      denied.setAttribute("title", details.error_description);
    }
  };

  var openWindow = window.open;
  window.open = function () {
    var opened = openWindow.apply(window, arguments);
    if (opened) {
      decided = false;
      if (denied) { denied.hidden = true; }
      var watch = window.setInterval(function () {
        if (!opened.closed) { return; }
        window.clearInterval(watch);
        // The refusal's message may arrive just after the window closes: give it a moment.
        window.setTimeout(function () { if (!decided) { show("data-closed-message"); } }, 700);
      }, 400);
    }
    return opened;
  };

  window.addEventListener("message", function (event) {
    var data = event.data;
    if (!data || typeof data !== "object") { return; }
    if (event.origin === window.location.origin && data.source === "leadpath-amocrm") {
      decided = true;
      if (data.ok === false && data.outcome === "denied") {
        show("data-message");
        return;
      }
      window.location.reload();
      return;
    }
    if (event.origin === oauthOrigin && (data.code || data.error)) { decided = true; }
    if (event.origin === oauthOrigin && data.code && data.state && data.referer && !data.error) {
      var query = new URLSearchParams({ code: data.code, state: data.state, referer: data.referer });
      window.location.assign(callbackUrl + "?" + query.toString());
    }
  });
})();
