// Keyboard shortcuts for the review desk; every action also works without them.
// Image page: a approve, r reject reason, l licence, j/k next/previous, q queue.
// Queue page: j/k move, x tick, o or Enter open.
(function () {
  "use strict";
  function typing(event) {
    var t = event.target;
    return t && (t.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(t.tagName));
  }
  function follow(id) {
    var link = document.getElementById(id);
    if (link) { window.location.href = link.href; }
  }
  var rows = [];
  var current = -1;
  function mark(index) {
    if (!rows.length) { return; }
    if (current >= 0) { rows[current].classList.remove("current"); }
    current = Math.max(0, Math.min(rows.length - 1, index));
    rows[current].classList.add("current");
    rows[current].scrollIntoView({ block: "nearest" });
  }
  document.addEventListener("DOMContentLoaded", function () {
    rows = Array.prototype.slice.call(document.querySelectorAll("tr[data-row]"));
    document.querySelectorAll("a[data-back]").forEach(function (link) {
      link.addEventListener("click", function (event) {
        if (window.history.length > 1) { event.preventDefault(); window.history.back(); }
      });
    });
  });
  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey || typing(event)) { return; }
    if (document.getElementById("back-to-queue")) {  // an image's page; its forms only for those who may
      var approve = document.getElementById("approve-form");
      var reason = document.getElementById("reject-reason");
      var licence = document.getElementById("licence-input");
      if (event.key === "a" && approve) { event.preventDefault(); approve.requestSubmit(); }
      else if (event.key === "r" && reason) { event.preventDefault(); reason.focus(); }
      else if (event.key === "l" && licence) { event.preventDefault(); licence.focus(); }
      else if (event.key === "j") { follow("next"); }
      else if (event.key === "k") { follow("previous"); }
      else if (event.key === "q") { follow("back-to-queue"); }
      return;
    }
    if (!rows.length) { return; }
    if (event.key === "j") { mark(current + 1); }
    else if (event.key === "k") { mark(current - 1); }
    else if (event.key === "x" && current >= 0) {
      var box = rows[current].querySelector("input[type=checkbox]");
      box.checked = !box.checked;
    } else if ((event.key === "o" || event.key === "Enter") && current >= 0) {
      window.location.href = rows[current].getAttribute("data-href");
    }
  });
})();
