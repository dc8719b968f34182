package e2e

import (
	"context"
	"strings"
	"testing"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"permsync/app/apptest"
)

// TestDeleteFormGuidesTheAdmin: on a permission's page the red button is
// disabled until the typed key matches, the field has no placeholder that
// looks like a filled-in key, and the button shows it is working once sent.
// A wrong key that reaches the server (as without JavaScript) comes back on
// the permission's own address with the error shown and the field focused.
// The admin permission has no danger zone, only an explanation.
func TestDeleteFormGuidesTheAdmin(t *testing.T) {
	env := apptest.Start(t, apptest.Options{})
	adm := newProfile(t, newBrowser(t))
	signIn(t, adm, env, "admin@acme.test")
	path := "/admin/permissions/" + apptest.PermissionID(t, env.Kinde(), "export:reports")

	step(t, adm, "open export:reports", chromedp.Navigate(env.URL+path),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="confirm-key"]`)))
	const disabled = `document.querySelector('[data-testid="delete-permission"]').disabled`
	if !eval[bool](t, adm, disabled) {
		t.Error("the delete button is enabled before anything is typed")
	}
	if ph := eval[string](t, adm, `document.querySelector('[data-testid="confirm-key"]').placeholder`); strings.Contains(ph, "export:reports") {
		t.Errorf("the field's placeholder is %q: an empty field looks filled in", ph)
	}
	step(t, adm, "type part of the key", chromedp.SendKeys(chromedp.CSS(`[data-testid="confirm-key"]`), "export:report"))
	if !eval[bool](t, adm, disabled) {
		t.Error("the delete button is enabled for a key that does not match")
	}
	step(t, adm, "finish the key", chromedp.SendKeys(chromedp.CSS(`[data-testid="confirm-key"]`), "s"))
	if eval[bool](t, adm, disabled) {
		t.Error("the delete button stays disabled once the key matches")
	}

	// A wrong key sent anyway (the server is the one that decides).
	eval[bool](t, adm, `(() => {
		const input = document.querySelector('[data-testid="confirm-key"]');
		input.value = "export:report";
		document.querySelector('[data-testid="delete-permission"]').disabled = false;
		return true;
	})()`)
	step(t, adm, "send a wrong key", chromedp.Click(chromedp.CSS(`[data-testid="delete-permission"]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="confirm-error"]`)))
	if got := eval[string](t, adm, `location.pathname`); got != path {
		t.Errorf("after a wrong key the address is %s; want the permission's page %s", got, path)
	}
	if got := eval[string](t, adm, `document.activeElement?.dataset.testid || ""`); got != "confirm-key" {
		t.Errorf("after a wrong key the focus is on %q; want the confirmation field", got)
	}
	if msg := eval[string](t, adm, `document.querySelector('[data-testid="confirm-error"]').textContent`); !strings.Contains(msg, "export:reports") {
		t.Errorf("confirmation error = %q", msg)
	}

	// The right key: the button says it is working until the fan-out page
	// arrives (a MutationObserver notes it in sessionStorage, which
	// survives the navigation).
	eval[bool](t, adm, `(() => {
		const b = document.querySelector('[data-testid="delete-permission"]');
		new MutationObserver(() => {
			if (b.disabled && b.classList.contains("is-pending") && b.textContent.includes("Deleting")) {
				sessionStorage.setItem("pendingSeen", "yes");
			}
		}).observe(b, {attributes: true, childList: true, subtree: true, characterData: true});
		return true;
	})()`)
	step(t, adm, "delete for real",
		chromedp.SendKeys(chromedp.CSS(`[data-testid="confirm-key"]`), "export:reports"),
		chromedp.Click(chromedp.CSS(`[data-testid="delete-permission"]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="fanout-panel"]`)))
	if got := eval[string](t, adm, `sessionStorage.getItem("pendingSeen") || "no"`); got != "yes" {
		t.Error("the delete button did not show a pending state while the delete ran")
	}

	step(t, adm, "open admin:permissions",
		chromedp.Navigate(env.URL+"/admin/permissions/"+apptest.PermissionID(t, env.Kinde(), "admin:permissions")),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="delete-blocked"]`)))
	if eval[bool](t, adm, `!!document.querySelector('[data-testid="danger-zone"], [data-testid="delete-form"]')`) {
		t.Error("the admin permission shows a danger zone")
	}
}

// TestExportRefusalIsVisible: a stale reports page (its live updates not
// arrived) still shows Export after export:reports was deleted; clicking
// it shows the 403 page, not a download that silently fails.
func TestExportRefusalIsVisible(t *testing.T) {
	env := apptest.Start(t, apptest.Options{})
	alice := newProfile(t, newBrowser(t))
	signIn(t, alice, env, "alice@acme.test")
	step(t, alice, "open reports", chromedp.Navigate(env.URL+"/reports"),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="export"]`)))
	if eval[bool](t, alice, `document.querySelector('[data-testid="export"]').hasAttribute("download")`) {
		t.Error("the Export link carries download, which hides a refusal")
	}
	// The page goes stale: it stops asking for its live update.
	eval[bool](t, alice, `(document.getElementById("live-sync").remove(), true)`)

	adm := env.Login(t, "admin@acme.test")
	adm.DeletePermission(t, apptest.PermissionID(t, env.Kinde(), "export:reports"), "export:reports")

	step(t, alice, "click Export on the stale page", chromedp.Click(chromedp.CSS(`[data-testid="export"]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="error-page"]`)))
	if got := eval[string](t, alice, `document.querySelector('[data-testid="error-page"]').dataset.status`); got != "403" {
		t.Errorf("clicking Export shows a %s page; want 403", got)
	}
	if got := eval[string](t, alice, `document.querySelector('[data-testid="missing-permission"]')?.dataset.key || ""`); got != "export:reports" {
		t.Errorf("the refusal names %q; want export:reports", got)
	}
}

// TestLiveIndicatorFollowsTheStream: signed-in pages show whether they are
// live. It says Live once the event stream is open, keeps saying so after
// a live update swaps the navigation, says Reconnecting and then Offline
// when the network goes, and Live again when it comes back.
func TestLiveIndicatorFollowsTheStream(t *testing.T) {
	env := apptest.Start(t, apptest.Options{})
	bob := newProfile(t, newBrowser(t))
	signIn(t, bob, env, "bob@acme.test")
	const state = `document.querySelector('[data-testid="live-status"]')?.dataset.state`
	const text = `document.querySelector('[data-testid="live-status"]')?.textContent.trim()`
	waitFor(t, bob, "the indicator to say Live", state+` === "open"`)
	if got := eval[string](t, bob, text); got != "Live" {
		t.Errorf("indicator text = %q; want Live", got)
	}

	// A live update (an admin refreshes bob's claims) swaps the navigation,
	// which holds the indicator: it must not fall back to Connecting.
	eval[bool](t, bob, `(document.getElementById("topbar").dataset.marker = "before") === "before"`)
	adm := env.Login(t, "admin@acme.test")
	adm.Get(t, "/admin/users")
	adm.NoRedirect().PostForm(t, "/admin/users/"+env.UserID(t, "bob@acme.test")+"/refresh-claims", nil)
	waitFor(t, bob, "the live update to swap the navigation", `!document.getElementById("topbar").dataset.marker`)
	if got := eval[string](t, bob, state); got != "open" {
		t.Errorf("after a live update the indicator says %q; want open", got)
	}

	setOffline(t, bob, true)
	waitFor(t, bob, "the indicator to say Offline", state+` === "offline"`)
	if got := eval[string](t, bob, text); got != "Offline" {
		t.Errorf("indicator text = %q; want Offline", got)
	}
	setOffline(t, bob, false)
	waitFor(t, bob, "the indicator to say Live again", state+` === "open"`)
}

// setOffline takes the tab's network away (or gives it back), as a lost
// connection would.
func setOffline(t *testing.T, ctx context.Context, offline bool) {
	t.Helper()
	throughput := float64(-1)
	if offline {
		throughput = 0
	}
	step(t, ctx, "network offline", chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
		if _, err := chromedp.Call(ctx, network.Enable, network.EnableParams{}); err != nil {
			return err
		}
		rules := []*network.Conditions{} // none: the network as it is
		if offline {
			rules = append(rules, &network.Conditions{Offline: true})
		}
		_, err := chromedp.Call(ctx, network.EmulateNetworkConditionsByRule,
			network.EmulateNetworkConditionsByRuleParams{MatchedNetworkConditions: rules})
		if err != nil {
			return err
		}
		_, err = chromedp.Call(ctx, network.OverrideNetworkState, network.OverrideNetworkStateParams{
			Offline: offline, DownloadThroughput: throughput, UploadThroughput: throughput})
		return err
	}))
}

// TestPhoneAdminLayout: at a phone's size the admin tables become stacked
// cards whose actions are on screen, every admin tab is visible without
// scrolling the strip, nothing scrolls sideways, and the dashboard's
// Refresh session button is on the first screen.
func TestPhoneAdminLayout(t *testing.T) {
	env := apptest.Start(t, apptest.Options{})
	browser := newBrowser(t)
	adm := newProfile(t, browser)
	signIn(t, adm, env, "admin@acme.test")
	step(t, adm, "phone viewport", phoneViewport())

	step(t, adm, "dashboard", chromedp.Navigate(env.URL+"/dashboard"),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="refresh-session"]`)))
	if top := eval[float64](t, adm, `document.querySelector('[data-testid="refresh-session"]').getBoundingClientRect().bottom`); top > phoneHeight {
		t.Errorf("Refresh session is %.0fpx down a %dpx phone screen", top, phoneHeight)
	}

	step(t, adm, "users", chromedp.Navigate(env.URL+"/admin/users"),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="users"]`)))
	checkNoSidewaysScroll(t, adm, "/admin/users")
	if got := eval[string](t, adm, `getComputedStyle(document.querySelector('[data-testid="user"]')).display`); got != "block" {
		t.Errorf("a user row is display %q on a phone; want a stacked card (block)", got)
	}
	// Every row's actions are on screen, and every cell but the title and
	// the actions carries its column's label.
	offscreen := eval[[]string](t, adm, `[...document.querySelectorAll('[data-testid="refresh-claims"], [data-testid="revoke-sessions"]')]
		.filter(b => { const r = b.getBoundingClientRect(); return r.width === 0 || r.left < 0 || r.right > innerWidth; })
		.map(b => b.closest("tr").dataset.email + " " + b.dataset.testid)`)
	if len(offscreen) > 0 {
		t.Errorf("user actions off screen on a phone: %v", offscreen)
	}
	if n := eval[int](t, adm, `document.querySelectorAll('[data-testid="user"] td[data-label]').length`); n == 0 {
		t.Error("no labelled cells: stacked cards would show values without their names")
	}

	hidden := eval[[]string](t, adm, `[...document.querySelectorAll('.admin-nav-link')]
		.filter(a => { const r = a.getBoundingClientRect(); return r.width === 0 || r.left < 0 || r.right > innerWidth; })
		.map(a => a.textContent.trim())`)
	if len(hidden) > 0 {
		t.Errorf("admin tabs off screen on a phone: %v", hidden)
	}

	// A fan-out's users, the webhook list and a permission's holders stack too.
	adminDelete(t, env, adm, apptest.PermissionID(t, env.Kinde(), "delete:reports"), "delete:reports")
	for _, page := range []struct{ path, table string }{
		{"", "fanout-items"}, // the fan-out page the delete landed on
		{"/admin/permissions/" + apptest.PermissionID(t, env.Kinde(), "export:reports"), "affected"},
		{"/admin", "fanouts"},
	} {
		if page.path != "" {
			step(t, adm, "open "+page.path, chromedp.Navigate(env.URL+page.path),
				chromedp.WaitVisible(chromedp.CSS(`[data-testid="`+page.table+`"]`)))
		}
		checkNoSidewaysScroll(t, adm, page.table)
		if got := eval[string](t, adm, `getComputedStyle(document.querySelector('[data-testid="`+page.table+`"] tbody tr')).display`); got != "block" {
			t.Errorf("%s rows are display %q on a phone; want stacked cards", page.table, got)
		}
	}
}
