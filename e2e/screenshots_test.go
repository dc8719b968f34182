package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"permsync/app/apptest"
	"permsync/devkinde"
)

// TestScreenshots saves PNGs of the landing, dashboard, reports, 403 and 404
// pages, of the admin panel (overview, permissions, permission detail,
// users, a fan-out in flight after a real delete, and the webhook Kinde sent
// for it), and of Kinde being unreachable (the dashboard's Refresh session
// and an admin page), into the folder named by PERMSYNC_SCREENSHOTS (e.g.
// docs/screenshots). Most pages are also taken at a phone's size, as
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
	// Five-minute tokens, as in dev mode, so the countdown reads like a demo.
	// A larger team, and Kinde calls paced at a few a second, so the fan-out
	// is caught in flight with real numbers.
	env := apptest.Start(t, apptest.Options{
		AccessTokenTTL: 5 * time.Minute,
		Seed:           screenshotSeed(),
		Env:            map[string]string{"PERMSYNC_KINDE_RATE": "6"},
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
	screenshotAdmin(t, env, adm, dir)

	// Kinde goes down: Refresh session keeps alice signed in and says so;
	// an admin page that needs Kinde says what still works.
	env.SetOutage(apptest.Outage503)
	defer env.SetOutage(apptest.NoOutage)
	step(t, alice, "dashboard", chromedp.Navigate(env.URL+"/dashboard"), chromedp.WaitVisible(chromedp.CSS(`[data-testid="refresh-session"]`)))
	step(t, alice, "refresh with Kinde down", chromedp.Click(chromedp.CSS(`[data-testid="refresh-session"]`)))
	waitFor(t, alice, "the warning", `!!document.querySelector('#session-panel [data-testid="alert"]')`)
	capture(t, alice, filepath.Join(dir, "kinde-unavailable.png"))
	captureMobile(t, alice, filepath.Join(dir, "kinde-unavailable-mobile.png"))
	// The admin pages share a snapshot of Kinde for a few seconds; once it
	// is stale the page says Kinde cannot be reached.
	reloadUntilWithin(t, adm, time.Minute, "the admin page to say Kinde is down", env.URL+"/admin/permissions",
		`[data-testid="admin"]`, `!!document.querySelector('[data-testid="admin-problem"]')`)
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
// delete:reports preview, deletes it for real, catches the fan-out in
// flight, then shows the overview and users once it is done, and the
// webhooks page once Kinde's webhook for the delete is processed.
func screenshotAdmin(t *testing.T, env *apptest.Env, adm context.Context, dir string) {
	t.Helper()
	// A few editors are signed in, so the preview and the users page show
	// live sessions.
	for _, email := range []string{"erin@acme.test", "frank@acme.test", "carol@acme.test"} {
		env.Login(t, email)
	}
	signIn(t, adm, env, "admin@acme.test")
	step(t, adm, "permissions", chromedp.Navigate(env.URL+"/admin/permissions"),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="permissions"]`)))
	capture(t, adm, filepath.Join(dir, "admin-permissions.png"))

	id := ""
	for _, p := range env.Seed.Permissions {
		if p.Key == "delete:reports" {
			id = p.ID
		}
	}
	step(t, adm, "permission detail", chromedp.Navigate(env.URL+"/admin/permissions/"+id),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="danger-zone"]`)))
	step(t, adm, "type the key", chromedp.SendKeys(chromedp.CSS(`[data-testid="confirm-key"]`), "delete:reports"))
	capture(t, adm, filepath.Join(dir, "admin-permission.png"))
	captureMobile(t, adm, filepath.Join(dir, "admin-permission-mobile.png"))

	step(t, adm, "delete", chromedp.Click(chromedp.CSS(`[data-testid="delete-permission"]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="fanout-panel"]`)))
	// Catch it in flight: some users done, some pending.
	waitFor(t, adm, "the fan-out to be under way", `(() => {
		const p = document.querySelector('[data-testid="progress"]');
		if (!p) return false;
		const done = Number(p.dataset.done), total = Number(p.dataset.total);
		return p.dataset.finished === "true" || (done >= total * 0.35 && done < total * 0.8);
	})()`)
	capture(t, adm, filepath.Join(dir, "admin-fanout.png"))
	captureMobile(t, adm, filepath.Join(dir, "admin-fanout-mobile.png"))
	waitFor(t, adm, "the fan-out to finish", `document.querySelector('[data-testid="progress"]')?.dataset.finished === "true"`)

	step(t, adm, "overview", chromedp.Navigate(env.URL+"/admin"), chromedp.WaitVisible(chromedp.CSS(`[data-testid="stats"]`)))
	capture(t, adm, filepath.Join(dir, "admin-overview.png"))
	captureMobile(t, adm, filepath.Join(dir, "admin-overview-mobile.png"))
	step(t, adm, "users", chromedp.Navigate(env.URL+"/admin/users"), chromedp.WaitVisible(chromedp.CSS(`[data-testid="users"]`)))
	capture(t, adm, filepath.Join(dir, "admin-users.png"))

	// Kinde's webhook for the delete reaches permsync too.
	reloadUntil(t, adm, "the delete's webhook", env.URL+"/admin/webhooks", `[data-testid="admin"]`,
		`!!document.querySelector('`+deletionWebhookRow+`')`)
	capture(t, adm, filepath.Join(dir, "admin-webhooks.png"))
}

// screenshotSeed is the default seed plus an editor role (read and delete
// reports) and a team of editors, so deleting delete:reports reaches enough
// users for the fan-out page to show real progress.
func screenshotSeed() *devkinde.Seed {
	seed := devkinde.DefaultSeed()
	seed.Roles = append(seed.Roles, devkinde.SeedRole{Key: "editor", Name: "Editor",
		Description: "Reads and deletes reports", Permissions: []string{"read:reports", "delete:reports"}})
	names := []string{
		"Erin Ellis", "Frank Fischer", "Grace Garcia", "Hugo Hansen", "Ines Ivanova", "Jonas Jensen",
		"Kira Kato", "Liam Lopez", "Maya Müller", "Noah Nguyen", "Olga Olsen", "Pablo Perez",
		"Quinn Quade", "Rosa Rossi", "Sami Saleh", "Tara Tanaka", "Uma Ueda", "Victor Vidal",
	}
	for i, n := range names {
		first, last, _ := strings.Cut(n, " ")
		m := devkinde.SeedMembership{Code: devkinde.DefaultOrgCode, Roles: []string{"editor"}}
		if i%6 == 5 {
			// A few hold it directly instead.
			m = devkinde.SeedMembership{Code: devkinde.DefaultOrgCode, Roles: []string{"viewer"},
				Permissions: []string{"delete:reports"}}
		}
		seed.Users = append(seed.Users, devkinde.SeedUser{
			Email: fmt.Sprintf("%s@acme.test", strings.ToLower(first)), FirstName: first, LastName: last,
			Password: devkinde.DemoPassword, Organizations: []devkinde.SeedMembership{m},
		})
	}
	return seed
}
