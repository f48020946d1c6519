// The console's only script besides htmx (no inline scripts: the CSP forbids them).
(function () {
  "use strict";
  // The browser's time zone, so the server shows times in the viewer's zone too.
  try {
    var zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
    if (zone && /^[A-Za-z0-9_+\/-]+$/.test(zone) && document.cookie.indexOf("tz=" + zone) === -1) {
      document.cookie = "tz=" + zone + "; path=/; max-age=31536000; samesite=lax";
    }
  } catch (e) { /* no Intl: times stay in UTC */ }
  // Every htmx request carries the session's CSRF token in a header.
  document.addEventListener("htmx:configRequest", function (event) {
    var meta = document.querySelector('meta[name="csrf-token"]');
    if (meta && meta.content) { event.detail.headers["X-CSRF-Token"] = meta.content; }
  });
  // After a form comes back with errors, move focus to their summary.
  document.addEventListener("DOMContentLoaded", function () {
    var summary = document.getElementById("form-errors");
    if (summary) { summary.focus(); }
  });
})();
