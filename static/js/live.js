// Live updates over server-sent events (GET /events), opened by htmx's SSE
// extension on #live. htmx itself re-renders panels on claims-changed (see
// hx-trigger="sse:claims-changed"); this file only
//   - sends the page to sign-in when the stream says session-ended;
//   - dismisses toasts after a while;
//   - marks <html data-live="open"> once the stream is open.
// No inline script anywhere: the CSP forbids it.
(function () {
  "use strict";

  var TOAST_MS = 10000;

  function goToSignIn() {
    var back = window.location.pathname + window.location.search;
    window.location.assign("/login?return_to=" + encodeURIComponent(back));
  }

  document.addEventListener("htmx:sseOpen", function (event) {
    var source = event.detail && event.detail.source;
    if (!source || source.permsyncBound) {
      return;
    }
    source.permsyncBound = true;
    // Tests and styles can tell whether the page is live.
    document.documentElement.setAttribute("data-live", "open");
    source.addEventListener("session-ended", function () {
      source.close();
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
