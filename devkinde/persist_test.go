package devkinde

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"
)

func TestDefaultSeed(t *testing.T) {
	sd := DefaultSeed()
	if err := sd.normalize(); err != nil {
		t.Fatal(err)
	}
	if sd.Organizations[0].Code != DefaultOrgCode || sd.Organizations[0].Name != "Acme" {
		t.Errorf("org %+v", sd.Organizations)
	}
	for email, id := range map[string]string{"admin@acme.test": seedUserAdmin, "alice@acme.test": seedUserAlice,
		"bob@acme.test": seedUserBob, "carol@acme.test": seedUserCarol} {
		if got := sd.UserIDByEmail(email); got != id || len(got) != 35 || !strings.HasPrefix(got, "kp_") {
			t.Errorf("UserIDByEmail(%s) = %q", email, got)
		}
	}
	if sd.UserIDByEmail("nobody@acme.test") != "" {
		t.Error("unknown email should give an empty id")
	}
	if DefaultSeed() == sd {
		t.Error("DefaultSeed must return fresh copies")
	}
}

func TestLoadSeed(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "seed.json")
	raw := `{
	  "organizations": [{"code": "org_globex", "name": "Globex", "is_default": true}],
	  "permissions": [{"key": "read:things"}, {"key": "write:things", "name": "Write things"}],
	  "roles": [{"key": "editor", "permissions": ["read:things", "write:things"]}],
	  "users": [{"email": "hank@globex.test", "password": "pw", "first_name": "Hank",
	             "organizations": [{"code": "org_globex", "roles": ["editor"]}]}],
	  "clients": [
	    {"id": "web", "secret": "s", "type": "reg", "redirect_uris": ["http://app.test/callback"], "access_token_lifetime": 120},
	    {"id": "m2m", "secret": "s", "type": "m2m", "scopes": ["read:users"]}
	  ],
	  "feature_flags": {"theme": {"type": "s", "value": "pink"}}
	}`
	if err := os.WriteFile(path, []byte(raw), 0o600); err != nil {
		t.Fatal(err)
	}
	sd, err := LoadSeed(path)
	if err != nil {
		t.Fatal(err)
	}
	id := sd.UserIDByEmail("hank@globex.test")
	if id != derivedUserID("hank@globex.test") || len(id) != 35 {
		t.Errorf("derived id %q", id)
	}
	if sd.Permissions[0].ID == "" || sd.Permissions[0].Name != "read:things" {
		t.Errorf("permission defaults %+v", sd.Permissions[0])
	}
	e := newEnv(t, func(c *Config) { c.Seed = sd })
	f := e.newFlow()
	f.conf.ClientID, f.conf.ClientSecret = "web", "s"
	q := e.signIn(newBrowser(t), f.authURL(), "hank@globex.test", "pw")
	tok, err := f.conf.Exchange(e.ctx(), q.Get("code"), oauth2.VerifierOption(f.verifier))
	if err != nil {
		t.Fatal(err)
	}
	ac := claimsOf(t, tok.AccessToken)
	if ac["org_code"] != "org_globex" || !slices.Equal(permissionsOf(t, tok.AccessToken), []string{"read:things", "write:things"}) {
		t.Errorf("claims %v", ac)
	}
	if ac["exp"].(float64)-ac["iat"].(float64) != 120 {
		t.Errorf("per-client access lifetime not applied")
	}
	if ff := ac["feature_flags"].(map[string]any)["theme"].(map[string]any); ff["t"] != "s" || ff["v"] != "pink" {
		t.Errorf("feature_flags %v", ac["feature_flags"])
	}
	if _, has := ac["roles"]; has {
		t.Error("roles claim present although the client did not enable it")
	}

	// Invalid seeds are refused with a clear error.
	bad := filepath.Join(dir, "bad.json")
	_ = os.WriteFile(bad, []byte(`{"roles":[{"key":"r","permissions":["missing"]}]}`), 0o600)
	if _, err := LoadSeed(bad); err == nil || !strings.Contains(err.Error(), "missing") {
		t.Errorf("bad seed: %v", err)
	}
}

func TestDataDirKeepsKeysAndState(t *testing.T) {
	dir := t.TempDir()
	e1 := newEnv(t, func(c *Config) { c.DataDir = dir })
	tok, _ := e1.login("bob@acme.test")
	expectStatus(t, e1.call("POST", "/api/v1/permissions", map[string]string{"key": "kept:across"}, nil), 201)
	kid1 := fetchJWKS(t, e1).Keys[0].KeyID
	if err := e1.srv.Close(); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join(dir, stateFile))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(raw), tok.RefreshToken) || strings.Contains(string(raw), tok.AccessToken) ||
		!strings.Contains(string(raw), `"password_hash": "pbkdf2$`) {
		t.Error("state file holds a raw token or an unhashed password")
	}
	for _, name := range []string{stateFile, keysFile} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v; want 0600 (it holds keys and password hashes)", name, fi.Mode().Perm())
		}
	}

	e2 := newEnv(t, func(c *Config) { c.DataDir = dir })
	if kid2 := fetchJWKS(t, e2).Keys[0].KeyID; kid2 != kid1 {
		t.Errorf("key changed across restart: %s → %s", kid1, kid2)
	}
	permByKeyIn(t, listPermissions(e2), "kept:across")
	// The refresh token issued before the restart still works (new issuer
	// URL, so a new access token).
	if _, err := e2.refresh(tok.RefreshToken); err != nil {
		t.Errorf("refresh across restart: %v", err)
	}
}

func TestMainRunsUntilCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- Main(ctx, []string{"--addr", "127.0.0.1:0", "--access-ttl", "2m", "--rate", "50",
			"--redirect", testCallback}, pw, io.Discard)
		pw.Close()
	}()
	line, err := bufio.NewReader(pr).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	go func() { _, _ = io.Copy(io.Discard, pr) }()
	url := strings.TrimSpace(strings.TrimPrefix(line, "devkinde is running at "))
	resp, body := get(t, newBrowser(t), url+"/.well-known/openid-configuration")
	expectStatus(t, resp, 200)
	var disc map[string]any
	if err := json.Unmarshal([]byte(body), &disc); err != nil || disc["issuer"] != url {
		t.Errorf("discovery %v (%v)", disc, err)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Main: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Main did not stop")
	}
	if err := Main(context.Background(), []string{"--bogus"}, io.Discard, io.Discard); err == nil {
		t.Error("unknown flag accepted")
	}
}
