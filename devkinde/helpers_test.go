package devkinde

import (
	"bytes"
	"context"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/net/html"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"permsync/internal/testsupport"
)

// testKeys are generated once: RSA generation is too slow to repeat for
// every server the tests start. Two keys alternate so that a restarted
// server without a data folder would get a different key.
var (
	testKeys    [2]*rsa.PrivateKey
	testKeyNext atomic.Uint32
)

func TestMain(m *testing.M) {
	for i := range testKeys {
		k, err := generateKey()
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		testKeys[i] = k
	}
	generateKey = func() (*rsa.PrivateKey, error) {
		return testKeys[testKeyNext.Add(1)%uint32(len(testKeys))], nil
	}
	os.Exit(m.Run())
}

// testCallback is the app callback the tests register. It is never
// contacted: the browser client stops at the redirect.
const testCallback = "http://app.test/callback"

// testEnv is a started devkinde with clients for both halves of its API.
type testEnv struct {
	t   *testing.T
	srv *Server
	// api calls the Management API; every response is validated against
	// Kinde's OpenAPI spec (contract_test.go).
	api *http.Client
}

// newEnv starts devkinde on a random loopback port. mod may adjust the config.
func newEnv(t *testing.T, mod ...func(*Config)) *testEnv {
	t.Helper()
	return newEnvAt(t, nil, mod...)
}

// testClock is a clock the test moves by hand, so that a lifetime (a
// refresh token's overlap, say) ends when the test says, not when a busy
// machine gets round to the next request.
type testClock struct{ ns atomic.Int64 }

func newTestClock() *testClock {
	c := &testClock{}
	c.ns.Store(time.Now().UnixNano())
	return c
}

func (c *testClock) Now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *testClock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

// newEnvAt is newEnv with devkinde reading the time from clock (nil: the
// real clock).
func newEnvAt(t *testing.T, clock *testClock, mod ...func(*Config)) *testEnv {
	t.Helper()
	cfg := Config{
		RefreshOverlap:   10 * time.Second,
		WebhookRetryBase: 20 * time.Millisecond,
		Logger:           testsupport.Logger(t),
	}
	for _, f := range mod {
		f(&cfg)
	}
	srv, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if clock != nil {
		srv.now = clock.Now // before Start: no request reads it yet
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	srv.AllowRedirect(WebClientID, testCallback)
	return &testEnv{t: t, srv: srv, api: contractClient(t)}
}

func (e *testEnv) ctx() context.Context { return context.Background() }

// provider discovers devkinde with go-oidc.
func (e *testEnv) provider() *oidc.Provider {
	e.t.Helper()
	p, err := oidc.NewProvider(e.ctx(), e.srv.URL())
	if err != nil {
		e.t.Fatal(err)
	}
	return p
}

// oauthConfig is the web client's x/oauth2 config.
func (e *testEnv) oauthConfig(scopes ...string) *oauth2.Config {
	if len(scopes) == 0 {
		scopes = []string{oidc.ScopeOpenID, "profile", "email", "offline"}
	}
	ep := e.provider().Endpoint()
	ep.AuthStyle = oauth2.AuthStyleInHeader
	return &oauth2.Config{ClientID: WebClientID, ClientSecret: WebClientSecret, Endpoint: ep,
		RedirectURL: testCallback, Scopes: scopes}
}

// browser is an http.Client with a cookie jar that stops at redirects to
// the app's callback.
func newBrowser(t *testing.T) *http.Client {
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{Jar: jar, CheckRedirect: func(req *http.Request, via []*http.Request) error {
		if strings.HasPrefix(req.URL.String(), "http://app.test/") {
			return http.ErrUseLastResponse
		}
		return nil
	}}
}

// htmlForm is a parsed HTML form.
type htmlForm struct {
	action string
	fields url.Values
	inputs map[string]string // name → type
	submit bool
}

// parseForm finds the first form in an HTML page.
func parseForm(t *testing.T, body string) htmlForm {
	t.Helper()
	doc, err := html.Parse(strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	f := htmlForm{fields: url.Values{}, inputs: map[string]string{}}
	found := false
	var walk func(n *html.Node, inForm bool)
	walk = func(n *html.Node, inForm bool) {
		if n.Type == html.ElementNode {
			attrs := map[string]string{}
			for _, a := range n.Attr {
				attrs[a.Key] = a.Val
			}
			switch n.Data {
			case "form":
				if found {
					return
				}
				found, inForm = true, true
				f.action = attrs["action"]
			case "input":
				if inForm && attrs["name"] != "" {
					f.inputs[attrs["name"]] = attrs["type"]
					f.fields.Set(attrs["name"], attrs["value"])
				}
			case "button":
				if inForm && (attrs["type"] == "" || attrs["type"] == "submit") {
					f.submit = true
				}
			}
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c, inForm)
		}
	}
	walk(doc, false)
	if !found {
		t.Fatalf("no form in page:\n%s", body)
	}
	return f
}

// get fetches a URL with the browser and returns the response and body.
func get(t *testing.T, c *http.Client, u string) (*http.Response, string) {
	t.Helper()
	resp, err := c.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// authFlow is one authorization request in progress.
type authFlow struct {
	conf     *oauth2.Config
	verifier string
	state    string
	nonce    string
}

func (e *testEnv) newFlow(scopes ...string) *authFlow {
	return &authFlow{conf: e.oauthConfig(scopes...), verifier: oauth2.GenerateVerifier(),
		state: "st-" + randomHex(8), nonce: "n-" + randomHex(8)}
}

func (f *authFlow) authURL(extra ...oauth2.AuthCodeOption) string {
	opts := append([]oauth2.AuthCodeOption{oauth2.S256ChallengeOption(f.verifier), oidc.Nonce(f.nonce)}, extra...)
	return f.conf.AuthCodeURL(f.state, opts...)
}

// signIn drives the sign-in page: it opens authURL, submits the form with
// the credentials and returns the callback query (code, state or error).
func (e *testEnv) signIn(browser *http.Client, authURL, email, password string) url.Values {
	e.t.Helper()
	resp, body := get(e.t, browser, authURL)
	if resp.StatusCode != http.StatusOK {
		e.t.Fatalf("auth page: status %d: %s", resp.StatusCode, body)
	}
	form := parseForm(e.t, body)
	form.fields.Set("email", email)
	form.fields.Set("password", password)
	action, err := resp.Request.URL.Parse(form.action)
	if err != nil {
		e.t.Fatal(err)
	}
	post, err := browser.PostForm(action.String(), form.fields)
	if err != nil {
		e.t.Fatal(err)
	}
	defer post.Body.Close()
	b, _ := io.ReadAll(post.Body)
	if post.StatusCode != http.StatusFound {
		e.t.Fatalf("sign-in post: status %d: %s", post.StatusCode, b)
	}
	return callbackQuery(e.t, post)
}

func callbackQuery(t *testing.T, resp *http.Response) url.Values {
	t.Helper()
	loc, err := resp.Location()
	if err != nil {
		t.Fatalf("no redirect: %v", err)
	}
	if !strings.HasPrefix(loc.String(), testCallback) {
		t.Fatalf("redirect to %s, want the callback", loc)
	}
	return loc.Query()
}

// login signs a user in through the HTML form and exchanges the code.
func (e *testEnv) login(email string, extra ...oauth2.AuthCodeOption) (*oauth2.Token, *authFlow) {
	e.t.Helper()
	f := e.newFlow()
	q := e.signIn(newBrowser(e.t), f.authURL(extra...), email, DemoPassword)
	if q.Get("state") != f.state || q.Get("code") == "" {
		e.t.Fatalf("callback query %v", q)
	}
	tok, err := f.conf.Exchange(e.ctx(), q.Get("code"), oauth2.VerifierOption(f.verifier))
	if err != nil {
		e.t.Fatalf("exchange: %v", err)
	}
	return tok, f
}

// refresh runs a refresh_token grant.
func (e *testEnv) refresh(refreshToken string) (*oauth2.Token, error) {
	conf := e.oauthConfig()
	return conf.TokenSource(e.ctx(), &oauth2.Token{RefreshToken: refreshToken, Expiry: time.Unix(1, 0)}).Token()
}

// mustRefresh refreshes or fails the test.
func (e *testEnv) mustRefresh(refreshToken string) *oauth2.Token {
	e.t.Helper()
	tok, err := e.refresh(refreshToken)
	if err != nil {
		e.t.Fatalf("refresh: %v", err)
	}
	return tok
}

// claimsOf decodes a JWT payload without verifying it (tests verify
// signatures separately through go-oidc).
func claimsOf(t *testing.T, jwt string) map[string]any {
	t.Helper()
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %q", jwt)
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// permissionsOf returns the permissions claim of an access token.
func permissionsOf(t *testing.T, accessToken string) []string {
	t.Helper()
	var out []string
	for _, p := range claimsOf(t, accessToken)["permissions"].([]any) {
		out = append(out, p.(string))
	}
	return out
}

// m2mToken gets a Management API token, optionally for a subset of scopes.
func (e *testEnv) m2mToken(scopes ...string) string {
	e.t.Helper()
	cc := clientcredentials.Config{ClientID: M2MClientID, ClientSecret: M2MClientSecret,
		TokenURL: e.srv.URL() + "/oauth2/token", Scopes: scopes, AuthStyle: oauth2.AuthStyleInParams,
		EndpointParams: url.Values{"audience": {e.srv.URL() + "/api"}}}
	tok, err := cc.Token(e.ctx())
	if err != nil {
		e.t.Fatalf("client credentials: %v", err)
	}
	return tok.AccessToken
}

// call makes a Management API request with the full-scope M2M token and
// decodes the JSON answer into out (if not nil). It returns the response.
func (e *testEnv) call(method, path string, body, out any) *http.Response {
	e.t.Helper()
	return e.callWith(e.m2mToken(), method, path, body, out)
}

func (e *testEnv) callWith(token, method, path string, body, out any) *http.Response {
	e.t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			e.t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, e.srv.URL()+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := e.api.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			e.t.Fatalf("%s %s: status %d, decode %q: %v", method, path, resp.StatusCode, raw, err)
		}
	}
	return resp
}

// expectStatus fails when resp has another status.
func expectStatus(t *testing.T, resp *http.Response, want int) {
	t.Helper()
	if resp.StatusCode != want {
		t.Fatalf("%s %s: status %d, want %d", resp.Request.Method, resp.Request.URL.Path, resp.StatusCode, want)
	}
}

// oauthErrorCode extracts the RFC 6749 error code from an x/oauth2 error.
func oauthErrorCode(err error) string {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		return re.ErrorCode
	}
	return ""
}

// waitFor polls cond until it holds or a generous deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// freshTokens runs the cautious quirks without SameToken: a refresh after
// refresh_claims issues a new access token.
func freshTokens(c *Config) {
	q := CautiousQuirks()
	q.SameToken = false
	c.Quirks = &q
}

// withQuirks runs devkinde with exactly q.
func withQuirks(q Quirks) func(*Config) {
	return func(c *Config) { c.Quirks = &q }
}

// roleUpdatedSent runs the cautious quirks except NoRoleUpdated: edits of a
// role's permissions send role.updated.
func roleUpdatedSent(c *Config) {
	q := CautiousQuirks()
	q.NoRoleUpdated = false
	c.Quirks = &q
}
