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

// Feed uploads: the browser's own progress while the file goes up (the form works without this too).
(function () {
  "use strict";
  var form = document.querySelector("form[data-upload]");
  if (!form || !window.FormData || !window.XMLHttpRequest) return;
  var bar = form.querySelector("progress");
  var text = form.querySelector(".progress-text");
  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var xhr = new XMLHttpRequest();
    xhr.open("POST", form.action);
    bar.hidden = false;
    text.hidden = false;
    form.querySelector("button[type=submit]").disabled = true;
    xhr.upload.addEventListener("progress", function (e) {
      if (!e.lengthComputable) return;
      var percent = Math.floor((e.loaded / e.total) * 100);
      bar.value = percent;
      text.textContent = percent + " %";
    });
    xhr.upload.addEventListener("load", function () {
      bar.removeAttribute("value"); // indeterminate while the server reads the rows
      text.textContent = form.getAttribute("data-loading") || "…";
    });
    xhr.addEventListener("load", function () {
      // Success ends on the report page (the form's 303, followed); anything else is a page to show as is.
      if (xhr.status === 200 && xhr.responseURL && xhr.responseURL !== form.action) {
        window.location.assign(xhr.responseURL);
        return;
      }
      document.open();
      document.write(xhr.responseText);
      document.close();
    });
    xhr.addEventListener("error", function () {
      form.submit(); // let the browser try the plain way and show its own error
    });
    xhr.send(new FormData(form));
  });
})();
