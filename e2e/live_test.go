package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"permsync/app/apptest"
)

// TestAdminDeleteUpdatesOpenPage: alice has her dashboard open in one
// browser; in another, an admin deletes export:reports in permsync's admin
// panel. Within moments alice's page updates without a reload: the Export
// link goes and a toast says what changed.
func TestAdminDeleteUpdatesOpenPage(t *testing.T) {
	liveDeletion(t, func(t *testing.T, env *apptest.Env, adminTab context.Context, id string) {
		step(t, adminTab, "delete export:reports in the admin panel",
			chromedp.Navigate(env.URL+"/admin/permissions/"+id),
			chromedp.WaitVisible(chromedp.CSS(`[data-testid="confirm-key"]`)),
			chromedp.SendKeys(chromedp.CSS(`[data-testid="confirm-key"]`), "export:reports"),
			chromedp.Click(chromedp.CSS(`[data-testid="delete-permission"]`)),
		)
	})
}

// TestKindeDeleteUpdatesOpenPage: the same, with the permission deleted in
// Kinde (devkinde's Management API, as in Kinde's dashboard): Kinde's signed
// webhook reaches permsync, and the admin then finds the delivery on
// /admin/webhooks.
func TestKindeDeleteUpdatesOpenPage(t *testing.T) {
	liveDeletion(t, func(t *testing.T, env *apptest.Env, _ context.Context, id string) {
		if err := env.Kinde().DeletePermission(context.Background(), id); err != nil {
			t.Fatal(err)
		}
	})
}

// deletionWebhookRow is the /admin/webhooks row of a processed (or failed)
// permission.deleted webhook.
const deletionWebhookRow = `[data-testid="webhook"][data-type="permission.deleted"]:not([data-status="received"])`

// liveDeletion signs alice and an admin in, in two browser contexts, runs
// del to delete export:reports, and checks alice's open dashboard.
func liveDeletion(t *testing.T, del func(t *testing.T, env *apptest.Env, adminTab context.Context, id string)) {
	env := apptest.Start(t, apptest.Options{})
	browser := newBrowser(t)
	alice := newProfile(t, browser)
	adminTab := newProfile(t, browser)

	signIn(t, alice, env, "alice@acme.test")
	signIn(t, adminTab, env, "admin@acme.test")
	waitFor(t, alice, "alice's event stream", `document.documentElement.dataset.live === "open"`)
	if !eval[bool](t, alice, `!!document.querySelector('[data-testid="link-export"]')`) {
		t.Fatal("alice has no Export link before the deletion")
	}
	eval[bool](t, alice, `window.__permsyncMarker = true`) // a reload would wipe it out

	id := apptest.PermissionID(t, env.Kinde(), "export:reports")
	start := time.Now()
	del(t, env, adminTab, id)
	waitFor(t, alice, "the Export link to go", `!document.querySelector('[data-testid="link-export"]')`)
	t.Logf("alice's page updated %s after the deletion started", time.Since(start).Round(time.Millisecond))

	if !eval[bool](t, alice, `window.__permsyncMarker === true`) {
		t.Fatal("alice's page reloaded")
	}
	if !eval[bool](t, alice, `!!document.querySelector('[data-testid="locked-export"]')`) {
		t.Error("the export resource is not shown as locked")
	}
	held := eval[[]string](t, alice, `[...document.querySelectorAll('[data-testid="permission"]:not([data-revoked="true"])')].map(e => e.dataset.key)`)
	for _, k := range held {
		if k == "export:reports" {
			t.Errorf("alice's page still shows export:reports as held: %v", held)
		}
	}
	waitFor(t, alice, "the toast", `!!document.querySelector('[data-testid="toast"]')`)
	if toast := eval[string](t, alice, `document.querySelector('[data-testid="toast"]').textContent`); !strings.Contains(toast, "−export:reports") {
		t.Errorf("toast = %q; want it to say −export:reports", toast)
	}

	// Kinde's webhook for the deletion reaches permsync either way; the
	// admin sees it and its outcome on /admin/webhooks.
	reloadUntil(t, adminTab, "the deletion's webhook", env.URL+"/admin/webhooks", `[data-testid="admin"]`,
		`!!document.querySelector('`+deletionWebhookRow+`')`)
}
