package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"permsync/app/apptest"
)

// TestAccessibilityBasics opens every kind of page (signed out, user,
// admin, error pages) and checks in the browser, on the rendered page:
// every form control has a label, every button and link has a name, the
// page has a language and a heading, toasts and alerts land in live regions,
// and every piece of text (badges, pills, tags, toasts included) reaches
// WCAG AA contrast on the background it is drawn on. Then it tabs through
// pages and checks that each focused element shows an opaque focus ring.
// At a phone's size no page scrolls sideways.
func TestAccessibilityBasics(t *testing.T) {
	env := apptest.Start(t, apptest.Options{})
	browser := newBrowser(t)
	anon := newProfile(t, browser)
	bob := newProfile(t, browser)
	adm := newProfile(t, browser)
	signIn(t, bob, env, "bob@acme.test")
	signIn(t, adm, env, "admin@acme.test")

	// A fan-out, so its page and the overview's tables have rows.
	adminDelete(t, env, adm, apptest.PermissionID(t, env.Kinde(), "delete:reports"), "delete:reports")
	waitFor(t, adm, "the fan-out to finish", `document.querySelector('[data-testid="progress"]')?.dataset.finished === "true"`)
	fanout := eval[string](t, adm, `location.pathname`)

	pages := []struct {
		tab   context.Context
		path  string
		ready string
	}{
		{anon, "/", `[data-testid="landing"]`},
		{anon, "/no-such-page", `[data-testid="error-page"]`},
		{bob, "/dashboard", `[data-testid="session-panel"]`},
		{bob, "/reports", `[data-testid="reports"]`},
		{bob, "/reports/export", `[data-testid="error-page"]`},
		{bob, "/reports/nope", `[data-testid="error-page"]`},
		{adm, "/dashboard", `[data-testid="session-panel"]`},
		{adm, "/admin", `[data-testid="stats"]`},
		{adm, "/admin/permissions", `[data-testid="permissions"]`},
		{adm, "/admin/permissions/" + apptest.PermissionID(t, env.Kinde(), "export:reports"), `[data-testid="danger-zone"]`},
		{adm, "/admin/roles", `[data-testid="admin"]`},
		{adm, "/admin/users", `[data-testid="users"]`},
		{adm, "/admin/users/" + env.UserID(t, "alice@acme.test"), `[data-testid="admin"]`},
		{adm, "/admin/fanouts", `[data-testid="admin"]`},
		{adm, fanout, `[data-testid="fanout-panel"]`},
		{adm, "/admin/webhooks", `[data-testid="admin"]`},
	}
	for _, p := range pages {
		step(t, p.tab, "open "+p.path, chromedp.Navigate(env.URL+p.path), chromedp.WaitVisible(chromedp.CSS(p.ready)))
		// Toasts of both kinds, as live updates add them, so their colours
		// are checked too.
		eval[bool](t, p.tab, `(() => {
			const box = document.getElementById("toasts");
			if (!box) return true;
			for (const kind of ["info", "warning"]) {
				const el = document.createElement("div");
				el.className = "toast toast-" + kind;
				el.dataset.testid = "toast";
				el.textContent = "Export reports was removed from your access.";
				box.appendChild(el);
			}
			return true;
		})()`)
		step(t, p.tab, "settle", chromedp.Sleep(250*time.Millisecond)) // toast entrance animation
		for _, problem := range eval[[]string](t, p.tab, a11yAudit) {
			t.Errorf("%s: %s", p.path, problem)
		}
		eval[bool](t, p.tab, `(document.getElementById("toasts")?.replaceChildren(), true)`)
		if strings.HasPrefix(p.path, "/admin") || p.path == "/dashboard" || p.path == "/" {
			checkFocusRings(t, p.tab, p.path)
		}
		step(t, p.tab, "phone viewport", phoneViewport())
		checkNoSidewaysScroll(t, p.tab, p.path)
		step(t, p.tab, "desktop viewport", desktopViewport())
	}
}

// checkFocusRings presses Tab through the page (up to 40 stops) and checks
// that every element that takes focus looks different focused, with an
// opaque ring (outline or box-shadow), and that the first stop is the
// skip link.
func checkFocusRings(t *testing.T, tab context.Context, path string) {
	t.Helper()
	eval[bool](t, tab, `(document.activeElement?.blur(), window.scrollTo(0, 0), true)`)
	for i := range 40 {
		step(t, tab, "tab", chromedp.KeyEvent("\t"))
		res := eval[string](t, tab, focusCheck)
		if i == 0 && !strings.HasPrefix(res, "ok a.skip") {
			t.Errorf("%s: the first Tab stop is %q, not the skip link", path, res)
		}
		if res == "done" {
			return
		}
		if !strings.HasPrefix(res, "ok ") {
			t.Errorf("%s: Tab stop %d: %s", path, i+1, res)
		}
	}
}

// focusCheck compares the focused element's look with its look unfocused.
const focusCheck = `(() => {
	const el = document.activeElement;
	if (!el || el === document.body) return "done";
	const name = el.tagName.toLowerCase() + (el.className && typeof el.className === "string" ? "." + el.className.trim().split(/\s+/)[0] : "") +
		" " + JSON.stringify((el.getAttribute("aria-label") || el.textContent || el.name || "").trim().replace(/\s+/g, " ").slice(0, 40));
	if (!el.matches(":focus-visible")) return "not :focus-visible: " + name;
	const look = s => [s.outlineStyle, s.outlineWidth, s.outlineColor, s.boxShadow, s.borderColor].join("|");
	// Measure end states, not a transition's first frame.
	const transition = el.style.transition;
	el.style.transition = "none";
	const cs = getComputedStyle(el);
	const focused = look(cs);
	const ring = (cs.outlineStyle !== "none" && parseFloat(cs.outlineWidth) >= 2 && !/rgba\([^)]*, 0\)|transparent/.test(cs.outlineColor) ? cs.outlineColor : "") +
		" " + (cs.boxShadow === "none" ? "" : cs.boxShadow);
	el.blur();
	const plain = look(getComputedStyle(el));
	el.focus();
	el.style.transition = transition;
	if (focused === plain) return "no visible focus style: " + name;
	// An opaque colour in the ring: rgb(...) (rgba with alpha 1 is written rgb).
	if (!/rgb\(/.test(ring)) return "focus ring is faint or missing (" + ring.trim() + "): " + name;
	return "ok " + name;
})()`

// a11yAudit checks the rendered page and returns its problems.
const a11yAudit = `(() => {
	const problems = [];
	const visible = el => !!(el.offsetWidth || el.offsetHeight || el.getClientRects().length) &&
		getComputedStyle(el).visibility !== "hidden";
	const describe = el => el.tagName.toLowerCase() + (el.id ? "#" + el.id : "") +
		(el.dataset && el.dataset.testid ? "[data-testid=" + el.dataset.testid + "]" : "") +
		(typeof el.className === "string" && el.className.trim() ? "." + el.className.trim().split(/\s+/).join(".") : "");
	const text = el => (el.innerText || el.textContent || "").replace(/\s+/g, " ").trim();
	const labelled = el => {
		const by = el.getAttribute("aria-labelledby");
		return !!((el.getAttribute("aria-label") || "").trim() ||
			(by && by.split(/\s+/).some(id => text(document.getElementById(id) || document.createElement("i")))) ||
			(el.labels && [...el.labels].some(l => text(l))));
	};

	if (!document.documentElement.lang) problems.push("<html> has no lang");
	if (!document.title.trim()) problems.push("no <title>");
	if (document.querySelectorAll("h1").length !== 1) problems.push(document.querySelectorAll("h1").length + " <h1> elements; want 1");
	const toasts = document.getElementById("toasts");
	if (toasts && !(toasts.getAttribute("role") === "status" && toasts.getAttribute("aria-live") === "polite"))
		problems.push("#toasts is not a polite status region");
	const alerts = document.getElementById("alerts");
	if (alerts && !alerts.getAttribute("aria-live")) problems.push("#alerts is not a live region");

	// Form controls have labels.
	document.querySelectorAll("input:not([type=hidden]), select, textarea").forEach(el => {
		if (!labelled(el)) problems.push("form control without a label: " + describe(el));
	});
	// Buttons and links have names.
	document.querySelectorAll("button, a[href], [role=button], input[type=submit], input[type=button]").forEach(el => {
		const name = (el.getAttribute("aria-label") || "").trim() || (labelled(el) ? "x" : "") || text(el) ||
			(el.value || "").trim() || [...el.querySelectorAll("img[alt]")].map(i => i.alt).join("").trim();
		if (!name) problems.push("button or link without discernible text: " + describe(el));
	});
	document.querySelectorAll("img").forEach(el => {
		if (!el.hasAttribute("alt")) problems.push("image without alt: " + describe(el));
	});

	// Text contrast, WCAG AA: 4.5:1, or 3:1 for large text.
	const parse = c => {
		const m = c.match(/rgba?\(([^)]+)\)/);
		if (!m) return null;
		const p = m[1].split(/[ ,\/]+/).filter(Boolean).map(Number);
		return { r: p[0], g: p[1], b: p[2], a: p.length > 3 ? p[3] : 1 };
	};
	const over = (top, under) => ({
		r: top.r * top.a + under.r * (1 - top.a), g: top.g * top.a + under.g * (1 - top.a),
		b: top.b * top.a + under.b * (1 - top.a), a: 1,
	});
	const background = el => {
		const layers = [];
		for (let e = el; e; e = e.parentElement) {
			const bg = parse(getComputedStyle(e).backgroundColor);
			if (bg && bg.a > 0) {
				layers.push(bg);
				if (bg.a >= 1) break;
			}
		}
		let c = { r: 255, g: 255, b: 255, a: 1 };
		for (let i = layers.length - 1; i >= 0; i--) c = over(layers[i], c);
		return c;
	};
	const lum = c => {
		const f = v => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); };
		return 0.2126 * f(c.r) + 0.7152 * f(c.g) + 0.0722 * f(c.b);
	};
	const ratio = (a, b) => { const x = lum(a), y = lum(b); return (Math.max(x, y) + 0.05) / (Math.min(x, y) + 0.05); };
	const seen = new Set();
	const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
	for (let n = walker.nextNode(); n; n = walker.nextNode()) {
		if (!n.nodeValue.trim()) continue;
		const el = n.parentElement;
		if (!el || seen.has(el) || !visible(el) || el.closest(".sr-only, [disabled], .skip, [aria-hidden=true]")) continue;
		seen.add(el);
		const cs = getComputedStyle(el);
		const fg = parse(cs.color);
		if (!fg) continue;
		const bg = background(el);
		const r = ratio(over(fg, bg), bg);
		const size = parseFloat(cs.fontSize), bold = Number(cs.fontWeight) >= 700;
		const need = size >= 24 || (bold && size >= 18.66) ? 3 : 4.5;
		if (r < need) {
			problems.push("contrast " + r.toFixed(2) + ":1 < " + need + ":1 for " + JSON.stringify(n.nodeValue.trim().slice(0, 30)) +
				" in " + describe(el) + " (" + cs.color + " on rgb(" + [bg.r, bg.g, bg.b].map(Math.round).join(", ") + "))");
		}
	}
	return problems;
})()`
