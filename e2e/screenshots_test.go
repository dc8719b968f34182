package e2e

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"permsync/app/apptest"
)

// TestScreenshots saves PNGs of the landing, dashboard, reports and 403 pages
// into the folder named by PERMSYNC_SCREENSHOTS (e.g. docs/screenshots). It
// is skipped when the variable is unset.
func TestScreenshots(t *testing.T) {
	dir := os.Getenv("PERMSYNC_SCREENSHOTS")
	if dir == "" {
		t.Skip("set PERMSYNC_SCREENSHOTS=<dir> to save screenshots")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	// Five-minute tokens, as in dev mode, so the countdown reads like a demo.
	env := apptest.Start(t, apptest.Options{AccessTokenTTL: 5 * time.Minute})
	browser := newBrowser(t)
	landing := newProfile(t, browser)
	step(t, landing, "landing", chromedp.Navigate(env.URL+"/"), chromedp.WaitVisible(chromedp.CSS(`[data-testid="landing"]`)))
	capture(t, landing, filepath.Join(dir, "landing.png"))

	alice := newProfile(t, browser)
	signIn(t, alice, env, "alice@acme.test")
	step(t, alice, "refresh", chromedp.Click(chromedp.CSS(`[data-testid="refresh-session"]`)))
	waitFor(t, alice, "the change summary", `!!document.querySelector('[data-testid="change-summary"]')`)
	capture(t, alice, filepath.Join(dir, "dashboard.png"))

	step(t, alice, "reports", chromedp.Navigate(env.URL+"/reports"), chromedp.WaitVisible(chromedp.CSS(`[data-testid="reports"]`)))
	capture(t, alice, filepath.Join(dir, "reports.png"))

	bob := newProfile(t, browser)
	signIn(t, bob, env, "bob@acme.test")
	step(t, bob, "403", chromedp.Navigate(env.URL+"/reports/export"), chromedp.WaitVisible(chromedp.CSS(`[data-testid="error-page"]`)))
	capture(t, bob, filepath.Join(dir, "forbidden.png"))
}
