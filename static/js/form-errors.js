/* A form sent back with errors (templates/_macros/forms.html marks its fields aria-invalid and links them to their
   error texts): the focus goes to the first invalid field, so keyboard and screen-reader users land on it. */
(function () {
  "use strict";
  var first = document.querySelector("form [aria-invalid=\"true\"]");
  if (first && !first.disabled) {
    first.focus();
  }
})();
