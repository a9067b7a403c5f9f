// Vigil console: progressive enhancement only. Every page works without
// this file; with it, times follow the browser's time zone and forms
// marked data-confirm ask first.
(function () {
  "use strict";
  // The server renders times in the zone of the vigil_tz cookie (UTC by
  // default): keep it the browser's, and reload once when it changes.
  try {
    var tz = Intl.DateTimeFormat().resolvedOptions().timeZone;
    var cur = (document.cookie.match(/(?:^|; )vigil_tz=([^;]*)/) || [])[1];
    if (tz && encodeURIComponent(tz) !== cur) {
      document.cookie = "vigil_tz=" + encodeURIComponent(tz) + "; path=/; max-age=31536000; samesite=strict" +
        (location.protocol === "https:" ? "; secure" : "");
      // Only once, and only if the cookie took (cookies may be off).
      if (cur === undefined && document.cookie.indexOf("vigil_tz=") >= 0 && document.querySelector("time")) { location.reload(); }
    }
  } catch (e) { /* no Intl: UTC it is */ }

  document.addEventListener("submit", function (ev) {
    var msg = ev.target.getAttribute("data-confirm");
    if (msg && !window.confirm(msg)) { ev.preventDefault(); }
  });
})();
