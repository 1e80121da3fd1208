// unsource dashboard: live queue (polling) and small conveniences. No dependencies.
(function () {
  "use strict";
  document.querySelectorAll("[data-autosubmit]").forEach(function (el) {
    el.addEventListener("change", function () { el.form.submit(); });
  });
  var rows = document.getElementById("queue-rows");
  if (!rows) return;
  var total = document.getElementById("queue-total");
  var stamp = document.getElementById("queue-updated");
  var every = 5000;
  var busy = false;
  function refresh() {
    if (busy || document.hidden) return;
    busy = true;
    var url = rows.getAttribute("data-src") + window.location.search;
    fetch(url, { credentials: "same-origin", headers: { "Accept": "text/html" } })
      .then(function (r) {
        if (r.redirected || r.status === 401) { window.location.reload(); return null; }
        if (!r.ok) throw new Error("HTTP " + r.status);
        var n = r.headers.get("X-Queue-Total");
        if (n !== null && total) total.textContent = n;
        return r.text();
      })
      .then(function (html) {
        if (html === null) return;
        rows.innerHTML = html;
        stamp.textContent = "updated " + new Date().toLocaleTimeString();
        stamp.classList.remove("stale");
      })
      .catch(function (e) {
        stamp.textContent = "not updating (" + e.message + ")";
        stamp.classList.add("stale");
      })
      .finally(function () { busy = false; });
  }
  var ms = parseInt(rows.getAttribute("data-every") || "", 10);
  if (ms > 0) every = ms;
  window.setInterval(refresh, every);
  document.addEventListener("visibilitychange", refresh);
})();
