package e2e

import (
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"permsync/app/apptest"
)

// TestMeasureTryIt measures README's "Try it" as a person would see it, in
// a real browser: alice has her dashboard open, the admin deletes
// export:reports on its page. It reports, for each run, how long the
// admin's click takes to show the fan-out page, and how long from the click
// until alice's open dashboard no longer shows the permission. It asserts
// nothing about time (the figures go to docs/BENCHMARKS.md); it runs only
// with PERMSYNC_MEASURE=<runs>, e.g.
//
//	PERMSYNC_MEASURE=5 go test -count=1 -run TestMeasureTryIt -v ./e2e/
func TestMeasureTryIt(t *testing.T) {
	runs, _ := strconv.Atoi(os.Getenv("PERMSYNC_MEASURE"))
	if runs <= 0 {
		t.Skip("set PERMSYNC_MEASURE=<runs> to measure README's Try it")
	}
	browser := newBrowser(t)
	var clicks, drops []time.Duration
	for i := range runs {
		env := apptest.Start(t, apptest.Options{})
		alice := newProfile(t, browser)
		adm := newProfile(t, browser)
		signIn(t, alice, env, "alice@acme.test")
		waitFor(t, alice, "alice's event stream", `document.documentElement.dataset.live === "open"`)
		// Alice's tab notes the moment the permission leaves her page.
		eval[bool](t, alice, `(() => {
			const gone = () => !document.querySelector('#session-panel [data-testid="permission"][data-key="export:reports"]:not([data-revoked="true"])');
			new MutationObserver(() => { if (!window.__droppedAt && gone()) window.__droppedAt = Date.now(); })
				.observe(document.body, {subtree: true, childList: true, attributes: true});
			return true;
		})()`)
		signIn(t, adm, env, "admin@acme.test")
		step(t, adm, "open export:reports",
			chromedp.Navigate(env.URL+"/admin/permissions/"+apptest.PermissionID(t, env.Kinde(), "export:reports")),
			chromedp.WaitVisible(chromedp.CSS(`[data-testid="confirm-key"]`)),
			chromedp.SendKeys(chromedp.CSS(`[data-testid="confirm-key"]`), "export:reports"))
		clickedAt := eval[float64](t, adm, `(() => { const t = Date.now(); document.querySelector('[data-testid="delete-permission"]').click(); return t; })()`)
		step(t, adm, "the fan-out page", chromedp.WaitVisible(chromedp.CSS(`[data-testid="fanout-panel"]`)))
		// The fan-out page's own navigation timing: when it was on screen.
		shownAt := eval[float64](t, adm, `performance.timeOrigin + performance.getEntriesByType("navigation")[0].domContentLoadedEventEnd`)
		waitFor(t, alice, "export:reports to leave alice's page", `!!window.__droppedAt`)
		droppedAt := eval[float64](t, alice, `window.__droppedAt`)
		click := time.Duration((shownAt - clickedAt) * float64(time.Millisecond))
		drop := time.Duration((droppedAt - clickedAt) * float64(time.Millisecond))
		clicks, drops = append(clicks, click), append(drops, drop)
		t.Logf("run %d: click to fan-out page %v, click to alice's page without export:reports %v", i+1,
			click.Round(time.Millisecond), drop.Round(time.Millisecond))
	}
	t.Logf("click to fan-out page: %s", spread(clicks))
	t.Logf("click to alice's page: %s", spread(drops))
}

// spread reads like "min 120ms, median 180ms, max 400ms (5 runs)".
func spread(ds []time.Duration) string {
	s := slices.Clone(ds)
	slices.Sort(s)
	r := func(d time.Duration) string { return d.Round(time.Millisecond).String() }
	return "min " + r(s[0]) + ", median " + r(s[len(s)/2]) + ", max " + r(s[len(s)-1]) + " (" + strconv.Itoa(len(s)) + " runs)"
}
