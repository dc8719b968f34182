package e2e

import (
	"context"
	"html/template"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"permsync/app/apptest"
	"permsync/internal/testsupport"
)

// TestCookieTossingIsRefused: the admin is signed in; a page on another
// port of the same host (same site, another origin) plants CSRF cookies of
// its own choosing, among them a real signed-out binding with its real
// token that it fetched from permsync itself, then posts to an admin
// action (revoke bob's sessions) and to /logout, carrying that token. Both
// must be refused: bob keeps his session and the admin stays signed in.
func TestCookieTossingIsRefused(t *testing.T) {
	env := apptest.Start(t, apptest.Options{})
	env.Login(t, "bob@acme.test")
	bobID := env.UserID(t, "bob@acme.test")
	if rows, err := env.DB.UserSessions(t.Context(), bobID); err != nil || len(rows) != 1 {
		t.Fatalf("bob's sessions = %d, %v; want 1", len(rows), err)
	}

	// The attacker's binding and token, as permsync gives them to anyone.
	visitor := env.NewClient(t)
	token := visitor.CSRF(t)
	pre := visitor.Cookie("permsync_presession")
	if token == "" || pre == nil {
		t.Fatal("permsync gave a signed-out visitor no token or binding")
	}

	evil := startEvilOrigin(t, env.URL, bobID, pre.Value, token)
	if hostOf(t, evil) != hostOf(t, env.URL) || evil == env.URL {
		t.Fatalf("the attacker %s must be the app's host %s on another port", evil, env.URL)
	}

	browser := newBrowser(t)
	signIn(t, browser, env, "admin@acme.test")
	step(t, browser, "visit the attacker's page", chromedp.Navigate(evil+"/"))
	// Once its forged admin action (fetch, with cookies) is answered, the
	// page's auto-submitting sign-out form navigates the tab to the app.
	waitNavigated(t, browser, env.URL)
	body := eval[string](t, browser, `document.body.innerText`)
	if !strings.Contains(body, "did not come from permsync") {
		t.Errorf("the forged sign-out form was not refused; the page says:\n%s", body)
	}

	// Nothing happened: bob still has his session, the admin is still in.
	if rows, _ := env.DB.UserSessions(t.Context(), bobID); len(rows) != 1 {
		t.Errorf("bob's sessions after the forged revoke = %d; want 1", len(rows))
	}
	step(t, browser, "the admin is still signed in",
		chromedp.Navigate(env.URL+"/dashboard"),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="session-panel"]`)),
	)
}

// startEvilOrigin serves the attacker's page on a new port of the app's
// host. The page sets cookies for the host (cookies ignore ports), posts to
// the admin action with fetch and reports when that is answered, then
// submits a sign-out form to the app.
func startEvilOrigin(t *testing.T, appURL, bobID, preValue, token string) string {
	t.Helper()
	page := template.Must(template.New("evil").Parse(`<!DOCTYPE html>
<html><body>
<form id="logout" method="post" action="{{.App}}/logout"><input type="hidden" name="_csrf" value="{{.Token}}"></form>
<script>
document.cookie = "permsync_csrf=tossed; path=/";
document.cookie = "permsync_presession={{.Pre}}; path=/";
var body = new URLSearchParams({_csrf: "{{.Token}}"});
fetch("{{.App}}/admin/users/{{.Bob}}/sessions/revoke", {method: "POST", mode: "no-cors", credentials: "include", body: body})
  .catch(function () {})
  .then(function () {
    document.getElementById("logout").submit();
  });
</script>
</body></html>`))
	u, _ := url.Parse(appURL)
	ln, err := net.Listen("tcp", net.JoinHostPort(u.Hostname(), "0"))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_ = page.Execute(w, map[string]any{"App": template.URL(appURL), "Token": token, "Pre": preValue, "Bob": bobID})
	}))
	srv.Listener.Close()
	srv.Listener = ln
	srv.Start()
	t.Cleanup(srv.Close)
	return srv.URL
}

// waitNavigated waits until the tab shows a loaded page under prefix,
// riding out the navigation in between.
func waitNavigated(t *testing.T, ctx context.Context, prefix string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		sctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		href, err := chromedp.Run(sctx, chromedp.Evaluate[string](`document.readyState === "complete" ? location.href : ""`))
		cancel()
		if err == nil && strings.HasPrefix(href, prefix) {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("the tab never reached %s", prefix)
}

func hostOf(t *testing.T, raw string) string {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return u.Hostname()
}

// TestRevokedTabStaysSignedOut: bob has his dashboard open; the admin
// revokes his sessions. Kinde's answer to ending his sessions is held back
// for a moment: until it comes, bob's permsync session stands and his tab
// is not told (Kinde first, then permsync's sessions, then the pages).
// Then bob's tab lands on a page saying an admin signed him out, and
// signing in again asks for his password. The admin's count of his live
// sessions is zero.
func TestRevokedTabStaysSignedOut(t *testing.T) {
	env := apptest.Start(t, apptest.Options{})
	bobID := env.UserID(t, "bob@acme.test")
	browser := newBrowser(t)
	bob := newProfile(t, browser)
	signIn(t, bob, env, "bob@acme.test")
	waitFor(t, bob, "bob's event stream", `document.documentElement.dataset.live === "open"`)

	adm := newProfile(t, browser)
	signIn(t, adm, env, "admin@acme.test")
	hold := env.HoldKinde(t, http.MethodDelete, "/api/v1/users/"+bobID+"/sessions")
	step(t, adm, "revoke bob's sessions",
		chromedp.Navigate(env.URL+"/admin/users/"+bobID+"/sessions/revoke"),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="revoke-confirmed"]`)),
		chromedp.Click(chromedp.CSS(`[data-testid="revoke-confirmed"]`)),
	)
	testsupport.Eventually(t, 20*time.Second, "permsync to ask Kinde to end bob's sessions", func() bool {
		return hold.Waiting() == 1
	})
	if rows, err := env.DB.UserSessions(t.Context(), bobID); err != nil || len(rows) != 1 {
		t.Errorf("while Kinde ends bob's sessions, his permsync sessions = %d, %v; want 1 (ended only after Kinde's)",
			len(rows), err)
	}
	if path := eval[string](t, bob, `location.pathname + location.search`); path != "/dashboard" {
		t.Errorf("while Kinde ends bob's sessions, his tab is at %s; want it untold, still on /dashboard", path)
	}
	hold.Release()
	step(t, adm, "the revoke answers", chromedp.WaitVisible(chromedp.CSS(`.alert, [role="status"]`)))

	waitNavigated(t, bob, env.URL+"/?signed_out=admin")
	if body := eval[string](t, bob, `document.body.innerText`); !strings.Contains(body, "administrator signed you out") {
		t.Errorf("bob's tab does not say an admin signed him out:\n%s", body)
	}
	step(t, bob, "sign in again asks for the password",
		chromedp.Navigate(env.URL+"/login"),
		chromedp.WaitVisible(chromedp.CSS(`input[name="password"]`)),
	)
	if rows, err := env.DB.UserSessions(t.Context(), bobID); err != nil || len(rows) != 0 {
		t.Fatalf("bob's live sessions after the revoke = %d, %v; want 0", len(rows), err)
	}
	step(t, adm, "the admin's page counts bob's live sessions",
		chromedp.Navigate(env.URL+"/admin/users/"+bobID),
		chromedp.WaitVisible(chromedp.CSS(`main`)),
	)
	if body := eval[string](t, adm, `document.querySelector("main").innerText`); strings.Contains(body, "1 live session") {
		t.Errorf("the admin's page still counts a live session for bob:\n%s", body)
	}
}
