// permsync's only script. The CSP forbids inline scripts, so everything the
// pages do in the browser lives here:
//   - htmx requests carry the CSRF token from <meta name="csrf-token">;
//   - [data-countdown-to] elements count down to a unix-millisecond time
//     (then show data-countdown-done, when given, instead of "expired");
//   - [data-meter-from][data-meter-to] bars show how much of a lifetime is left;
//   - <time data-local-time> is rewritten into the browser's time zone, with
//     the time in UTC in its title (one convention on every page);
//   - navigation strips that scroll sideways show the current page's link;
//   - a delete button stays disabled until the typed key matches
//     ([data-confirm-for]);
//   - forms marked data-pending-form show that they are working once sent;
//   - <html class="js"> tells styles that scripts run.
(function () {
  "use strict";

  document.documentElement.classList.add("js");

  function csrfToken() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.getAttribute("content") : "";
  }

  document.addEventListener("htmx:configRequest", function (event) {
    var token = csrfToken();
    if (token) {
      event.detail.headers["X-CSRF-Token"] = token;
    }
  });

  function remaining(ms) {
    if (ms <= 0) {
      return "expired";
    }
    var s = Math.floor(ms / 1000);
    var h = Math.floor(s / 3600);
    var m = Math.floor((s % 3600) / 60);
    var sec = s % 60;
    var pad = function (n) { return n < 10 ? "0" + n : String(n); };
    if (h > 0) {
      return h + "h " + pad(m) + "m";
    }
    if (m > 0) {
      return m + "m " + pad(sec) + "s";
    }
    return sec + "s";
  }

  function tick() {
    var now = Date.now();
    document.querySelectorAll("[data-countdown-to]").forEach(function (el) {
      var until = Number(el.getAttribute("data-countdown-to"));
      if (!until) {
        return;
      }
      var left = until - now;
      var done = el.getAttribute("data-countdown-done");
      el.textContent = left <= 0 && done ? done : remaining(left);
      el.classList.toggle("is-soon", left > 0 && left <= 60000);
      el.classList.toggle("is-expired", left <= 0);
    });
    document.querySelectorAll("[data-meter-from][data-meter-to]").forEach(function (el) {
      var from = Number(el.getAttribute("data-meter-from"));
      var to = Number(el.getAttribute("data-meter-to"));
      if (!from || !to || to <= from) {
        return;
      }
      var left = Math.max(0, Math.min(1, (to - now) / (to - from)));
      el.style.width = (left * 100).toFixed(1) + "%";
      el.classList.toggle("is-soon", to - now <= 60000);
    });
  }

  function localize(root) {
    (root || document).querySelectorAll("time[data-local-time]").forEach(function (el) {
      var d = new Date(el.getAttribute("datetime"));
      if (isNaN(d.getTime())) {
        return;
      }
      var today = new Date();
      var sameDay = d.toDateString() === today.toDateString();
      el.textContent = sameDay
        ? d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" })
        : d.toLocaleString([], { month: "short", day: "numeric", hour: "2-digit", minute: "2-digit" });
      el.setAttribute("title", d.toISOString().slice(0, 19).replace("T", " ") + " UTC");
    });
  }

  // A confirmation field ([data-confirm-for] names the button,
  // [data-confirm-value] the text to type) keeps its button disabled until
  // the text matches. Without scripts the button stays enabled and the
  // server checks the text.
  function bindConfirms(root) {
    (root || document).querySelectorAll("input[data-confirm-for]").forEach(function (input) {
      var button = document.getElementById(input.getAttribute("data-confirm-for"));
      if (!button || input.permsyncConfirm) {
        return;
      }
      input.permsyncConfirm = true;
      var update = function () {
        if (button.classList.contains("is-pending")) {
          return;
        }
        button.disabled = input.value.trim() !== input.getAttribute("data-confirm-value");
      };
      input.addEventListener("input", update);
      update();
    });
  }

  // A form marked data-pending-form disables its submit button once sent
  // and says it is working, so a slow answer is not mistaken for nothing
  // happening (and cannot be sent twice).
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!form.matches || !form.matches("form[data-pending-form]") || event.defaultPrevented) {
      return;
    }
    var button = form.querySelector('button[type="submit"]');
    if (!button) {
      return;
    }
    window.setTimeout(function () { // after the browser has taken the form's data
      button.classList.add("is-pending");
      button.disabled = true;
      button.setAttribute("aria-busy", "true");
      var label = button.querySelector(".btn-label");
      var pending = button.getAttribute("data-pending-label");
      if (label && pending) {
        label.setAttribute("data-idle-label", label.textContent);
        label.textContent = pending;
      }
    }, 0);
  });

  // Coming back to a page from the history (the back button) shows it as
  // it was left: undo the pending state.
  window.addEventListener("pageshow", function (event) {
    if (!event.persisted) {
      return;
    }
    document.querySelectorAll(".btn.is-pending").forEach(function (button) {
      button.classList.remove("is-pending");
      button.removeAttribute("aria-busy");
      button.disabled = false;
      var label = button.querySelector(".btn-label[data-idle-label]");
      if (label) {
        label.textContent = label.getAttribute("data-idle-label");
      }
    });
    document.querySelectorAll("input[data-confirm-for]").forEach(function (input) {
      input.dispatchEvent(new Event("input"));
    });
  });

  // On a phone the navigation strips scroll sideways: bring the current
  // page's link into view, so the strip says where you are.
  function revealCurrent() {
    document.querySelectorAll(".nav, .admin-nav").forEach(function (nav) {
      var current = nav.querySelector('[aria-current="page"]');
      if (!current || nav.scrollWidth <= nav.clientWidth) {
        return;
      }
      var navBox = nav.getBoundingClientRect();
      var box = current.getBoundingClientRect();
      if (box.left >= navBox.left && box.right <= navBox.right) {
        return; // already in view: leave the strip where it is
      }
      nav.scrollLeft += box.left - navBox.left - (nav.clientWidth - box.width) / 2;
    });
  }

  var revealTimer = 0;
  window.addEventListener("resize", function () {
    window.clearTimeout(revealTimer);
    revealTimer = window.setTimeout(revealCurrent, 150);
  });

  function start() {
    bindConfirms(document);
    revealCurrent();
    localize(document);
    tick();
    window.setInterval(tick, 1000);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }

  // Swapped-in fragments (the refreshed session panel, alerts) get the same
  // treatment at once, without waiting for the next tick.
  // Out-of-band swaps (a page's live update) count too.
  function refreshSwapped() {
    localize(document);
    bindConfirms(document);
    tick();
  }
  document.addEventListener("htmx:afterSwap", refreshSwapped);
  document.addEventListener("htmx:oobAfterSwap", refreshSwapped);
})();
