package app_test

import (
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"permsync/app/apptest"
	"permsync/events"
	"permsync/internal/testsupport"
	"permsync/store"
)

// tombstone deletes key as far as permsync is concerned, as the admin
// delete does first: tokens still carry it, the server no longer honours it.
func tombstone(t *testing.T, env *apptest.Env, key string) {
	t.Helper()
	now := time.Now()
	_, err := env.DB.AddDenial(t.Context(), store.Denial{
		PermissionKey: key, SettledAt: now, ExpiresAt: now.Add(time.Hour), Reason: "test",
	})
	if err != nil {
		t.Fatal(err)
	}
	events.NotifyTombstonesChanged(env.App.Events())
}

// TestEverySignedInPageListensForLiveUpdates: each signed-in page, the
// error pages included, carries #live-sync asking for its own path, the
// keys it was rendered with, and its content in #page.
func TestEverySignedInPageListensForLiveUpdates(t *testing.T) {
	env := apptest.Start(t, apptest.Options{})
	alice := env.Login(t, "alice@acme.test")
	adm := env.Login(t, "admin@acme.test")
	for _, tc := range []struct {
		c    *apptest.Client
		path string
	}{
		{alice, "/dashboard"}, {alice, "/reports"}, {alice, "/admin"}, {alice, "/no-such-page"},
		{adm, "/admin"}, {adm, "/admin/permissions"}, {adm, "/admin/users"},
	} {
		r := tc.c.Get(t, tc.path)
		doc := r.Doc(t)
		sync := doc.Find(`#live #live-sync`)
		if sync.Length() != 1 {
			t.Errorf("%s: no #live-sync inside #live", tc.path)
			continue
		}
		if got := sync.AttrOr("hx-get", ""); got != tc.path {
			t.Errorf("%s: #live-sync asks for %q", tc.path, got)
		}
		if got := sync.AttrOr("hx-trigger", ""); got != "sse:claims-changed" {
			t.Errorf("%s: #live-sync hx-trigger = %q", tc.path, got)
		}
		if doc.Find(`#live > #shown-permissions[name="shown"]`).Length() != 1 {
			t.Errorf("%s: no shown keys", tc.path)
		}
		if doc.Find(`#live > #page > *`).Length() == 0 {
			t.Errorf("%s: the page's content is not in #page", tc.path)
		}
	}
	if r := env.NewClient(t).Get(t, "/"); r.Doc(t).Find("#live-sync").Length() != 0 {
		t.Error("the signed-out landing page listens for live updates")
	}
}

// TestLiveUpdateKeepsReportsTrue: export:reports goes while alice has
// /reports open. The page's live update hides Export, keeps the Reports link
// and says what changed; /reports/export, open in another tab, turns into
// the 403 in place.
func TestLiveUpdateKeepsReportsTrue(t *testing.T) {
	env := apptest.Start(t, apptest.Options{})
	alice := env.Login(t, "alice@acme.test")
	if alice.Get(t, "/reports").TestID(t, "export").Length() != 1 {
		t.Fatal("alice has no Export button before the deletion")
	}
	shown := "read:reports export:reports"
	tombstone(t, env, "export:reports")

	var r *apptest.Response
	testsupport.Eventually(t, waitFor, "the Export button to go", func() bool {
		r = alice.LiveSync(t, "/reports", shown)
		return r.Doc(t).Find(`#export-action [data-testid="export"]`).Length() == 0
	})
	if r.StatusCode != http.StatusOK || strings.Contains(r.Body, "<html") {
		t.Fatalf("live update = %d:\n%.1500s", r.StatusCode, r.Body)
	}
	doc := r.Doc(t)
	if doc.Find(`#export-action[hx-swap-oob="true"] [data-testid="export-locked"]`).Length() != 1 {
		t.Errorf("no out-of-band locked Export:\n%.1500s", r.Body)
	}
	nav := doc.Find(`#topbar[hx-swap-oob="true"]`)
	if nav.Find(`a.nav-link[href="/reports"]`).Length() != 1 || nav.Find(`a.nav-link[href="/admin"]`).Length() != 0 {
		t.Errorf("navigation = %q", strings.Join(strings.Fields(nav.Find("nav").Text()), " "))
	}
	if toast := r.TestID(t, "toast").Text(); toast != "Export reports was removed from your access." {
		t.Errorf("toast = %q", toast)
	}
	if h := r.Header.Get("HX-Retarget"); h != "" {
		t.Errorf("an allowed page was retargeted to %q", h)
	}

	// A page that is no longer allowed becomes the 403, in place.
	r = alice.LiveSync(t, "/reports/export", shown)
	if r.StatusCode != http.StatusOK || r.Header.Get("HX-Retarget") != "#page" ||
		!strings.HasPrefix(r.Header.Get("HX-Reswap"), "innerHTML") {
		t.Fatalf("live update of /reports/export = %d, retarget %q, reswap %q",
			r.StatusCode, r.Header.Get("HX-Retarget"), r.Header.Get("HX-Reswap"))
	}
	page := r.TestID(t, "error-page")
	if page.AttrOr("data-status", "") != "403" || page.AttrOr("hx-swap-oob", "") != "" {
		t.Errorf("in-place page = %v:\n%.1500s", page.AttrOr("data-status", "none"), r.Body)
	}
	if k := r.TestID(t, "missing-permission").AttrOr("data-key", ""); k != "export:reports" {
		t.Errorf("missing permission = %q", k)
	}
	if title := r.Doc(t).Find("title").Text(); !strings.Contains(title, "access") {
		t.Errorf("title = %q", title)
	}
	toast := r.TestID(t, "toast")
	if toast.AttrOr("data-kind", "") != "warning" || !strings.Contains(toast.Text(), "Export reports was removed from your access.") ||
		!strings.Contains(toast.Text(), "no longer open this page") {
		t.Errorf("toast = %q (%s)", toast.Text(), toast.AttrOr("data-kind", ""))
	}

	// Asked again with the keys the 403 was rendered with, nothing more
	// happens: the page already is the 403.
	r = alice.LiveSync(t, "/reports/export", "read:reports")
	if r.Header.Get("HX-Retarget") != "" || r.TestID(t, "error-page").Length() != 0 || r.TestID(t, "toast").Length() != 0 {
		t.Errorf("second live update of the 403 = retarget %q:\n%.1000s", r.Header.Get("HX-Retarget"), r.Body)
	}

	// The ordinary request for the page is unchanged: a full page.
	full := alice.Get(t, "/reports")
	if full.StatusCode != http.StatusOK || !strings.Contains(full.Body, "<html") ||
		full.TestID(t, "export-locked").Length() != 1 {
		t.Errorf("GET /reports = %d, locked export %d", full.StatusCode, full.TestID(t, "export-locked").Length())
	}
	// A 404 page's live update is the navigation and the toast alone.
	r = alice.LiveSync(t, "/no-such-page", shown)
	if r.StatusCode != http.StatusOK || r.Header.Get("HX-Retarget") != "" || r.TestID(t, "error-page").Length() != 0 ||
		r.Doc(t).Find(`#topbar[hx-swap-oob="true"]`).Length() != 1 {
		t.Errorf("live update of a 404 page = %d:\n%.1000s", r.StatusCode, r.Body)
	}
}

// TestLiveUpdateTakesAdminAway: the admin permission goes while an admin has
// admin pages open: each becomes the 403 in place and the Admin link goes.
func TestLiveUpdateTakesAdminAway(t *testing.T) {
	env := apptest.Start(t, apptest.Options{})
	adm := env.Login(t, "admin@acme.test")
	r := adm.LiveSync(t, "/admin/permissions", "admin:permissions")
	if r.Header.Get("HX-Retarget") != "" || r.TestID(t, "toast").Length() == 0 {
		t.Fatalf("before: live update = %d, retarget %q", r.StatusCode, r.Header.Get("HX-Retarget"))
	}
	shown := "read:reports export:reports delete:reports admin:permissions"
	tombstone(t, env, "admin:permissions")
	testsupport.Eventually(t, waitFor, "the admin pages to close", func() bool {
		r = adm.LiveSync(t, "/admin/permissions", shown)
		return r.Header.Get("HX-Retarget") == "#page"
	})
	for _, path := range []string{"/admin/permissions", "/admin", "/admin/users/" + env.UserID(t, "alice@acme.test")} {
		r = adm.LiveSync(t, path, shown)
		if r.StatusCode != http.StatusOK || r.TestID(t, "error-page").AttrOr("data-status", "") != "403" {
			t.Errorf("%s: live update = %d:\n%.800s", path, r.StatusCode, r.Body)
		}
		if r.Doc(t).Find(`#topbar a[href="/admin"]`).Length() != 0 {
			t.Errorf("%s: the Admin link is still in the navigation", path)
		}
		if !strings.Contains(r.TestID(t, "toast").Text(), "Admin permissions was removed") {
			t.Errorf("%s: toast = %q", path, r.TestID(t, "toast").Text())
		}
		if r.TestID(t, "admin").Length() != 0 {
			t.Errorf("%s: admin content in the live update", path)
		}
	}
}

// TestEventStreamsAreCapped: a session may hold DefaultMaxStreamsPerSession
// streams and a user DefaultMaxStreamsPerUser; past that a stream gets 429
// with a readable reason, and a slot frees when a stream closes.
func TestEventStreamsAreCapped(t *testing.T) {
	const perSession, perUser = 8, 32 // handlers.DefaultMaxStreams*
	env := apptest.Start(t, apptest.Options{})
	alice := env.Login(t, "alice@acme.test")
	var streams []*sseStream
	for range perSession {
		s := openStream(t, alice)
		if s.status != http.StatusOK {
			t.Fatalf("stream %d = %d", len(streams)+1, s.status)
		}
		streams = append(streams, s)
	}
	refused := openRefused(t, alice)
	if refused.StatusCode != http.StatusTooManyRequests || !strings.Contains(refused.Body, "this session (8 at most)") ||
		refused.Header.Get("Retry-After") == "" {
		t.Fatalf("stream past the session cap = %d %q (Retry-After %q)", refused.StatusCode, refused.Body,
			refused.Header.Get("Retry-After"))
	}
	// Another session of the same user is not held back by this one's.
	other := env.Login(t, "alice@acme.test")
	if s := openStream(t, other); s.status != http.StatusOK {
		t.Fatalf("another session's stream = %d", s.status)
	} else {
		s.close()
	}
	// A slot frees when a tab closes, and the session is full again.
	streams[0].close()
	testsupport.Eventually(t, waitFor, "a slot to free", func() bool {
		streams[0] = openStream(t, alice)
		return streams[0].status == http.StatusOK
	})

	// Per user: four full sessions reach the user cap.
	for range perUser/perSession - 1 {
		c := env.Login(t, "alice@acme.test")
		for range perSession {
			if s := openStream(t, c); s.status != http.StatusOK {
				t.Fatalf("stream = %d before the user cap", s.status)
			}
		}
	}
	refused = openRefused(t, other)
	if refused.StatusCode != http.StatusTooManyRequests || !strings.Contains(refused.Body, "this user (32 at most)") {
		t.Fatalf("stream past the user cap = %d %q", refused.StatusCode, refused.Body)
	}
	// Other users are not affected.
	if s := openStream(t, env.Login(t, "bob@acme.test")); s.status != http.StatusOK {
		t.Fatalf("bob's stream = %d", s.status)
	}
}

// openRefused opens /events expecting a refusal, and returns its status,
// headers and body; a stream that opens instead fails the test after 10 s.
func openRefused(t *testing.T, c *apptest.Client) *apptest.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, c.BaseURL+"/events", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", "text/event-stream")
	resp, err := (&http.Client{Jar: c.HTTP.Jar, Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		t.Fatalf("GET /events: %v", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET /events = %d, then %v (a stream opened?)", resp.StatusCode, err)
	}
	return &apptest.Response{Response: resp, Body: string(b)}
}

// TestRefreshSwapsNavigationForThePage: "Refresh session" answers for the
// dashboard, so its out-of-band navigation marks the dashboard as the
// current page (not the POST's own path) and carries the keys now shown.
func TestRefreshSwapsNavigationForThePage(t *testing.T) {
	env := apptest.Start(t, apptest.Options{})
	alice := env.Login(t, "alice@acme.test")
	alice.Get(t, "/dashboard")
	r := alice.HTMX(t, http.MethodPost, "/session/refresh", url.Values{})
	if r.StatusCode != http.StatusOK {
		t.Fatalf("POST /session/refresh = %d", r.StatusCode)
	}
	doc := r.Doc(t)
	if got := doc.Find(`#topbar[hx-swap-oob="true"] a[aria-current="page"]`).AttrOr("href", ""); got != "/dashboard" {
		t.Errorf("current page in the navigation = %q; want /dashboard", got)
	}
	if doc.Find(`#shown-permissions[hx-swap-oob="true"]`).Length() != 1 {
		t.Error("the refresh does not update the shown keys")
	}
}
