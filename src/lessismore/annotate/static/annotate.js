// Keyboard shortcuts for the judging forms: a key listed in a button's data-keys clicks that button.
// The page works without this file; it never reads or writes answer text.
"use strict";
document.addEventListener("keydown", function (event) {
  if (event.ctrlKey || event.metaKey || event.altKey || event.repeat) return;
  var target = event.target;
  if (target && (target.tagName === "INPUT" || target.tagName === "TEXTAREA")) return;
  var buttons = document.querySelectorAll("form.choices button[data-keys]");
  for (var i = 0; i < buttons.length; i++) {
    if (buttons[i].dataset.keys.split(" ").indexOf(event.key.toLowerCase()) >= 0) {
      event.preventDefault();
      buttons.forEach(function (b) { b.disabled = b !== buttons[i]; });  // one submission per key press
      buttons[i].click();
      return;
    }
  }
});
