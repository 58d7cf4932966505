/*
 * Settings → amoCRM → "Send a test lead": while the test lead is on its way, read the page again every few
 * seconds and swap in its fresh result card (only that card: nothing typed elsewhere on the page is lost).
 * Without JavaScript the card's "Check again" link does the same by hand.
 */
(function () {
  "use strict";

  var PAUSE_MS = 3000, TRIES = 40;
  var tries = 0;

  function pending() {
    var card = document.getElementById("amocrm-test-lead");
    return card && card.getAttribute("data-state") === "pending" ? card : null;
  }

  function check() {
    var card = pending();
    if (!card || tries++ >= TRIES) { return; }
    fetch(window.location.pathname, { credentials: "same-origin", headers: { Accept: "text/html" } })
      .then(function (response) { return response.ok ? response.text() : null; })
      .then(function (html) {
        if (!html) { return; }
        var fresh = new DOMParser().parseFromString(html, "text/html").getElementById("amocrm-test-lead");
        if (fresh) { card.replaceWith(document.importNode(fresh, true)); }
      })
      .catch(function () { /* offline for a moment: the next try */ })
      .then(function () { if (pending()) { window.setTimeout(check, PAUSE_MS); } });
  }

  if (pending()) { window.setTimeout(check, PAUSE_MS); }
})();
