package app_test

import (
	"bytes"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"permsync/app/apptest"
)

// BenchmarkSessionRefresh measures the "Refresh session" button end to end,
// as htmx sends it: POST /session/refresh with HX-Request, X-CSRF-Token and
// the panel's gen. Per operation the app loads the session, calls
// refresh_claims for alice at devkinde (M2M credentials are configured),
// runs the refresh-token grant under the session's lock (devkinde signs new
// tokens; the refresh token rotates), verifies and stores the new tokens
// encrypted, and renders the session panel and the top bar fragment. Each
// iteration sends the gen of the panel the previous one returned, so every
// click is a real refresh, never "already refreshed".
//
// PERMSYNC_KINDE_RATE is raised to 1000 so the Management API limiter
// (5/s by default, 100/s in apptest) does not pace the loop: this is the
// latency of one click, not the limiter.
func BenchmarkSessionRefresh(b *testing.B) {
	env := startBenchEnv(b, apptest.Options{Env: map[string]string{"PERMSYNC_KINDE_RATE": "1000"}})
	alice := env.Login(b, "alice@acme.test")
	page := alice.Get(b, "/dashboard")
	gen, ok := page.Doc(b).Find(`form.refresh-form input[name="gen"]`).Attr("value")
	if !ok {
		b.Fatalf("no refresh form on the dashboard:\n%.1500s", page.Body)
	}
	h := http.Header{
		"Hx-Request":     {"true"},
		"Hx-Current-Url": {env.URL + "/dashboard"},
		"X-Csrf-Token":   {alice.CSRF(b)},
		"Content-Type":   {"application/x-www-form-urlencoded"},
	}
	c := newBenchClient(b, env, alice)
	env.ResetGrants()
	env.DevKinde.ResetRequests()

	b.ReportAllocs()
	for b.Loop() {
		status, body, err := c.do(http.MethodPost, "/session/refresh",
			strings.NewReader(url.Values{"gen": {gen}}.Encode()), h, true)
		if err != nil || status != http.StatusOK || !bytes.Contains(body, []byte(`data-testid="session-panel"`)) {
			b.Fatalf("POST /session/refresh = %d, %v:\n%.1500s", status, err, body)
		}
		next, ok := panelGeneration(body)
		if !ok {
			b.Fatalf("no gen in the refreshed panel:\n%.1500s", body)
		}
		gen = next
	}

	// One grant per click, each preceded by refresh_claims: anything else
	// means the loop measured something other than a full refresh.
	grants := env.Grants("refresh_token")
	claims := 0
	reqs := env.DevKinde.Requests()
	for _, r := range reqs {
		if r.Method == http.MethodPost && strings.HasSuffix(r.Path, "/refresh_claims") {
			claims++
		}
	}
	if grants != b.N {
		b.Errorf("%d refresh grants for %d clicks; want one each", grants, b.N)
	}
	// devkinde keeps the last 10,000 requests; count only when none fell off.
	if len(reqs) < 10000 && claims != b.N {
		b.Errorf("%d refresh_claims calls for %d clicks; want one each", claims, b.N)
	}
	b.ReportMetric(perSecond(b.N, b.Elapsed()), "refreshes/s")
}

// panelGeneration reads the value of the gen input from a session panel.
func panelGeneration(body []byte) (string, bool) {
	i := bytes.Index(body, []byte(`name="gen"`))
	if i < 0 {
		return "", false
	}
	// The input's value attribute may come before or after its name; look
	// within the input element.
	start := bytes.LastIndexByte(body[:i], '<')
	end := bytes.IndexByte(body[i:], '>')
	if start < 0 || end < 0 {
		return "", false
	}
	tag := body[start : i+end]
	_, v, ok := bytes.Cut(tag, []byte(`value="`))
	if !ok {
		return "", false
	}
	v, _, ok = bytes.Cut(v, []byte(`"`))
	if !ok {
		return "", false
	}
	if _, err := strconv.ParseInt(string(v), 10, 64); err != nil {
		return "", false
	}
	return string(v), true
}
