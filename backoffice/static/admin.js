// Progressive enhancement only: every page works without this file.
(function () {
  "use strict";
  var editor = document.getElementById("json");
  if (!editor) return;

  // An error's link puts the caret on its line and selects it.
  function selectLine(line) {
    var lines = editor.value.split("\n");
    var start = 0;
    for (var i = 0; i < line - 1 && i < lines.length; i++) start += lines[i].length + 1;
    var end = start + (lines[line - 1] || "").length;
    editor.focus();
    editor.setSelectionRange(start, end);
    var lineHeight = parseFloat(getComputedStyle(editor).lineHeight) || 20;
    editor.scrollTop = Math.max(0, (line - 3) * lineHeight);
  }
  document.querySelectorAll("a[data-line]").forEach(function (link) {
    link.addEventListener("click", function (event) {
      event.preventDefault();
      selectLine(parseInt(link.getAttribute("data-line"), 10) || 1);
    });
  });

  // "Format" re-indents valid JSON; invalid JSON is left for the server to explain.
  var format = document.querySelector("button[data-format]");
  if (format) {
    format.hidden = false;
    format.addEventListener("click", function () {
      try {
        editor.value = JSON.stringify(JSON.parse(editor.value), null, 2) + "\n";
      } catch (e) {
        editor.focus();
      }
    });
  }

  if (document.getElementById("errors")) document.getElementById("errors").focus();
})();
