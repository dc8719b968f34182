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
		adminDelete(t, env, adminTab, id, "export:reports")
	})
}

// adminDelete deletes a permission in permsync's admin panel, typing its key
// to confirm, and waits for the fan-out page.
func adminDelete(t *testing.T, env *apptest.Env, adminTab context.Context, id, key string) {
	t.Helper()
	step(t, adminTab, "delete "+key+" in the admin panel",
		chromedp.Navigate(env.URL+"/admin/permissions/"+id),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="confirm-key"]`)),
		chromedp.SendKeys(chromedp.CSS(`[data-testid="confirm-key"]`), key),
		chromedp.Click(chromedp.CSS(`[data-testid="delete-permission"]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="fanout-panel"]`)),
	)
}

// TestAdminDeleteUpdatesReportsPage: alice has /reports open. The admin
// deletes export:reports: her Export button goes, her navigation is swapped
// for the server's and a toast says what changed. Then the admin deletes
// read:reports: the Reports link goes and the page itself turns into the
// 403 it now is, in place. The page never reloads.
func TestAdminDeleteUpdatesReportsPage(t *testing.T) {
	env := apptest.Start(t, apptest.Options{})
	browser := newBrowser(t)
	alice := newProfile(t, browser)
	adminTab := newProfile(t, browser)

	signIn(t, alice, env, "alice@acme.test")
	signIn(t, adminTab, env, "admin@acme.test")
	step(t, alice, "open reports", chromedp.Navigate(env.URL+"/reports"),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="export"]`)))
	waitFor(t, alice, "alice's event stream", `document.documentElement.dataset.live === "open"`)
	// Marks a reload, or a navigation the server did not send, would wipe.
	eval[bool](t, alice, `window.__permsyncMarker = true`)
	eval[bool](t, alice, `(document.getElementById("topbar").dataset.marker = "before") === "before"`)
	const navLinks = `[...document.querySelectorAll('#topbar .nav-link')].map(a => a.textContent.trim()).join(",")`
	if got := eval[string](t, alice, navLinks); got != "Dashboard,Reports" {
		t.Fatalf("alice's navigation before = %q", got)
	}

	adminDelete(t, env, adminTab, apptest.PermissionID(t, env.Kinde(), "export:reports"), "export:reports")
	waitFor(t, alice, "the Export button to go", `!document.querySelector('[data-testid="export"]')`)
	waitFor(t, alice, "the locked Export", `!!document.querySelector('#export-action [data-testid="export-locked"]')`)
	waitFor(t, alice, "the navigation to be swapped", `!document.getElementById("topbar").dataset.marker`)
	if got := eval[string](t, alice, navLinks); got != "Dashboard,Reports" {
		t.Errorf("alice's navigation after export:reports went = %q", got)
	}
	waitFor(t, alice, "the toast", `[...document.querySelectorAll('[data-testid="toast"]')].some(e => e.textContent.includes("Export reports was removed"))`)
	if eval[int](t, alice, `document.querySelectorAll('[data-testid="report"]').length`) == 0 {
		t.Error("the reports table went with the Export button")
	}

	adminDelete(t, env, adminTab, apptest.PermissionID(t, env.Kinde(), "read:reports"), "read:reports")
	waitFor(t, alice, "the Reports link to go", navLinks+` === "Dashboard"`)
	waitFor(t, alice, "the page to turn into the 403",
		`document.querySelector('#page [data-testid="error-page"]')?.dataset.status === "403"`)
	if key := eval[string](t, alice, `document.querySelector('[data-testid="missing-permission"]').dataset.key`); key != "read:reports" {
		t.Errorf("the 403 names %q", key)
	}
	if n := eval[int](t, alice, `document.querySelectorAll('[data-testid="reports"], [data-testid="report"]').length`); n != 0 {
		t.Errorf("%d pieces of the reports page are still shown", n)
	}
	waitFor(t, alice, "the warning toast", `[...document.querySelectorAll('[data-testid="toast"][data-kind="warning"]')].some(e => e.textContent.includes("Read reports was removed"))`)
	if title := eval[string](t, alice, `document.title`); !strings.Contains(title, "access") {
		t.Errorf("title = %q", title)
	}
	if !eval[bool](t, alice, `window.__permsyncMarker === true && location.pathname === "/reports"`) {
		t.Fatal("alice's page reloaded or navigated")
	}
	// The page is still live: the stream is open and the live-sync element
	// survived the swap.
	if !eval[bool](t, alice, `!!document.querySelector('#live > #live-sync') && document.documentElement.dataset.live === "open"`) {
		t.Error("the page stopped listening for live updates")
	}
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
	if toast := eval[string](t, alice, `document.querySelector('[data-testid="toast"]').textContent`); !strings.Contains(toast, "Export reports was removed from your access") {
		t.Errorf("toast = %q; want it to say Export reports was removed from your access", toast)
	}

	// Kinde's webhook for the deletion reaches permsync either way; the
	// admin sees it and its outcome on /admin/webhooks.
	reloadUntil(t, adminTab, "the deletion's webhook", env.URL+"/admin/webhooks", `[data-testid="admin"]`,
		`!!document.querySelector('`+deletionWebhookRow+`')`)
}
