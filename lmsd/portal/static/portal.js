// The portal's shared script (loaded deferred on every page; no inline script anywhere).
// Page-specific behaviour lives in its own file, included by that page's template.
"use strict";
(() => {
  // An error summary takes the focus so keyboard and screen-reader users land on it.
  const summary = document.querySelector(".error-summary");
  if (summary) summary.focus();
})();
