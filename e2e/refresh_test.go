package e2e

import (
	"testing"

	"github.com/chromedp/chromedp"

	"permsync/app/apptest"
)

func TestRefreshSessionUpdatesPanelWithoutReload(t *testing.T) {
	env := apptest.Start(t, apptest.Options{})
	ctx := newBrowser(t)
	signIn(t, ctx, env, "alice@acme.test")

	if got := eval[string](t, ctx, `document.querySelector('[data-testid="user-email"]').textContent`); got != "alice@acme.test" {
		t.Fatalf("email on dashboard = %q", got)
	}
	keys := eval[[]string](t, ctx, `[...document.querySelectorAll('[data-testid="permission"]')].map(e => e.dataset.key)`)
	if len(keys) < 2 {
		t.Fatalf("permissions on dashboard = %v", keys)
	}
	// The countdown is live: app.js rewrites it every second.
	waitFor(t, ctx, "a ticking countdown", `/\d+h|\d+m|\d+s/.test(document.querySelector('[data-testid="countdown"]').textContent)`)

	// A marker that a page load would wipe out.
	eval[bool](t, ctx, `window.__permsyncMarker = true`)
	genBefore := eval[string](t, ctx, `document.querySelector('form.refresh-form input[name="gen"]').value`)
	env.ResetGrants()

	step(t, ctx, "click Refresh session", chromedp.Click(chromedp.CSS(`[data-testid="refresh-session"]`)))
	waitFor(t, ctx, "the change summary", `!!document.querySelector('[data-testid="change-summary"]')`)

	if !eval[bool](t, ctx, `window.__permsyncMarker === true`) {
		t.Fatal("the page reloaded: the marker is gone")
	}
	if genAfter := eval[string](t, ctx, `document.querySelector('form.refresh-form input[name="gen"]').value`); genAfter == genBefore {
		t.Fatalf("panel not swapped: generation still %s", genAfter)
	}
	if !eval[bool](t, ctx, `document.querySelector('[data-testid="refreshed-at"]').tagName === 'TIME'`) {
		t.Error("last refresh time not shown after the refresh")
	}
	if got := env.Refreshes(); got != 1 {
		t.Errorf("refresh_token grants = %d; want 1", got)
	}
	// The POST passed the CSRF check (no error alert).
	if eval[bool](t, ctx, `!!document.querySelector('.alert-error')`) {
		t.Fatal("an error alert is shown")
	}
}
