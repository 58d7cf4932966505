/*
 * Copy buttons (Settings → Lead form's code, Settings → API tokens' new token):
 *   <button type="button" data-copy-target="field-id">…</button>
 *   <span data-copy-status data-copied="Copied." data-selected="Selected: press Ctrl+C." role="status"></span>
 * The text is always selected first, so when the page may not write to the clipboard (no permission, not a
 * secure context, an old browser) the reader still copies it with Ctrl+C / ⌘C, and the status says so.
 */
(function () {
  "use strict";
  document.querySelectorAll("[data-copy-target]").forEach(function (button) {
    button.addEventListener("click", function () {
      var field = document.getElementById(button.getAttribute("data-copy-target"));
      if (!field) { return; }
      var status = button.parentNode.querySelector("[data-copy-status]");
      var say = function (attribute) {
        if (!status) { return; }
        status.textContent = "";  // a repeated message is announced again
        status.textContent = status.getAttribute(attribute) || status.getAttribute("data-copied");
      };
      var selectText = function () {
        field.focus();
        field.select();
        if (field.setSelectionRange) { field.setSelectionRange(0, field.value.length); }
      };
      var fallback = function () {
        selectText();
        var copied = false;
        try { copied = document.execCommand("copy"); } catch (e) { copied = false; }
        say(copied ? "data-copied" : "data-selected");
      };
      selectText();
      if (navigator.clipboard && window.isSecureContext) {
        navigator.clipboard.writeText(field.value).then(function () { say("data-copied"); }, fallback);
      } else {
        fallback();
      }
    });
  });
})();
