// Vigil console: progressive enhancement only. Every page works without
// this file; with it, times follow the browser's time zone, forms
// marked data-confirm ask first, and the incident list follows the
// server's /events stream without a reload.
(function () {
  "use strict";
  // readPage reads url again, as the browser would show it, for a page
  // that puts its fresh parts in place: a promise of the parsed document,
  // refused when the answer is not the page (an error, a redirect to log
  // in); its callers then reload.
  var readPage = function (url) {
    return fetch(url, {credentials: "same-origin", headers: {"Accept": "text/html"}}).then(function (r) {
      if (!r.ok || r.redirected) { throw new Error("status " + r.status); }
      return r.text();
    }).then(function (html) { return new DOMParser().parseFromString(html, "text/html"); });
  };
  // element is the first element of an event's rendered HTML, if any.
  var element = function (html) {
    var t = document.createElement("template");
    t.innerHTML = html.trim();
    return t.content.firstElementChild;
  };
  // follow opens the event stream at url with a listener per event name
  // of on; "reload" (the session ended, events were dropped) asks for
  // the page again. The browser reconnects a stream that broke, but gives
  // up on one refused (a proxy's 502 while the gateway restarts, a
  // blocked request): then another is opened a few seconds later, and
  // its "open" listener reads what was missed.
  var follow = function (url, on) {
    var es = new EventSource(url);
    Object.keys(on).forEach(function (name) { es.addEventListener(name, on[name]); });
    es.addEventListener("error", function () {
      if (es.readyState === EventSource.CLOSED) { setTimeout(function () { follow(url, on); }, 5000); }
    });
    es.addEventListener("reload", function () {
      es.close();
      location.reload();
    });
    return es;
  };

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

  // The list's changes: "row" puts a rendered row in place (or on top of
  // the first page), "gone" takes one out, "reload" asks for the page
  // again (events were dropped, or the session ended).
  var table = document.getElementById("incidents");
  if (table && window.EventSource) {
    // Events that come while the page reads itself again wait for it.
    var reading = null;
    var row = function (data) {
      var tr = element(data);
      if (!tr || tr.tagName !== "TR") { return; }
      var body = table.tBodies[0];
      var old = document.getElementById(tr.id);
      if (old) {
        old.replaceWith(tr);
      } else if (table.getAttribute("data-first") === "true") {
        var empty = body.querySelector("tr.empty");
        if (empty) { empty.remove(); }
        body.insertBefore(tr, body.firstChild);
      } else {
        return;
      }
      tr.classList.add("fresh");
    };
    var gone = function (id) {
      var old = document.getElementById("incident-" + id);
      if (old) { old.remove(); }
    };
    var on = function (apply) {
      return function (ev) {
        if (reading) { reading.push(function () { apply(ev.data); }); } else { apply(ev.data); }
      };
    };
    follow("/events" + location.search, {
      // data-live says whether the list is following the stream (for
      // the eye, and for tests that must not send before it is). What
      // changed between the page's rendering and the stream's start (or
      // while it reconnected) was told to nobody: the rows are read
      // again.
      open: function () {
        if (!window.fetch || !window.DOMParser) { table.setAttribute("data-live", "on"); }
        if (!window.fetch || !window.DOMParser || reading) { return; }
        reading = [];
        readPage(location.href).then(function (doc) {
          var fresh = doc.getElementById("incidents");
          if (fresh && fresh.tBodies[0]) { table.tBodies[0].replaceWith(document.importNode(fresh.tBodies[0], true)); }
        }).catch(function () {
          location.reload();
        }).then(function () {
          var queued = reading || [];
          reading = null;
          queued.forEach(function (f) { f(); });
          table.setAttribute("data-live", "on");
        });
      },
      error: function () { table.setAttribute("data-live", "off"); },
      row: on(row),
      gone: on(gone)
    });
  }

  document.addEventListener("submit", function (ev) {
    var msg = ev.target.getAttribute("data-confirm");
    if (msg && !window.confirm(msg)) { ev.preventDefault(); }
  });

  // apps: a deployment's page follows the deployment's steps from its
  // own stream (data-events) until it ends; without this the page shows
  // the state of its last load.
  (function () {
    var box = document.getElementById("deployment");
    var src = box && box.getAttribute("data-events");
    if (!src || !window.EventSource) { return; }
    document.querySelectorAll(".nojs-only").forEach(function (el) { el.remove(); });
    var es = follow(src, {
      deployment: function (ev) {
        var p = element(ev.data);
        if (p) { box.replaceChildren(p); }
      },
      end: function () {
        es.close();
        box.removeAttribute("data-events");
      }
    });
  })();

  // story: an incident's page follows its incident, analysis and
  // repairs. On "changed" it reads itself again (through the API, as any
  // page) and puts each live section in place, but for one the user is
  // typing in.
  (function () {
    var story = document.getElementById("story");
    if (!story || !window.EventSource || !window.fetch || !window.DOMParser) { return; }
    var busy = false, again = false;
    var refresh = function () {
      if (busy) { again = true; return Promise.resolve(); }
      busy = true;
      return readPage(location.pathname).then(function (doc) {
        doc.querySelectorAll("#story section.live").forEach(function (fresh) {
          var old = document.getElementById(fresh.id);
          if (!old) { return; }
          var focus = document.activeElement;
          if (focus && focus !== document.body && old.contains(focus) && (focus.value || focus.tagName === "SELECT")) { return; }
          old.replaceWith(document.importNode(fresh, true));
        });
        document.title = doc.title;
      }).catch(function () {
        location.reload();
      }).then(function () {
        busy = false;
        if (again) { again = false; refresh(); }
      });
    };
    // What changed between the page's rendering and the stream's start
    // (or while it reconnected) was told to nobody: read the page again.
    // data-live: the page is following its stream and is up to date with
    // it (for the eye, and for tests that must not read mid-swap).
    follow("/events?incident=" + encodeURIComponent(story.getAttribute("data-incident")), {
      changed: refresh,
      open: function () { refresh().then(function () { story.setAttribute("data-live", "on"); }); },
      error: function () { story.setAttribute("data-live", "off"); }
    });
  })();
})();
