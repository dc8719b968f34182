// Package apptest runs permsync for integration tests exactly as it runs in
// production: devkinde (the Kinde stand-in) and the app each on their own
// random loopback port, talking over real HTTP, with a fresh database per
// test. Clients sign in through devkinde's real HTML form with a cookie jar.
//
//	env := apptest.Start(t, apptest.Options{})
//	alice := env.Login(t, "alice@acme.test")
//	resp := alice.Get(t, "/dashboard")
//	keys := resp.Permissions(t)
package apptest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"permsync/app"
	"permsync/devkinde"
	"permsync/internal/testsupport"
	"permsync/kinde"
	"permsync/store"
)

// Options tune an Env. The zero value is the default seed, Kinde's default
// token lifetimes, M2M credentials configured, and SQLite.
type Options struct {
	// Seed replaces devkinde's default seed.
	Seed *devkinde.Seed
	// AccessTokenTTL etc. are passed to devkinde; 0 keeps its defaults.
	// Keep AccessTokenTTL above auth.RefreshWindow (60 s) unless the test
	// wants every request to refresh.
	AccessTokenTTL  time.Duration
	RefreshTokenTTL time.Duration
	RefreshOverlap  time.Duration
	// NoM2M starts the app without Management API credentials.
	NoM2M bool
	// DevKinde adjusts devkinde's config before it is built (e.g. Quirks).
	DevKinde func(*devkinde.Config)
	// CustomDomain serves devkinde's sign-in on a second host, a custom
	// domain, and configures the app as Kinde says to: KINDE_ISSUER_URL is
	// the custom domain, KINDE_DOMAIN the Kinde domain that alone serves
	// M2M tokens and the Management API.
	CustomDomain bool
	// Config adjusts the app's config before the app is built.
	Config func(*app.Config)
	// Env adds or overrides environment variables fed to app.LoadConfig.
	Env map[string]string
	// SyncTimeout bounds how long Start waits for the directory's first
	// full sync; 0 means 60 s. A generated tenant of thousands of users
	// needs more.
	SyncTimeout time.Duration
	// LogLevel is the level of the app's and devkinde's logs, written to
	// the test's output (shown on failure or with -v). Default: Warn, or
	// PERMSYNC_TEST_LOG (debug, info, warn, error) when set.
	LogLevel *slog.Level
}

// Env is a running devkinde and app.
type Env struct {
	// DevKinde is the identity provider; use it to change users, roles and
	// permissions, read its request log, or set rate limits and faults.
	DevKinde *devkinde.Server
	// App is the running app.
	App *app.App
	// URL is the app's base URL (no trailing slash).
	URL string
	// IssuerURL is devkinde's Kinde domain: the Management API, M2M tokens
	// and, without a custom domain, sign-in.
	IssuerURL string
	// CustomDomainURL is the custom sign-in domain with
	// Options.CustomDomain, else "".
	CustomDomainURL string
	// DB is the app's database.
	DB *store.DB
	// Config is the app's configuration.
	Config app.Config
	// Seed is the seed devkinde started from.
	Seed *devkinde.Seed

	proxy *kindeProxy
	log   *slog.Logger
	opts  Options
	vars  map[string]string // the environment the first app was configured from

	hostsMu sync.Mutex
	hosts   map[string]bool // app replicas and devkinde: where clients may be redirected
}

// Start runs devkinde and the app for the test; both stop in t.Cleanup.
func Start(t testing.TB, opts Options) *Env {
	t.Helper()
	log := testLogger(t, opts.LogLevel)
	env := &Env{log: log, opts: opts, hosts: map[string]bool{}}

	appLn := listen(t)
	dkLn := listen(t)
	env.URL = "http://" + appLn.Addr().String()
	env.IssuerURL = "http://" + dkLn.Addr().String()

	env.Seed = opts.Seed
	if env.Seed == nil {
		env.Seed = devkinde.DefaultSeed()
	}
	dkCfg := devkinde.Config{
		PublicURL: env.IssuerURL, Seed: env.Seed, AccessTokenTTL: opts.AccessTokenTTL,
		RefreshTokenTTL: opts.RefreshTokenTTL, RefreshOverlap: opts.RefreshOverlap,
		WebhookRetryBase: 50 * time.Millisecond, Logger: log.With("component", "devkinde"),
	}
	if opts.DevKinde != nil {
		opts.DevKinde(&dkCfg)
	}
	dk, err := devkinde.New(dkCfg)
	if err != nil {
		t.Fatalf("apptest: devkinde: %v", err)
	}
	env.DevKinde = dk
	env.allowSite(env.URL)
	env.allowHost(env.IssuerURL)
	env.proxy = &kindeProxy{next: dk.Handler(), grants: map[string]int{}}
	dkSrv := &http.Server{Handler: env.proxy, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = dkSrv.Serve(dkLn) }()
	t.Cleanup(func() {
		_ = dkSrv.Close()
		_ = dk.Close()
	})
	signIn := env.IssuerURL
	if opts.CustomDomain {
		cdLn := listen(t)
		env.CustomDomainURL = "http://" + cdLn.Addr().String()
		env.allowHost(env.CustomDomainURL)
		cdSrv := &http.Server{Handler: &kindeProxy{next: dk.CustomDomainHandler(env.CustomDomainURL), shared: env.proxy},
			ReadHeaderTimeout: 10 * time.Second}
		go func() { _ = cdSrv.Serve(cdLn) }()
		t.Cleanup(func() { _ = cdSrv.Close() })
		signIn = env.CustomDomainURL
	}

	vars := map[string]string{
		"KINDE_ISSUER_URL":               signIn,
		"KINDE_DOMAIN":                   env.IssuerURL,
		"KINDE_CLIENT_ID":                devkinde.WebClientID,
		"KINDE_CLIENT_SECRET":            devkinde.WebClientSecret,
		"KINDE_SITE_URL":                 env.URL,
		"KINDE_POST_LOGOUT_REDIRECT_URL": env.URL + "/",
		"PERMSYNC_ADDR":                  appLn.Addr().String(),
		"PERMSYNC_SECRET":                testsupport.RandomHex(32),
		"PERMSYNC_DATA_DIR":              t.TempDir(),
		"PERMSYNC_KINDE_RATE":            "100",
		// Deletions call Kinde at once; tests of the undo window set it.
		"PERMSYNC_UNDO_WINDOW": "0",
		"DATABASE_URL":         testsupport.DatabaseURL(t),
	}
	if !opts.NoM2M {
		// Kinde's own names (KINDE_M2M_* are aliases).
		vars["KINDE_MANAGEMENT_CLIENT_ID"] = devkinde.M2MClientID
		vars["KINDE_MANAGEMENT_CLIENT_SECRET"] = devkinde.M2MClientSecret
	}
	for k, v := range opts.Env {
		vars[k] = v
	}
	env.vars = vars
	env.App, env.Config = env.startApp(t, vars, appLn)
	env.DB = env.App.DB()
	if !opts.NoM2M {
		env.WaitDirectory(t)
	}
	return env
}

// WaitDirectory waits until the directory (the app's copy of devkinde's
// users, roles and permissions) has completed a full sync: the admin pages
// and deletions read it. Start does this; a test that starts the app in
// another way calls it.
func (e *Env) WaitDirectory(t testing.TB) {
	t.Helper()
	wait := e.opts.SyncTimeout
	if wait <= 0 {
		wait = 60 * time.Second
	}
	deadline := time.Now().Add(wait)
	for {
		st, err := e.DB.DirSyncState(context.Background())
		if err == nil && st.CompletedRun > 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("apptest: the directory's first sync did not complete in %s (state %+v, %v)", wait, st, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// SyncDirectory runs the directory's full sync (the periodic
// reconciliation) now, as if PERMSYNC_RECONCILE_INTERVAL had passed.
func (e *Env) SyncDirectory(t testing.TB) {
	t.Helper()
	if err := e.App.SyncDirectory(context.Background()); err != nil {
		t.Fatalf("apptest: directory sync: %v", err)
	}
}

// startApp configures an app from vars (plus Options.Config), builds it and
// serves it on ln until the test ends.
func (e *Env) startApp(t testing.TB, vars map[string]string, ln net.Listener) (*app.App, app.Config) {
	t.Helper()
	cfg, err := app.LoadConfig(func(k string) string { return vars[k] })
	if err != nil {
		ln.Close()
		t.Fatalf("apptest: config: %v", err)
	}
	if e.opts.Config != nil {
		e.opts.Config(&cfg)
	}
	ctx, cancel := context.WithCancel(context.Background())
	a, err := app.New(ctx, cfg, e.log)
	if err != nil {
		cancel()
		ln.Close()
		t.Fatalf("apptest: app: %v", err)
	}
	served := make(chan error, 1)
	go func() { served <- a.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-served; err != nil {
			t.Errorf("apptest: serve: %v", err)
		}
		_ = a.Close()
	})
	return a, cfg
}

// allowSite lets devkinde send the web client back to an app at siteURL
// (its callback and post-logout URL) and lets test clients follow redirects
// to it.
func (e *Env) allowSite(siteURL string) {
	e.DevKinde.AllowRedirect(devkinde.WebClientID, siteURL+"/callback", siteURL+"/")
	e.allowHost(siteURL)
}

func (e *Env) allowHost(u string) {
	e.hostsMu.Lock()
	defer e.hostsMu.Unlock()
	e.hosts[hostOf(u)] = true
}

func (e *Env) allowedHost(host string) bool {
	e.hostsMu.Lock()
	defer e.hostsMu.Unlock()
	return e.hosts[host]
}

// Grants returns how many token requests of a grant type ("refresh_token",
// "authorization_code", "client_credentials") devkinde has received.
func (e *Env) Grants(grantType string) int { return e.proxy.count(grantType) }

// Refreshes counts session refreshes: refresh_token grants, less the second
// grant of each refresh that got Kinde's cached access token back and so
// revoked it and refreshed again (auth.Change.Reissued).
func (e *Env) Refreshes() int {
	return e.proxy.count("refresh_token") - e.proxy.count("revoke:access_token")
}

// ResetGrants zeroes the grant counters.
func (e *Env) ResetGrants() { e.proxy.reset() }

// Outage makes devkinde unreachable from the app and tests.
type Outage int

const (
	// NoOutage serves normally.
	NoOutage Outage = iota
	// Outage503 answers every request with 503.
	Outage503
	// OutageNetwork drops every connection without a response.
	OutageNetwork
)

// SetOutage takes devkinde down (or brings it back).
func (e *Env) SetOutage(o Outage) { e.proxy.setOutage(o) }

// RefuseKinde makes every request to devkinde with this method and a path
// starting with prefix answer status, as Kinde refusing would (a 429 carries
// RateLimit-Reset: 1), until called again with status 0.
func (e *Env) RefuseKinde(method, prefix string, status int) {
	e.proxy.mu.Lock()
	defer e.proxy.mu.Unlock()
	e.proxy.refuse = refusal{method: method, prefix: prefix, status: status}
}

// refusal is what RefuseKinde set.
type refusal struct {
	method, prefix string
	status         int
}

// HoldKinde holds back every request to devkinde with this method and a path
// starting with prefix, as a Kinde slow to answer would, until Release is
// called (or the test ends); then they go through. Tests use it to see what
// happens while a Kinde call is under way.
func (e *Env) HoldKinde(t testing.TB, method, prefix string) *KindeHold {
	h := &KindeHold{method: method, prefix: prefix, gate: make(chan struct{})}
	h.release = sync.OnceFunc(func() {
		e.proxy.mu.Lock()
		if e.proxy.hold == h {
			e.proxy.hold = nil
		}
		e.proxy.mu.Unlock()
		close(h.gate)
	})
	e.proxy.mu.Lock()
	e.proxy.hold = h
	e.proxy.mu.Unlock()
	t.Cleanup(h.release)
	return h
}

// KindeHold is what HoldKinde holds back.
type KindeHold struct {
	method, prefix string
	gate           chan struct{} // closed on release
	release        func()
	waiting        atomic.Int64
}

// Release lets the held requests, and any later ones, through.
func (h *KindeHold) Release() { h.release() }

// Waiting is how many requests are held back now.
func (h *KindeHold) Waiting() int { return int(h.waiting.Load()) }

// wait holds r back until the release, or until its client gives up.
func (h *KindeHold) wait(r *http.Request) bool {
	h.waiting.Add(1)
	defer h.waiting.Add(-1)
	select {
	case <-h.gate:
		return true
	case <-r.Context().Done():
		return false
	}
}

// Kinde returns a Management API client for devkinde with the M2M
// credentials, for tests that change users, roles and permissions.
func (e *Env) Kinde() *kinde.Client {
	return kinde.New(kinde.Config{IssuerURL: e.IssuerURL, ClientID: devkinde.M2MClientID,
		ClientSecret: devkinde.M2MClientSecret, Rate: 1000, MaxRetries: -1})
}

// ManagementAPI calls devkinde's Management API with a fresh M2M token, as
// Kinde's dashboard would, for calls the kinde client does not offer. body,
// when not nil, is sent as JSON. It returns the status.
func (e *Env) ManagementAPI(t testing.TB, method, path string, body any) int {
	t.Helper()
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {devkinde.M2MClientID},
		"client_secret": {devkinde.M2MClientSecret}, "audience": {e.IssuerURL + "/api"}}
	resp, err := http.PostForm(e.IssuerURL+"/oauth2/token", form)
	if err != nil {
		t.Fatal(err)
	}
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	err = json.NewDecoder(resp.Body).Decode(&tok)
	resp.Body.Close()
	if err != nil || tok.AccessToken == "" {
		t.Fatalf("apptest: m2m token: %v (status %d)", err, resp.StatusCode)
	}
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, e.IssuerURL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// PermissionID returns the id devkinde gives a permission key, read through
// kc (see Env.Kinde), failing the test if there is none.
func PermissionID(t testing.TB, kc *kinde.Client, key string) string {
	t.Helper()
	perms, err := kc.AllPermissions(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range perms {
		if p.Key == key {
			return p.ID
		}
	}
	t.Fatalf("apptest: no permission %s at devkinde", key)
	return ""
}

// UserID returns the seed user id for an email, failing the test if unknown.
func (e *Env) UserID(t testing.TB, email string) string {
	t.Helper()
	id := e.Seed.UserIDByEmail(email)
	if id == "" {
		t.Fatalf("apptest: no seed user %s", email)
	}
	return id
}

// SeedRoleID returns the id of the seed role with that key.
func (e *Env) SeedRoleID(t testing.TB, key string) string {
	t.Helper()
	for _, r := range e.Seed.Roles {
		if r.Key == key {
			return r.ID
		}
	}
	t.Fatalf("apptest: no seed role %s", key)
	return ""
}

// SeedPermissionID returns the id of the seed permission with that key (as
// seeded: PermissionID asks Kinde).
func (e *Env) SeedPermissionID(t testing.TB, key string) string {
	t.Helper()
	for _, p := range e.Seed.Permissions {
		if p.Key == key {
			return p.ID
		}
	}
	t.Fatalf("apptest: no seed permission %s", key)
	return ""
}

// kindeProxy sits in front of devkinde: it counts token grants by type and
// can simulate outages.
type kindeProxy struct {
	next   http.Handler
	shared *kindeProxy // counts and outages kept here instead (a second host)
	mu     sync.Mutex
	grants map[string]int
	outage Outage
	refuse refusal
	hold   *KindeHold
}

func (p *kindeProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if p.shared != nil {
		p.shared.serve(w, r, p.next)
		return
	}
	p.serve(w, r, p.next)
}

func (p *kindeProxy) serve(w http.ResponseWriter, r *http.Request, next http.Handler) {
	p.mu.Lock()
	outage, refuse, held := p.outage, p.refuse, p.hold
	p.mu.Unlock()
	if held != nil && r.Method == held.method && strings.HasPrefix(r.URL.Path, held.prefix) && !held.wait(r) {
		return
	}
	if refuse.status != 0 && r.Method == refuse.method && strings.HasPrefix(r.URL.Path, refuse.prefix) {
		if refuse.status == http.StatusTooManyRequests {
			w.Header().Set("RateLimit-Reset", "1")
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(refuse.status)
		fmt.Fprintf(w, `{"errors":[{"code":"REFUSED","message":"refused by the test (%d)"}]}`, refuse.status)
		return
	}
	switch outage {
	case Outage503:
		http.Error(w, "devkinde is down (apptest outage)", http.StatusServiceUnavailable)
		return
	case OutageNetwork:
		if hj, ok := w.(http.Hijacker); ok {
			if conn, _, err := hj.Hijack(); err == nil {
				conn.Close()
				return
			}
		}
		panic(http.ErrAbortHandler)
	}
	if r.Method == http.MethodPost && (r.URL.Path == "/oauth2/token" || r.URL.Path == "/oauth2/revoke") {
		body, err := io.ReadAll(io.LimitReader(r.Body, 64<<10))
		if err == nil {
			if form, err := url.ParseQuery(string(body)); err == nil {
				key := form.Get("grant_type")
				if r.URL.Path == "/oauth2/revoke" {
					key = "revoke:" + form.Get("token_type_hint")
				}
				p.mu.Lock()
				p.grants[key]++
				p.mu.Unlock()
			}
		}
		r.Body = io.NopCloser(strings.NewReader(string(body)))
	}
	next.ServeHTTP(w, r)
}

func (p *kindeProxy) count(gt string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.grants[gt]
}

func (p *kindeProxy) reset() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.grants = map[string]int{}
}

func (p *kindeProxy) setOutage(o Outage) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.outage = o
}

func listen(t testing.TB) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("apptest: listen: %v", err)
	}
	return ln
}

// testLogger writes to the test's output, which is shown on failure or -v.
func testLogger(t testing.TB, level *slog.Level) *slog.Logger {
	if level != nil {
		return testsupport.LoggerAt(t, *level)
	}
	return testsupport.Logger(t)
}

// timeout for every test HTTP request.
const requestTimeout = 30 * time.Second
