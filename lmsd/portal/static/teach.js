// The instructor's course page: ask before deleting, and show only the fields a lesson's kind
// needs (every field stays there without JavaScript; the server checks them either way).
"use strict";
(() => {
  for (const form of document.querySelectorAll("form[data-confirm]")) {
    form.addEventListener("submit", (event) => {
      if (!window.confirm(form.dataset.confirm)) event.preventDefault();
    });
  }
  for (const form of document.querySelectorAll("form[data-lesson-form]")) {
    const kind = form.querySelector('select[name="lesson_kind"]');
    if (!kind) continue;
    const sync = () => {
      for (const part of form.querySelectorAll("[data-kind-for]")) {
        const shown = part.dataset.kindFor === kind.value;
        part.hidden = !shown;
        // a field that has an error stays visible, whatever the kind
        if (part.querySelector("[aria-invalid]")) part.hidden = false;
      }
    };
    kind.addEventListener("change", sync);
    sync();
  }
})();
