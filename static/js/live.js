// Live updates over server-sent events (GET /events), opened by htmx's SSE
// extension on #live. htmx itself re-renders panels on claims-changed (see
// hx-trigger="sse:claims-changed"); this file only
//   - sends the page to sign-in when the stream says session-ended (or, when
//     an admin ended it, to the landing page, which says so);
//   - dismisses toasts after a while;
//   - marks <html data-live="open"> once the stream is open;
//   - shows the stream's state in the top bar's live indicator
//     (.live-status): Live, Reconnecting… or Offline.
// No inline script anywhere: the CSP forbids it.
(function () {
  "use strict";

  var TOAST_MS = 10000;
  // How long a stream may try to reconnect before the indicator says
  // offline.
  var OFFLINE_AFTER_MS = 8000;

  var STATES = {
    connecting: { text: "Connecting…", title: "Connecting to live updates" },
    open: { text: "Live", title: "Live: this page updates by itself when your access changes" },
    reconnecting: { text: "Reconnecting…", title: "The live connection dropped; reconnecting" },
    offline: { text: "Offline", title: "No live connection: this page will not update by itself until it reconnects. Reload to see the latest." }
  };
  var state = "connecting";
  var offlineTimer = 0;

  function paint() {
    document.documentElement.setAttribute("data-live", state);
    document.querySelectorAll(".live-status").forEach(function (el) {
      var s = STATES[state];
      el.setAttribute("data-state", state);
      el.setAttribute("title", s.title);
      var label = el.querySelector(".live-status-text");
      if (label) {
        label.textContent = s.text;
      }
    });
  }

  function setState(next) {
    if (next === state) {
      return; // keep a running offline timer: retries do not restart it
    }
    window.clearTimeout(offlineTimer);
    state = next;
    if (next === "reconnecting") {
      offlineTimer = window.setTimeout(function () { setState("offline"); }, OFFLINE_AFTER_MS);
    }
    paint();
  }

  function goToSignIn() {
    var back = window.location.pathname + window.location.search;
    window.location.assign("/login?return_to=" + encodeURIComponent(back));
  }

  document.addEventListener("htmx:sseOpen", function () { setState("open"); });
  document.addEventListener("htmx:sseError", function () {
    if (navigator.onLine === false) {
      setState("offline");
    } else if (state !== "offline") {
      setState("reconnecting");
    }
  });
  window.addEventListener("offline", function () { setState("offline"); });
  window.addEventListener("online", function () {
    if (current && current.readyState === EventSource.OPEN) {
      setState("open"); // the stream lived through it
    } else if (state !== "open") {
      setState("reconnecting");
      reconnectNow();
    }
  });

  // The SSE extension retries a closed stream with a growing delay (up to a
  // minute). When the network comes back there is no reason to wait: open
  // a stream at once. The extension's own pending retry still runs later;
  // each new stream closes the one before, so a tab never holds two.
  var current = null;
  htmx.createEventSource = function (url) {
    if (current && current.readyState !== EventSource.CLOSED) {
      current.close();
    }
    current = new EventSource(url, { withCredentials: true });
    return current;
  };

  function reconnectNow() {
    var live = document.getElementById("live");
    if (!live || (current && current.readyState !== EventSource.CLOSED)) {
      return; // none, or the browser is already reconnecting it
    }
    // What htmx does when it meets the element: connect, then bind the
    // elements that listen to the stream's events.
    htmx.trigger(live, "htmx:afterProcessNode");
    live.querySelectorAll("[hx-trigger*='sse:'], [sse-swap]").forEach(function (el) {
      htmx.trigger(el, "htmx:afterProcessNode");
    });
  }
  // The navigation (which holds the indicator) is swapped by live updates.
  document.addEventListener("htmx:oobAfterSwap", paint);
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", paint);
  } else {
    paint();
  }

  document.addEventListener("htmx:sseOpen", function (event) {
    var source = event.detail && event.detail.source;
    if (!source || source.permsyncBound) {
      return;
    }
    source.permsyncBound = true;
    source.addEventListener("session-ended", function (event) {
      source.close();
      var data = {};
      try { data = JSON.parse(event.data || "{}"); } catch (e) { data = {}; }
      if (data.by === "admin") {
        // Signed out by an admin, at Kinde too: say so rather than start
        // a sign-in the user did not ask for.
        window.location.assign("/?signed_out=admin");
        return;
      }
      goToSignIn();
    });
  });

  function scheduleToasts() {
    document.querySelectorAll(".toast:not([data-dismiss-at])").forEach(function (el) {
      el.setAttribute("data-dismiss-at", String(Date.now() + TOAST_MS));
      window.setTimeout(function () {
        el.classList.add("toast-leaving");
        window.setTimeout(function () { el.remove(); }, 400);
      }, TOAST_MS);
    });
  }

  document.addEventListener("htmx:oobAfterSwap", scheduleToasts);
  document.addEventListener("htmx:afterSettle", scheduleToasts);
})();
