package e2e

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"permsync/app/apptest"
	"permsync/devkinde"
)

// TestScreenshots saves PNGs of the landing, dashboard, reports, 403 and 404
// pages, of the admin panel (overview, permissions, permission detail,
// roles, users, a user, the fan-out of README's Try it, deleting
// export:reports, and the webhook Kinde sent for it), of alice's dashboard
// right after that delete, and of Kinde being unreachable (the dashboard's
// Refresh session and an admin page), into the folder named by
// PERMSYNC_SCREENSHOTS (e.g. docs/screenshots). It uses the demo's own seed
// (make run's). Pages are also taken at a phone's size, as
// <name>-mobile.png, and each phone shot fails the test if the page scrolls
// sideways. It is skipped when the variable is unset.
func TestScreenshots(t *testing.T) {
	dir := os.Getenv("PERMSYNC_SCREENSHOTS")
	if dir == "" {
		t.Skip("set PERMSYNC_SCREENSHOTS=<dir> to save screenshots")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	// The demo exactly as make run seeds it (admin, alice, bob, carol), and
	// five-minute tokens, as in dev mode, so the countdown reads like a
	// demo. Kinde calls are paced at two a second, so the fan-out is caught
	// in flight.
	env := apptest.Start(t, apptest.Options{
		AccessTokenTTL: 5 * time.Minute,
		Env:            map[string]string{"PERMSYNC_KINDE_RATE": "2"},
	})
	browser := newBrowser(t)
	landing := newProfile(t, browser)
	step(t, landing, "landing", chromedp.Navigate(env.URL+"/"), chromedp.WaitVisible(chromedp.CSS(`[data-testid="landing"]`)))
	capture(t, landing, filepath.Join(dir, "landing.png"))
	captureMobile(t, landing, filepath.Join(dir, "landing-mobile.png"))

	alice := newProfile(t, browser)
	signIn(t, alice, env, "alice@acme.test")
	step(t, alice, "refresh", chromedp.Click(chromedp.CSS(`[data-testid="refresh-session"]`)))
	waitFor(t, alice, "the change summary", `!!document.querySelector('[data-testid="change-summary"]')`)
	capture(t, alice, filepath.Join(dir, "dashboard.png"))
	captureMobile(t, alice, filepath.Join(dir, "dashboard-mobile.png"))

	step(t, alice, "reports", chromedp.Navigate(env.URL+"/reports"), chromedp.WaitVisible(chromedp.CSS(`[data-testid="reports"]`)))
	capture(t, alice, filepath.Join(dir, "reports.png"))
	captureMobile(t, alice, filepath.Join(dir, "reports-mobile.png"))

	bob := newProfile(t, browser)
	signIn(t, bob, env, "bob@acme.test")
	step(t, bob, "403", chromedp.Navigate(env.URL+"/reports/export"), chromedp.WaitVisible(chromedp.CSS(`[data-testid="error-page"]`)))
	capture(t, bob, filepath.Join(dir, "forbidden.png"))
	captureMobile(t, bob, filepath.Join(dir, "forbidden-mobile.png"))
	step(t, bob, "404", chromedp.Navigate(env.URL+"/reports/2026/q9"), chromedp.WaitVisible(chromedp.CSS(`[data-testid="error-page"]`)))
	capture(t, bob, filepath.Join(dir, "not-found.png"))
	captureMobile(t, bob, filepath.Join(dir, "not-found-mobile.png"))

	adm := newProfile(t, browser)
	// Alice keeps her dashboard open while the admin deletes export:reports.
	step(t, alice, "dashboard", chromedp.Navigate(env.URL+"/dashboard"), chromedp.WaitVisible(chromedp.CSS(`[data-testid="session-panel"]`)))
	waitFor(t, alice, "alice's event stream", `document.documentElement.dataset.live === "open"`)
	screenshotAdmin(t, env, adm, alice, dir)

	// Kinde goes down: Refresh session keeps alice signed in and says so;
	// an admin page that needs Kinde says what still works.
	env.SetOutage(apptest.Outage503)
	defer env.SetOutage(apptest.NoOutage)
	step(t, alice, "dashboard", chromedp.Navigate(env.URL+"/dashboard"), chromedp.WaitVisible(chromedp.CSS(`[data-testid="refresh-session"]`)))
	step(t, alice, "refresh with Kinde down", chromedp.Click(chromedp.CSS(`[data-testid="refresh-session"]`)))
	waitFor(t, alice, "the warning", `!!document.querySelector('#session-panel [data-testid="alert"]')`)
	capture(t, alice, filepath.Join(dir, "kinde-unavailable.png"))
	captureMobile(t, alice, filepath.Join(dir, "kinde-unavailable-mobile.png"))
	// The admin pages read the local directory, so with Kinde down they
	// still answer and say how fresh the copy is.
	step(t, adm, "admin with Kinde down", chromedp.Navigate(env.URL+"/admin/permissions"),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="admin"]`)))
	capture(t, adm, filepath.Join(dir, "admin-kinde-unavailable.png"))
	captureMobile(t, adm, filepath.Join(dir, "admin-kinde-unavailable-mobile.png"))
}

// captureMobile saves a full-page PNG of the tab at a phone's size (390×844
// CSS pixels, portrait, touch), then gives the tab its desktop size back.
// A page wider than the phone (one that scrolls sideways) fails the test.
func captureMobile(t *testing.T, ctx context.Context, path string) {
	t.Helper()
	step(t, ctx, "phone viewport", phoneViewport())
	defer step(t, ctx, "desktop viewport", desktopViewport())
	capture(t, ctx, path)
	checkNoSidewaysScroll(t, ctx, filepath.Base(path))
}

// checkNoSidewaysScroll fails the test if the page is wider than the phone
// it is shown on, naming the elements that stick out.
func checkNoSidewaysScroll(t *testing.T, ctx context.Context, what string) {
	t.Helper()
	if w := eval[int](t, ctx, `document.documentElement.scrollWidth`); w > phoneWidth {
		t.Errorf("%s: the page is %dpx wide on a %dpx phone (it scrolls sideways): %s", what, w, phoneWidth,
			eval[string](t, ctx, widestElements))
	}
}

// widestElements names the elements that stick out past the viewport, for
// the failure message of a page that scrolls sideways.
const widestElements = `[...document.querySelectorAll("body *")]
	.filter(e => e.getBoundingClientRect().right > document.documentElement.clientWidth + 1)
	.filter(e => !e.closest(".table-wrap, .admin-nav, .nav"))
	.slice(0, 8)
	.map(e => e.tagName.toLowerCase() + (e.id ? "#" + e.id : "") + (e.className && e.className.baseVal === undefined ? "." + String(e.className).trim().split(/\s+/).join(".") : "") + " " + Math.round(e.getBoundingClientRect().right) + "px")
	.join(", ")`

// screenshotAdmin signs in as the admin, shows the permission list and the
// export:reports preview, deletes it for real (as README's Try it does),
// catches the fan-out in flight, then shows the overview, roles, users and
// a user once it is done (and alice's dashboard after the delete), and the webhooks page once Kinde's webhook for
// the delete is processed. Each page is taken at desktop and phone sizes.
func screenshotAdmin(t *testing.T, env *apptest.Env, adm, alice context.Context, dir string) {
	t.Helper()
	// Carol is signed in too, so the preview and the users page show a
	// live session beside alice's.
	env.Login(t, "carol@acme.test")
	signIn(t, adm, env, "admin@acme.test")
	step(t, adm, "permissions", chromedp.Navigate(env.URL+"/admin/permissions"),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="permissions"]`)))
	capture(t, adm, filepath.Join(dir, "admin-permissions.png"))
	captureMobile(t, adm, filepath.Join(dir, "admin-permissions-mobile.png"))

	id := env.SeedPermissionID(t, "export:reports")
	step(t, adm, "permission detail", chromedp.Navigate(env.URL+"/admin/permissions/"+id),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="danger-zone"]`)))
	step(t, adm, "type the key", chromedp.SendKeys(chromedp.CSS(`[data-testid="confirm-key"]`), "export:reports"))
	capture(t, adm, filepath.Join(dir, "admin-permission.png"))
	captureMobile(t, adm, filepath.Join(dir, "admin-permission-mobile.png"))

	step(t, adm, "delete", chromedp.Click(chromedp.CSS(`[data-testid="delete-permission"]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="fanout-panel"]`)))
	// Catch it in flight when we can: some users done, some pending.
	waitFor(t, adm, "the fan-out to be under way", `(() => {
		const p = document.querySelector('[data-testid="progress"]');
		if (!p) return false;
		const done = Number(p.dataset.done), total = Number(p.dataset.total);
		return p.dataset.finished === "true" || (done >= 1 && done < total);
	})()`)
	capture(t, adm, filepath.Join(dir, "admin-fanout.png"))
	captureMobile(t, adm, filepath.Join(dir, "admin-fanout-mobile.png"))
	// Alice's open dashboard has dropped it, and says so (the toast stays
	// ten seconds).
	waitFor(t, alice, "alice's toast", `!!document.querySelector('[data-testid="toast"]')`)
	capture(t, alice, filepath.Join(dir, "dashboard-live-update.png"))
	waitFor(t, adm, "the fan-out to finish", `document.querySelector('[data-testid="progress"]')?.dataset.finished === "true"`)

	for _, p := range []struct{ path, ready, name string }{
		{"/admin", `[data-testid="stats"]`, "admin-overview"},
		{"/admin/roles", `[data-testid="roles"]`, "admin-roles"},
		{"/admin/users", `[data-testid="users"]`, "admin-users"},
		{"/admin/users/" + env.UserID(t, "alice@acme.test"), `[data-testid="user-detail"]`, "admin-user"},
	} {
		step(t, adm, p.name, chromedp.Navigate(env.URL+p.path), chromedp.WaitVisible(chromedp.CSS(p.ready)))
		capture(t, adm, filepath.Join(dir, p.name+".png"))
		captureMobile(t, adm, filepath.Join(dir, p.name+"-mobile.png"))
	}

	// Kinde's webhook for the delete reaches permsync too.
	reloadUntil(t, adm, "the delete's webhook", env.URL+"/admin/webhooks", `[data-testid="admin"]`,
		`!!document.querySelector('`+deletionWebhookRow+`')`)
	capture(t, adm, filepath.Join(dir, "admin-webhooks.png"))
	captureMobile(t, adm, filepath.Join(dir, "admin-webhooks-mobile.png"))
}

// TestScreenshotsAtScale saves the permissions list, the permission page of
// export:reports (about 4,000 holders), the page of its holders after a
// search, and the fan-out page of a deletion reaching thousands of users,
// with the generated tenant of 1,000 organizations and 5,000 users (what
// `make run-large` serves), as admin-*-large.png into PERMSYNC_SCREENSHOTS.
// Skipped when the variable is unset.
func TestScreenshotsAtScale(t *testing.T) {
	dir := os.Getenv("PERMSYNC_SCREENSHOTS")
	if dir == "" {
		t.Skip("set PERMSYNC_SCREENSHOTS=<dir> to save screenshots")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	sd := devkinde.GenerateSeed(devkinde.GenerateOptions{Seed: 1, Organizations: 1000, Users: 5000})
	// A fast first sync; the deletion waits in its undo window.
	env := apptest.Start(t, apptest.Options{Seed: sd, SyncTimeout: 10 * time.Minute,
		Env: map[string]string{"PERMSYNC_KINDE_RATE": "5000", "PERMSYNC_UNDO_WINDOW": "1h"}})
	id := ""
	for _, p := range sd.Permissions {
		if p.Key == "export:reports" {
			id = p.ID
		}
	}
	adm := newProfile(t, newBrowser(t))
	signIn(t, adm, env, "admin@acme.test")
	for _, p := range []struct{ path, ready, name string }{
		{"/admin/permissions", `[data-testid="permissions"]`, "admin-permissions-large"},
		{"/admin/permissions/" + id, `[data-testid="danger-zone"]`, "admin-permission-large"},
		{"/admin/permissions/" + id + "?q=customer0042", `[data-testid="danger-zone"]`, "admin-permission-search-large"},
	} {
		step(t, adm, p.name, chromedp.Navigate(env.URL+p.path), chromedp.WaitVisible(chromedp.CSS(p.ready)))
		capture(t, adm, filepath.Join(dir, p.name+".png"))
	}
	step(t, adm, "delete", chromedp.Navigate(env.URL+"/admin/permissions/"+id),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="danger-zone"]`)),
		chromedp.SendKeys(chromedp.CSS(`[data-testid="confirm-key"]`), "export:reports"),
		chromedp.Click(chromedp.CSS(`[data-testid="delete-permission"]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="fanout-panel"]`)))
	capture(t, adm, filepath.Join(dir, "admin-fanout-large.png"))
}
