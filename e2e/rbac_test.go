package e2e

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/chromedp/chromedp"

	"permsync/app/apptest"
)

// TestRBACEditFromTheBrowser: alice has /reports open. In another browser
// the admin opens the Access panel, the analyst role, clicks Remove beside
// export:reports, reads the preview (alice loses it), types the key and
// confirms. Alice's Export button goes without a reload; the edit page
// counts the undo window down, then shows Kinde's answer. With
// PERMSYNC_SCREENSHOTS set it also saves each page of the flow.
func TestRBACEditFromTheBrowser(t *testing.T) {
	env := apptest.Start(t, apptest.Options{Env: map[string]string{"PERMSYNC_UNDO_WINDOW": "3s"}})
	dir := os.Getenv("PERMSYNC_SCREENSHOTS")
	shot := func(string) {}
	browser := newBrowser(t)
	alice := newProfile(t, browser)
	adm := newProfile(t, browser)
	if dir != "" {
		shot = func(name string) {
			capture(t, adm, filepath.Join(dir, name+".png"))
			captureMobile(t, adm, filepath.Join(dir, name+"-mobile.png"))
		}
	}

	signIn(t, alice, env, "alice@acme.test")
	signIn(t, adm, env, "admin@acme.test")
	step(t, alice, "open reports", chromedp.Navigate(env.URL+"/reports"),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="export"]`)))
	waitFor(t, alice, "alice's event stream", `document.documentElement.dataset.live === "open"`)

	step(t, adm, "the Access panel", chromedp.Navigate(env.URL+"/admin/rbac"),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="rbac-roles"]`)))
	shot("admin-rbac")
	step(t, adm, "the analyst role", chromedp.Click(chromedp.CSS(`[data-testid="rbac-role"][data-key="analyst"] a`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="role-detail"]`)))
	shot("admin-role")
	step(t, adm, "Remove export:reports",
		chromedp.Click(chromedp.CSS(`[data-testid="role-permission"][data-key="export:reports"] [data-testid="remove-permission"]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="edit-preview"]`)))
	if got := eval[string](t, adm, `[...document.querySelectorAll('[data-testid="losers"] [data-testid="effect"]')].map(e => e.dataset.email).join(",")`); got != "alice@acme.test" {
		t.Fatalf("the preview's losers = %q; want alice", got)
	}
	step(t, adm, "type the key", chromedp.SendKeys(chromedp.CSS(`[data-testid="confirm-word"]`), "export:reports"))
	shot("admin-edit-preview")
	step(t, adm, "confirm", chromedp.Click(chromedp.CSS(`[data-testid="confirm-edit"]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="edit-status"]`)))
	if state := eval[string](t, adm, `document.querySelector('[data-testid="edit-status"]').dataset.state`); state != "pending" && state != "applying" {
		t.Fatalf("the edit page right after confirming says %q", state)
	}
	shot("admin-edit-pending")

	waitFor(t, alice, "the Export button to go", `!document.querySelector('[data-testid="export"]')`)
	waitFor(t, adm, "the edit to be applied (the status updates itself)",
		`document.querySelector('[data-testid="edit-status"]')?.dataset.finished === "true"`)
	if state := eval[string](t, adm, `document.querySelector('[data-testid="edit-status"]').dataset.state`); state != "applied" {
		t.Fatalf("the edit ended %q", state)
	}
	shot("admin-edit")
	step(t, adm, "alice's access", chromedp.Navigate(env.URL+"/admin/users/"+env.UserID(t, "alice@acme.test")+"/access"),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="org-access"]`)))
	shot("admin-user-access")
}
