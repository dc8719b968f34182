package devkinde

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"golang.org/x/oauth2"
)

// Behaviour Kinde's own client libraries expect (README.md in this folder
// says which were run against devkinde), and the quirk modes.

// Kinde's TypeScript SDK runs the back-end flow with the client secret and
// no PKCE; a public client still needs PKCE.
func TestConfidentialClientWithoutPKCE(t *testing.T) {
	e := newEnv(t)
	f := e.newFlow()
	q := e.signIn(newBrowser(t), f.conf.AuthCodeURL(f.state), "alice@acme.test", DemoPassword)
	if q.Get("code") == "" {
		t.Fatalf("callback %v", q)
	}
	// Client secret in the body, as Kinde documents.
	conf := *f.conf
	conf.Endpoint.AuthStyle = oauth2.AuthStyleInParams
	tok, err := conf.Exchange(e.ctx(), q.Get("code"))
	if err != nil || tok.TokenType != "Bearer" {
		t.Fatalf("exchange without PKCE: %v (token_type %q)", err, tok.TokenType)
	}
	// A verifier without a challenge is refused.
	q = e.signIn(newBrowser(t), f.conf.AuthCodeURL(f.state), "alice@acme.test", DemoPassword)
	if _, err := conf.Exchange(e.ctx(), q.Get("code"), oauth2.VerifierOption(oauth2.GenerateVerifier())); oauthErrorCode(err) != "invalid_grant" {
		t.Fatalf("verifier without challenge: %v", err)
	}
	// The wrong secret is refused.
	q = e.signIn(newBrowser(t), f.conf.AuthCodeURL(f.state), "alice@acme.test", DemoPassword)
	conf.ClientSecret = strings.Repeat("x", 48)
	if _, err := conf.Exchange(e.ctx(), q.Get("code")); oauthErrorCode(err) != "invalid_client" {
		t.Fatalf("wrong secret: %v", err)
	}
}

func TestPublicClientNeedsPKCE(t *testing.T) {
	sd := DefaultSeed()
	sd.Clients = append(sd.Clients, SeedClient{ID: "spa_app", Type: ClientTypeSPA, RedirectURIs: []string{testCallback}})
	e := newEnv(t, func(c *Config) { c.Seed = sd })
	u := e.srv.URL() + "/oauth2/auth?" + url.Values{"client_id": {"spa_app"}, "redirect_uri": {testCallback},
		"response_type": {"code"}, "scope": {"openid"}, "state": {"s1"}}.Encode()
	if q := authRedirect(t, newBrowser(t), u); q.Get("error") != "invalid_request" || q.Get("state") != "s1" {
		t.Fatalf("public client without PKCE: %v", q)
	}
}

func TestDefaultSecretsAreKindeShaped(t *testing.T) {
	for _, s := range []string{WebClientSecret, M2MClientSecret} {
		if len(s) < 40 || len(s) > 60 || strings.IndexFunc(s, func(r rune) bool {
			return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9')
		}) >= 0 {
			t.Errorf("secret %q is not 40-60 letters and digits", s)
		}
	}
}

// Several audiences come as repeated parameters (Kinde's SDKs) or one
// space-separated value; start_page=registration opens sign-up.
func TestRepeatedAudienceAndRegistration(t *testing.T) {
	e := newEnv(t)
	f := e.newFlow()
	u := f.authURL() + "&audience=https%3A%2F%2Fapi.one&audience=https%3A%2F%2Fapi.two+https%3A%2F%2Fapi.three"
	q := e.signIn(newBrowser(t), u, "bob@acme.test", DemoPassword)
	tok, err := f.conf.Exchange(e.ctx(), q.Get("code"), oauth2.VerifierOption(f.verifier))
	if err != nil {
		t.Fatal(err)
	}
	var aud []string
	for _, a := range claimsOf(t, tok.AccessToken)["aud"].([]any) {
		aud = append(aud, a.(string))
	}
	if !slices.Equal(aud, []string{"https://api.one", "https://api.two", "https://api.three"}) {
		t.Fatalf("aud = %v", aud)
	}
	resp, body := get(t, newBrowser(t), f.authURL(oauth2.SetAuthURLParam("start_page", "registration")))
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, `name="first_name"`) {
		t.Fatalf("start_page=registration did not open sign-up: %d", resp.StatusCode)
	}
}

// Quirks.SameToken: after refresh_claims a refresh still returns the same
// access token; revoking it makes the next refresh issue a new one with the
// current claims.
func TestSameTokenQuirk(t *testing.T) {
	e := newEnv(t) // cautious: SameToken on
	tok, _ := e.login("alice@acme.test")
	expectStatus(t, e.call("DELETE", "/api/v1/roles/"+seedRoleAnalyst+"/permissions/"+seedPermExportReport, nil, nil), 200)
	expectStatus(t, e.call("POST", "/api/v1/users/"+seedUserAlice+"/refresh_claims", nil, nil), 200)
	t2 := e.mustRefresh(tok.RefreshToken)
	if t2.AccessToken != tok.AccessToken {
		t.Fatal("refresh after refresh_claims issued a new token under SameToken")
	}
	conf := e.oauthConfig()
	form := url.Values{"token": {t2.AccessToken}, "token_type_hint": {"access_token"},
		"client_id": {conf.ClientID}, "client_secret": {conf.ClientSecret}}
	resp, err := http.PostForm(e.srv.URL()+"/oauth2/revoke", form)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	expectStatus(t, resp, 200)
	t3 := e.mustRefresh(t2.RefreshToken)
	if t3.AccessToken == t2.AccessToken || slices.Contains(permissionsOf(t, t3.AccessToken), "export:reports") {
		t.Fatalf("after revoking: new token %v, permissions %v", t3.AccessToken != t2.AccessToken, permissionsOf(t, t3.AccessToken))
	}
}

// Quirks.NoRoleUpdated and Quirks.RolesAsStrings, external_id and
// event_timestamp in the payloads.
func TestWebhookQuirks(t *testing.T) {
	for _, q := range []Quirks{CautiousQuirks(), {}} {
		t.Run(q.String(), func(t *testing.T) {
			e := newEnv(t, withQuirks(q))
			rcv := newReceiver(t, 0)
			registerHook(t, e, rcv.URL, "role.updated", "user.updated", "organization.updated")
			expectStatus(t, e.call("DELETE", "/api/v1/roles/"+seedRoleViewer+"/permissions/"+seedPermReadReports, nil, nil), 200)
			expectStatus(t, e.call("POST", "/api/v1/organizations/"+DefaultOrgCode+"/users/"+seedUserBob+"/roles",
				map[string]string{"role_id": seedRoleAdmin}, nil), 200)
			expectStatus(t, e.call("PATCH", "/api/v1/organization/"+DefaultOrgCode, map[string]string{"name": "Acme 2"}, nil), 200)
			want := 3
			if q.NoRoleUpdated {
				want = 2
			}
			waitFor(t, "webhooks", func() bool { return len(rcv.hooks()) >= want })
			set := fetchJWKS(t, e)
			byType := map[string]map[string]any{}
			for _, h := range rcv.hooks() {
				p := verifyHook(t, set, h.body)
				if p["event_timestamp"] == nil || p["event_timestamp"] != p["timestamp"] {
					t.Errorf("event_timestamp %v, timestamp %v", p["event_timestamp"], p["timestamp"])
				}
				byType[p["type"].(string)] = p
			}
			if _, sent := byType["role.updated"]; sent == q.NoRoleUpdated {
				t.Errorf("role.updated sent: %v with NoRoleUpdated %v", sent, q.NoRoleUpdated)
			}
			org := byType["organization.updated"]["data"].(map[string]any)["organization"].(map[string]any)
			if v, ok := org["external_id"]; !ok || v != nil {
				t.Errorf("organization.updated external_id = %v (present %v); want null", v, ok)
			}
			u := byType["user.updated"]["data"].(map[string]any)["user"].(map[string]any)
			roles := u["organizations"].([]any)[0].(map[string]any)["roles"].([]any)
			_, isString := roles[0].(string)
			if len(roles) != 2 || isString != q.RolesAsStrings {
				t.Errorf("user.updated roles %v; strings wanted %v", roles, q.RolesAsStrings)
			}
		})
	}
}

// Quirks.CustomDomain: a second host serves sign-in under its own issuer,
// but no M2M tokens and no Management API; its tokens are not accepted by
// the Kinde domain.
func TestCustomDomain(t *testing.T) {
	q := CautiousQuirks()
	q.CustomDomain = true
	e := newEnv(t, withQuirks(q))
	custom := e.srv.CustomDomainURL()
	if custom == "" || custom == e.srv.URL() {
		t.Fatalf("custom domain URL %q", custom)
	}
	resp, body := get(t, http.DefaultClient, custom+"/.well-known/openid-configuration")
	expectStatus(t, resp, 200)
	if !strings.Contains(body, `"issuer":"`+custom+`"`) {
		t.Fatalf("discovery on the custom domain: %s", body)
	}
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {M2MClientID},
		"client_secret": {M2MClientSecret}, "audience": {custom + "/api"}}
	resp, err := http.PostForm(custom+"/oauth2/token", form)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("client_credentials on the custom domain: %d", resp.StatusCode)
	}
	req, _ := http.NewRequest(http.MethodGet, custom+"/api/v1/permissions", nil)
	req.Header.Set("Authorization", "Bearer "+e.m2mToken())
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("/api on the custom domain: %d", resp.StatusCode)
	}
	// A user token from the custom domain carries its issuer.
	f := e.newFlow()
	f.conf.Endpoint = oauth2.Endpoint{AuthURL: custom + "/oauth2/auth", TokenURL: custom + "/oauth2/token",
		AuthStyle: oauth2.AuthStyleInParams}
	qv := e.signIn(newBrowser(t), f.authURL(), "alice@acme.test", DemoPassword)
	tok, err := f.conf.Exchange(e.ctx(), qv.Get("code"), oauth2.VerifierOption(f.verifier))
	if err != nil {
		t.Fatal(err)
	}
	if iss := claimsOf(t, tok.AccessToken)["iss"]; iss != custom {
		t.Fatalf("iss = %v, want %s", iss, custom)
	}
	if resp := e.callWith(tok.AccessToken, "GET", "/api/v1/permissions", nil, nil); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("custom-domain user token at the Kinde domain's API: %d", resp.StatusCode)
	}
}

func TestParseQuirks(t *testing.T) {
	tests := map[string]Quirks{
		"":                         CautiousQuirks(),
		"cautious":                 CautiousQuirks(),
		"none":                     {},
		"same-token,custom-domain": {SameToken: true, CustomDomain: true},
		"all,-custom-domain":       func() Quirks { q := AllQuirks(); q.CustomDomain = false; return q }(),
	}
	for in, want := range tests {
		if got, err := ParseQuirks(in); err != nil || got != want {
			t.Errorf("ParseQuirks(%q) = %+v, %v; want %+v", in, got, err, want)
		}
	}
	if _, err := ParseQuirks("same-tokens"); err == nil {
		t.Error("an unknown quirk was accepted")
	}
}
