package devkinde

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

func TestDiscoveryAndJWKS(t *testing.T) {
	e := newEnv(t)
	var disc map[string]any
	resp, body := get(t, http.DefaultClient, e.srv.URL()+"/.well-known/openid-configuration")
	expectStatus(t, resp, 200)
	if err := json.Unmarshal([]byte(body), &disc); err != nil {
		t.Fatal(err)
	}
	u := e.srv.URL()
	for k, want := range map[string]string{
		"issuer": u, "authorization_endpoint": u + "/oauth2/auth", "token_endpoint": u + "/oauth2/token",
		"userinfo_endpoint": u + "/oauth2/v2/user_profile", "jwks_uri": u + "/.well-known/jwks",
		"end_session_endpoint": u + "/logout", "revocation_endpoint": u + "/oauth2/revoke",
	} {
		if disc[k] != want {
			t.Errorf("%s = %v, want %s", k, disc[k], want)
		}
	}
	for _, path := range []string{"/.well-known/jwks", "/.well-known/jwks.json"} {
		var set struct {
			Keys []map[string]any `json:"keys"`
		}
		resp, body := get(t, http.DefaultClient, u+path)
		expectStatus(t, resp, 200)
		if err := json.Unmarshal([]byte(body), &set); err != nil {
			t.Fatal(err)
		}
		if len(set.Keys) != 1 {
			t.Fatalf("%s: %d keys", path, len(set.Keys))
		}
		k := set.Keys[0]
		if k["kty"] != "RSA" || k["alg"] != "RS256" || k["use"] != "sig" || k["kid"] == "" || k["d"] != nil {
			t.Errorf("%s: key %v", path, k)
		}
		// 2048-bit modulus: 256 bytes → 342 base64url characters.
		if n, _ := k["n"].(string); len(n) != 342 {
			t.Errorf("modulus length %d, want a 2048-bit key", len(n))
		}
	}
	e.provider() // go-oidc accepts the discovery document
}

func TestLoginWithGoOIDC(t *testing.T) {
	e := newEnv(t)
	e.srv.SetRolesClaim(WebClientID, true)
	tok, flow := e.login("carol@acme.test")
	p := e.provider()
	rawID, _ := tok.Extra("id_token").(string)
	idt, err := p.Verifier(&oidc.Config{ClientID: WebClientID}).Verify(e.ctx(), rawID)
	if err != nil {
		t.Fatalf("verify ID token: %v", err)
	}
	if idt.Nonce != flow.nonce {
		t.Errorf("nonce %q, want %q", idt.Nonce, flow.nonce)
	}
	if err := idt.VerifyAccessToken(tok.AccessToken); err != nil {
		t.Errorf("at_hash: %v", err)
	}
	carol := DefaultSeed().UserIDByEmail("carol@acme.test")
	if idt.Subject != carol || carol != seedUserCarol {
		t.Errorf("sub %q, want %q", idt.Subject, carol)
	}
	ic := claimsOf(t, rawID)
	for _, k := range []string{"at_hash", "auth_time", "email", "email_verified", "name", "given_name",
		"family_name", "org_codes", "nonce", "rat", "updated_at", "azp", "jti", "iat", "exp"} {
		if _, ok := ic[k]; !ok {
			t.Errorf("ID token lacks %s", k)
		}
	}
	if ic["email"] != "carol@acme.test" || ic["name"] != "Carol Exporter" {
		t.Errorf("ID token profile: %v", ic)
	}
	if aud, _ := ic["aud"].([]any); len(aud) != 1 || aud[0] != WebClientID {
		t.Errorf("ID token aud %v", ic["aud"])
	}

	// The access token verifies against the JWKS and carries Kinde's claims.
	if _, err := p.Verifier(&oidc.Config{SkipClientIDCheck: true}).Verify(e.ctx(), tok.AccessToken); err != nil {
		t.Fatalf("verify access token: %v", err)
	}
	ac := claimsOf(t, tok.AccessToken)
	if aud, ok := ac["aud"].([]any); !ok || len(aud) != 0 {
		t.Errorf("aud %v, want []", ac["aud"])
	}
	if ac["azp"] != WebClientID || ac["org_code"] != DefaultOrgCode || ac["sub"] != carol || ac["jti"] == "" {
		t.Errorf("access claims %v", ac)
	}
	if got := permissionsOf(t, tok.AccessToken); !slices.Equal(got, []string{"read:reports", "export:reports"}) {
		t.Errorf("permissions %v", got)
	}
	roles, _ := ac["roles"].([]any)
	if len(roles) != 1 || roles[0].(map[string]any)["key"] != "viewer" || roles[0].(map[string]any)["id"] != seedRoleViewer {
		t.Errorf("roles %v", ac["roles"])
	}
	if _, ok := ac["feature_flags"].(map[string]any); !ok {
		t.Errorf("feature_flags %v", ac["feature_flags"])
	}
	if scp, _ := ac["scp"].([]any); len(scp) != 4 {
		t.Errorf("scp %v", ac["scp"])
	}
	if exp, iat := ac["exp"].(float64), ac["iat"].(float64); exp-iat != 86400 {
		t.Errorf("access lifetime %v s, want Kinde's default 86400", exp-iat)
	}
	if tok.RefreshToken == "" {
		t.Error("no refresh token despite the offline scope")
	}

	// userinfo
	ui, err := p.UserInfo(e.ctx(), oauth2.StaticTokenSource(tok))
	if err != nil {
		t.Fatalf("user_profile: %v", err)
	}
	if ui.Subject != carol || ui.Email != "carol@acme.test" {
		t.Errorf("user_profile %+v", ui)
	}
}

func TestSignInPage(t *testing.T) {
	e := newEnv(t)
	f := e.newFlow()
	b := newBrowser(t)
	resp, body := get(t, b, f.authURL())
	expectStatus(t, resp, 200)
	form := parseForm(t, body)
	if form.inputs["email"] != "email" || form.inputs["password"] != "password" || !form.submit {
		t.Fatalf("form inputs %v submit %v", form.inputs, form.submit)
	}
	for _, email := range []string{"admin@acme.test", "alice@acme.test", "bob@acme.test", "carol@acme.test"} {
		if !strings.Contains(body, email) {
			t.Errorf("demo account %s not listed", email)
		}
	}
	// A bad password shows the page again with an error.
	form.fields.Set("email", "bob@acme.test")
	form.fields.Set("password", "wrong")
	action, _ := resp.Request.URL.Parse(form.action)
	post, err := b.PostForm(action.String(), form.fields)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(post.Body)
	post.Body.Close()
	if post.StatusCode != 200 || !strings.Contains(string(raw), "Incorrect email or password") {
		t.Fatalf("bad password: status %d body %s", post.StatusCode, raw)
	}
	again := parseForm(t, string(raw))
	again.fields.Set("email", "bob@acme.test")
	again.fields.Set("password", DemoPassword)
	ok, err := b.PostForm(action.String(), again.fields)
	if err != nil {
		t.Fatal(err)
	}
	ok.Body.Close()
	if q := callbackQuery(t, ok); q.Get("code") == "" || q.Get("state") != f.state {
		t.Errorf("callback %v", q)
	}
}

// authRedirect opens an authorization URL and returns the redirect query
// (for requests that never show the page).
func authRedirect(t *testing.T, b *http.Client, u string) url.Values {
	t.Helper()
	resp, body := get(t, b, u)
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("status %d, want a redirect: %s", resp.StatusCode, body)
	}
	return callbackQuery(t, resp)
}

func TestAuthorizeRejectsBadRequests(t *testing.T) {
	e := newEnv(t)
	f := e.newFlow()
	b := newBrowser(t)

	// PKCE is optional for this confidential client (kindeclients_test.go
	// covers public clients), and only S256.
	noPKCE := f.conf.AuthCodeURL(f.state)
	if resp, _ := get(t, b, noPKCE); resp.StatusCode != http.StatusOK {
		t.Errorf("confidential client without PKCE: status %d, want the sign-in page", resp.StatusCode)
	}
	plain := f.conf.AuthCodeURL(f.state, oauth2.SetAuthURLParam("code_challenge", f.verifier),
		oauth2.SetAuthURLParam("code_challenge_method", "plain"))
	if q := authRedirect(t, b, plain); q.Get("error") != "invalid_request" {
		t.Errorf("plain PKCE: %v", q)
	}
	// Only response_type=code.
	implicit := strings.Replace(f.authURL(), "response_type=code", "response_type=token", 1)
	if q := authRedirect(t, b, implicit); q.Get("error") != "unsupported_response_type" {
		t.Errorf("implicit: %v", q)
	}
	// An unregistered redirect_uri is never redirected to.
	bad := strings.Replace(f.authURL(), url.QueryEscape(testCallback), url.QueryEscape("http://app.test/evil"), 1)
	resp, body := get(t, b, bad)
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "redirect_uri") {
		t.Errorf("bad redirect_uri: status %d", resp.StatusCode)
	}
	// Unknown client.
	unknown := strings.Replace(f.authURL(), "client_id="+WebClientID, "client_id=nope", 1)
	if resp, _ := get(t, b, unknown); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("unknown client: status %d", resp.StatusCode)
	}
}

func TestPKCEVerifierAndCodeReplay(t *testing.T) {
	e := newEnv(t)
	exchange := func(verifier string) (*oauth2.Token, *authFlow, string, error) {
		f := e.newFlow()
		q := e.signIn(newBrowser(t), f.authURL(), "alice@acme.test", DemoPassword)
		var opts []oauth2.AuthCodeOption
		if verifier != "" {
			opts = append(opts, oauth2.VerifierOption(verifier))
		}
		tok, err := f.conf.Exchange(e.ctx(), q.Get("code"), opts...)
		return tok, f, q.Get("code"), err
	}
	if _, _, _, err := exchange(""); oauthErrorCode(err) != "invalid_grant" {
		t.Errorf("missing verifier: %v", err)
	}
	if _, _, _, err := exchange(oauth2.GenerateVerifier()); oauthErrorCode(err) != "invalid_grant" {
		t.Errorf("wrong verifier: %v", err)
	}

	// A code works once; a replay fails and revokes what it issued.
	f := e.newFlow()
	q := e.signIn(newBrowser(t), f.authURL(), "alice@acme.test", DemoPassword)
	tok, err := f.conf.Exchange(e.ctx(), q.Get("code"), oauth2.VerifierOption(f.verifier))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.conf.Exchange(e.ctx(), q.Get("code"), oauth2.VerifierOption(f.verifier)); oauthErrorCode(err) != "invalid_grant" {
		t.Errorf("code replay: %v", err)
	}
	if _, err := e.refresh(tok.RefreshToken); oauthErrorCode(err) != "invalid_grant" {
		t.Errorf("refresh after code replay: %v, want invalid_grant", err)
	}
}

func TestClientAuthentication(t *testing.T) {
	e := newEnv(t)
	f := e.newFlow()
	q := e.signIn(newBrowser(t), f.authURL(), "bob@acme.test", DemoPassword)
	wrong := *f.conf
	wrong.ClientSecret = "nope"
	if _, err := wrong.Exchange(e.ctx(), q.Get("code"), oauth2.VerifierOption(f.verifier)); oauthErrorCode(err) != "invalid_client" {
		t.Errorf("wrong secret: %v", err)
	}
	// client_secret_post works as well as basic.
	post := *f.conf
	post.Endpoint.AuthStyle = oauth2.AuthStyleInParams
	if _, err := post.Exchange(e.ctx(), q.Get("code"), oauth2.VerifierOption(f.verifier)); err != nil {
		t.Errorf("client_secret_post: %v", err)
	}
	// RFC 6749 error bodies.
	resp, err := http.PostForm(e.srv.URL()+"/oauth2/token", url.Values{"grant_type": {"password"},
		"client_id": {WebClientID}, "client_secret": {WebClientSecret}})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body map[string]string
	_ = json.NewDecoder(resp.Body).Decode(&body)
	if resp.StatusCode != 400 || body["error"] != "unsupported_grant_type" || body["error_description"] == "" {
		t.Errorf("unsupported grant: %d %v", resp.StatusCode, body)
	}
}

func TestPromptNoneAndSSO(t *testing.T) {
	e := newEnv(t)
	f := e.newFlow()
	b := newBrowser(t)
	q := authRedirect(t, b, f.authURL(oauth2.SetAuthURLParam("prompt", "none")))
	if q.Get("error") != "login_required" || q.Get("state") != f.state {
		t.Fatalf("prompt=none without session: %v", q)
	}
	// Sign in, then prompt=none (and no prompt) complete silently from the
	// provider session cookie.
	e.signIn(b, f.authURL(), "alice@acme.test", DemoPassword)
	f2 := e.newFlow()
	q = authRedirect(t, b, f2.authURL(oauth2.SetAuthURLParam("prompt", "none")))
	if q.Get("code") == "" || q.Get("state") != f2.state {
		t.Fatalf("prompt=none with session: %v", q)
	}
	tok, err := f2.conf.Exchange(e.ctx(), q.Get("code"), oauth2.VerifierOption(f2.verifier))
	if err != nil || claimsOf(t, tok.AccessToken)["sub"] != seedUserAlice {
		t.Fatalf("silent exchange: %v", err)
	}
	// prompt=login always shows the page.
	resp, body := get(t, b, e.newFlow().authURL(oauth2.SetAuthURLParam("prompt", "login")))
	if resp.StatusCode != 200 || !strings.Contains(body, `name="password"`) {
		t.Errorf("prompt=login: status %d", resp.StatusCode)
	}
	// prompt=create shows the sign-up page and creates the account.
	fc := e.newFlow()
	q = e.signIn(newBrowser(t), fc.authURL(oauth2.SetAuthURLParam("prompt", "create")), "dora@acme.test", "s3cret")
	tok, err = fc.conf.Exchange(e.ctx(), q.Get("code"), oauth2.VerifierOption(fc.verifier))
	if err != nil {
		t.Fatal(err)
	}
	if ac := claimsOf(t, tok.AccessToken); ac["org_code"] != DefaultOrgCode || len(permissionsOf(t, tok.AccessToken)) != 0 {
		t.Errorf("new account token %v", ac)
	}
}

func TestLogout(t *testing.T) {
	e := newEnv(t)
	b := newBrowser(t)
	f := e.newFlow()
	e.signIn(b, f.authURL(), "bob@acme.test", DemoPassword)

	// A redirect that is not on the allow list is refused.
	resp, _ := get(t, b, e.srv.URL()+"/logout?redirect="+url.QueryEscape("http://evil.test/"))
	expectStatus(t, resp, http.StatusBadRequest)
	if q := authRedirect(t, b, e.newFlow().authURL(oauth2.SetAuthURLParam("prompt", "none"))); q.Get("code") == "" {
		t.Fatal("session should survive a refused logout")
	}
	// An allowed redirect ends the provider session.
	resp, _ = get(t, b, e.srv.URL()+"/logout?redirect="+url.QueryEscape(testCallback))
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("logout: status %d", resp.StatusCode)
	}
	if loc, _ := resp.Location(); loc.String() != testCallback {
		t.Errorf("logout redirect %v", loc)
	}
	if q := authRedirect(t, b, e.newFlow().authURL(oauth2.SetAuthURLParam("prompt", "none"))); q.Get("error") != "login_required" {
		t.Errorf("after logout: %v", q)
	}
}

func TestOrgCodeAndAudience(t *testing.T) {
	e := newEnv(t)
	var created struct {
		Organization struct {
			Code string `json:"code"`
		} `json:"organization"`
	}
	expectStatus(t, e.call("POST", "/api/v1/organization", map[string]string{"name": "Globex"}, &created), 200)
	org := created.Organization.Code
	expectStatus(t, e.call("POST", "/api/v1/organizations/"+org+"/users", map[string]any{
		"users": []map[string]any{{"id": seedUserAlice, "roles": []string{"admin"}}}}, nil), 200)

	tok, _ := e.login("alice@acme.test", oauth2.SetAuthURLParam("org_code", org),
		oauth2.SetAuthURLParam("audience", "https://api.one.test https://api.two.test"))
	ac := claimsOf(t, tok.AccessToken)
	if ac["org_code"] != org || len(permissionsOf(t, tok.AccessToken)) != 4 {
		t.Errorf("org-scoped token: %v", ac)
	}
	if aud := ac["aud"].([]any); len(aud) != 2 || aud[0] != "https://api.one.test" || aud[1] != "https://api.two.test" {
		t.Errorf("aud %v", aud)
	}
	idc := claimsOf(t, tok.Extra("id_token").(string))
	if codes := idc["org_codes"].([]any); len(codes) != 2 {
		t.Errorf("org_codes %v", codes)
	}
	// Bob is not a member of the new org.
	f := e.newFlow()
	b := newBrowser(t)
	resp, body := get(t, b, f.authURL(oauth2.SetAuthURLParam("org_code", org)))
	expectStatus(t, resp, 200)
	form := parseForm(t, body)
	form.fields.Set("email", "bob@acme.test")
	form.fields.Set("password", DemoPassword)
	action, _ := resp.Request.URL.Parse(form.action)
	post, err := b.PostForm(action.String(), form.fields)
	if err != nil {
		t.Fatal(err)
	}
	post.Body.Close()
	if post.StatusCode != 200 {
		t.Errorf("non-member sign-in: status %d, want the page again", post.StatusCode)
	}
}

func TestRefreshRotationOverlapAndReuse(t *testing.T) {
	const overlap = 300 * time.Millisecond
	clock := newTestClock()
	e := newEnvAt(t, clock, func(c *Config) { c.RefreshOverlap = overlap })
	tok, _ := e.login("bob@acme.test")
	r1 := tok.RefreshToken
	t2 := e.mustRefresh(r1)
	if t2.RefreshToken == "" || t2.RefreshToken == r1 {
		t.Fatal("refresh token did not rotate")
	}
	// Within the overlap the old token still works (parallel requests).
	t3, err := e.refresh(r1)
	if err != nil {
		t.Fatalf("old token within overlap: %v", err)
	}
	// After the overlap it is invalid_grant, and its reuse revokes the family.
	clock.Advance(overlap + time.Millisecond)
	if _, err := e.refresh(r1); oauthErrorCode(err) != "invalid_grant" {
		t.Fatalf("old token after overlap: %v", err)
	}
	if _, err := e.refresh(t3.RefreshToken); oauthErrorCode(err) != "invalid_grant" {
		t.Errorf("newest token after reuse: %v, want invalid_grant (family revoked)", err)
	}
}

func TestRevoke(t *testing.T) {
	e := newEnv(t)
	tok, _ := e.login("alice@acme.test")
	revoke := func(token string) {
		resp, err := http.PostForm(e.srv.URL()+"/oauth2/revoke", url.Values{"token": {token},
			"client_id": {WebClientID}, "client_secret": {WebClientSecret}})
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		expectStatus(t, resp, 200)
	}
	// A revoked access token is not returned again by a refresh.
	revoke(tok.AccessToken)
	t2 := e.mustRefresh(tok.RefreshToken)
	if t2.AccessToken == tok.AccessToken {
		t.Error("refresh returned a revoked access token")
	}
	if _, err := e.provider().UserInfo(e.ctx(), oauth2.StaticTokenSource(tok)); err == nil {
		t.Error("user_profile accepted a revoked access token")
	}
	revoke(t2.RefreshToken)
	if _, err := e.refresh(t2.RefreshToken); oauthErrorCode(err) != "invalid_grant" {
		t.Errorf("revoked refresh token: %v", err)
	}
	revoke("not-a-token") // RFC 7009: still 200
}

func TestClientCredentials(t *testing.T) {
	e := newEnv(t)
	tok := e.m2mToken()
	ac := claimsOf(t, tok)
	if gty := ac["gty"].([]any); len(gty) != 1 || gty[0] != "client_credentials" {
		t.Errorf("gty %v", ac["gty"])
	}
	if aud := ac["aud"].([]any); len(aud) != 1 || aud[0] != e.srv.URL()+"/api" {
		t.Errorf("aud %v", aud)
	}
	if ac["azp"] != M2MClientID || ac["v"] != "2" || len(ac["scp"].([]any)) != len(managementScopes) {
		t.Errorf("m2m claims %v", ac)
	}
	if !strings.Contains(ac["scope"].(string), "update:user_refresh_claims") {
		t.Errorf("scope %v", ac["scope"])
	}
	sub := claimsOf(t, e.m2mToken("read:users"))
	if scp := sub["scp"].([]any); len(scp) != 1 || scp[0] != "read:users" {
		t.Errorf("subset scp %v", scp)
	}
	// The web app cannot use client_credentials.
	resp, err := http.PostForm(e.srv.URL()+"/oauth2/token", url.Values{"grant_type": {"client_credentials"},
		"client_id": {WebClientID}, "client_secret": {WebClientSecret}, "audience": {e.srv.URL() + "/api"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	expectStatus(t, resp, 400)
}

// TestHandlerWithoutStart mounts Handler() on an httptest server: the issuer
// then follows the request's host.
func TestHandlerWithoutStart(t *testing.T) {
	srv, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	ts := httptest.NewServer(srv.Handler())
	defer ts.Close()
	if srv.URL() != "" {
		t.Errorf("URL before Start = %q", srv.URL())
	}
	p, err := oidc.NewProvider(context.Background(), ts.URL)
	if err != nil {
		t.Fatalf("go-oidc discovery through Handler(): %v", err)
	}
	if p.Endpoint().TokenURL != ts.URL+"/oauth2/token" {
		t.Errorf("token URL %s", p.Endpoint().TokenURL)
	}
}

// TestDemoAccountButtonsSignIn checks the sign-in page's one-click demo
// forms: each posts the account's own credentials with the same request.
func TestDemoAccountButtonsSignIn(t *testing.T) {
	e := newEnv(t)
	f := e.newFlow()
	b := newBrowser(t)
	resp, body := get(t, b, f.authURL())
	expectStatus(t, resp, 200)
	start := strings.Index(body, `value="carol@acme.test"`)
	if start < 0 {
		t.Fatal("no one-click form for carol@acme.test")
	}
	formStart := strings.LastIndex(body[:start], "<form")
	formEnd := strings.Index(body[start:], "</form>")
	form := parseForm(t, body[formStart:start+formEnd+len("</form>")])
	if form.fields.Get("email") != "carol@acme.test" || form.fields.Get("password") != DemoPassword {
		t.Fatalf("demo form fields %v", form.fields)
	}
	action, _ := resp.Request.URL.Parse(form.action)
	post, err := b.PostForm(action.String(), form.fields)
	if err != nil {
		t.Fatal(err)
	}
	post.Body.Close()
	q := callbackQuery(t, post)
	if q.Get("state") != f.state || q.Get("code") == "" {
		t.Fatalf("callback query %v", q)
	}
	tok, err := f.conf.Exchange(e.ctx(), q.Get("code"), oauth2.VerifierOption(f.verifier))
	if err != nil {
		t.Fatalf("exchange: %v", err)
	}
	if tok.AccessToken == "" {
		t.Fatal("no access token")
	}
}
