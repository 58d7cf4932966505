/*
 * The end of the amoCRM connect flow. Opened as the consent popup: tell the Settings page (our own origin only)
 * and close. Opened in the main window: go back to Settings, where the outcome is shown.
 */
(function () {
  "use strict";

  var result = document.getElementById("amocrm-result");
  if (!result) { return; }
  var ok = result.getAttribute("data-ok") === "true";
  var opener = null;
  try {
    opener = window.opener && !window.opener.closed && window.opener.location.origin === window.location.origin
      ? window.opener : null;
  } catch (e) {
    opener = null;  // another origin's window: never talk to it
  }
  var outcome = result.getAttribute("data-outcome");  // "denied": access refused in amoCRM
  if (opener) {
    opener.postMessage({ source: "leadpath-amocrm", ok: ok, outcome: outcome }, window.location.origin);
    if (ok || outcome === "denied") { window.close(); }
  } else if (ok) {
    window.location.replace(result.getAttribute("data-settings-url"));
  } else if (outcome === "denied") {
    window.location.replace(result.getAttribute("data-settings-url") + "?amocrm=denied");
  }
})();
