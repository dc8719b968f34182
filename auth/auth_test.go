package auth

import (
	"bytes"
	"encoding/json"
	"maps"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"permsync/store"
)

func TestSafeReturnTo(t *testing.T) {
	ok := []string{"/", "/dashboard", "/reports?sort=name&x=1", "/a/b#frag", "/%2F%2Fevil.example"}
	bad := []string{
		"", "dashboard", "//evil.example", "///evil.example", `/\evil.example`, `/\/evil.example`,
		"https://evil.example", "http:/evil.example", "javascript:alert(1)", "\t//evil.example",
		"/\tdashboard", "/\x00", "/" + strings.Repeat("a", 3000),
	}
	for _, s := range ok {
		if got, good := SafeReturnTo(s); !good || got != s {
			t.Errorf("SafeReturnTo(%q) = %q, %v; want accepted", s, got, good)
		}
	}
	for _, s := range bad {
		if got, good := SafeReturnTo(s); good {
			t.Errorf("SafeReturnTo(%q) = %q; want refused", s, got)
		}
	}
}

func TestKeyringRotation(t *testing.T) {
	oldSecret := strings.Repeat("o", 32)
	newSecret := strings.Repeat("n", 32)
	old, err := NewKeyring([]string{oldSecret})
	if err != nil {
		t.Fatal(err)
	}
	sealed, err := old.Seal([]byte("refresh-token"), []byte("tokens:abc"))
	if err != nil {
		t.Fatal(err)
	}
	rotated, err := NewKeyring([]string{newSecret, oldSecret})
	if err != nil {
		t.Fatal(err)
	}
	pt, err := rotated.Open(sealed, []byte("tokens:abc"))
	if err != nil || string(pt) != "refresh-token" {
		t.Fatalf("rotated ring cannot open old data: %q, %v", pt, err)
	}
	if _, err := rotated.Open(sealed, []byte("tokens:other")); err == nil {
		t.Fatal("opened with the wrong associated data")
	}
	fresh, _ := rotated.Seal([]byte("x"), nil)
	if _, err := old.Open(fresh, nil); err == nil {
		t.Fatal("the old ring opened data sealed with the new key")
	}
	again, _ := rotated.Seal([]byte("x"), nil)
	if bytes.Equal(fresh, again) {
		t.Fatal("nonce reused")
	}
	if _, err := NewKeyring([]string{"short"}); err == nil {
		t.Fatal("short secret accepted")
	}
}

func TestDiffKeys(t *testing.T) {
	added, removed := diffKeys([]string{"a", "b", "c"}, []string{"c", "d", "a", "d"})
	if !slices.Equal(added, []string{"d"}) || !slices.Equal(removed, []string{"b"}) {
		t.Fatalf("added %v removed %v", added, removed)
	}
}

func TestNormalizeUserID(t *testing.T) {
	for in, want := range map[string]string{"kp:abc": "kp_abc", "kp_abc": "kp_abc", " kp:1 ": "kp_1", "x": "x"} {
		if got := NormalizeUserID(in); got != want {
			t.Errorf("NormalizeUserID(%q) = %q; want %q", in, got, want)
		}
	}
}

func TestSecureCookies(t *testing.T) {
	for site, want := range map[string]bool{
		"http://localhost:8080": false, "http://127.0.0.1:1": false, "http://[::1]:8080": false,
		"https://localhost": true, "https://app.example": true, "http://app.example": true,
	} {
		if got := secureCookies(site); got != want {
			t.Errorf("secureCookies(%q) = %v; want %v", site, got, want)
		}
	}
}

func TestCanSubtractsDenials(t *testing.T) {
	claims := time.Now().Add(-time.Minute)
	s := &Session{Session: store.Session{UserID: "kp_alice", OrgCode: "org_acme", ClaimsAt: claims,
		Permissions: []string{"read:reports", "export:reports"}}}
	if !s.Can("export:reports") {
		t.Fatal("token permission denied before denials")
	}
	d, _ := newDenials([]store.Denial{{PermissionKey: "export:reports", SettledAt: time.Now(),
		ExpiresAt: time.Now().Add(time.Hour)}}, time.Now())
	s.applyDenials(d)
	if s.Can("export:reports") || !s.Can("read:reports") {
		t.Fatalf("effective = %v", s.Effective())
	}
	if !slices.Equal(s.Revoked(), []string{"export:reports"}) {
		t.Fatalf("revoked = %v", s.Revoked())
	}
	var none *Session
	if none.Can("read:reports") {
		t.Fatal("nil session can")
	}
}

// TestDenialsAreDatedAndScoped: a denial takes a key from sessions whose
// claims are not newer than the change at Kinde, and from every session
// while the change has not reached Kinde; a scoped one only from its user
// (in its organization).
func TestDenialsAreDatedAndScoped(t *testing.T) {
	now := time.Now()
	change := now.Add(-10 * time.Minute)
	before, after := change.Add(-time.Minute), change.Add(time.Minute)
	settled := func(key, user, org string) store.Denial {
		return store.Denial{PermissionKey: key, UserID: user, OrgCode: org, CreatedAt: change, SettledAt: change,
			ExpiresAt: now.Add(time.Hour)}
	}
	d, next := newDenials([]store.Denial{
		settled("export:reports", "", ""),
		{PermissionKey: "delete:reports", CreatedAt: change},       // on its way to Kinde
		settled("read:reports", "kp_alice", "org_acme"),            // alice, in acme only
		settled("admin:permissions", "kp_bob", ""),                 // bob, everywhere
		settled("audit:read", "", "org_beta"),                      // everyone in beta
		{PermissionKey: "gone", SettledAt: change, ExpiresAt: now}, // expired
		settled("export:reports", "", "")},                         // a second, same change
		now)
	if !next.Equal(now.Add(time.Hour)) {
		t.Errorf("next expiry = %v; want %v", next, now.Add(time.Hour))
	}
	all := []string{"export:reports", "delete:reports", "read:reports", "admin:permissions", "audit:read", "gone"}
	tests := []struct {
		user, org string
		claims    time.Time
		want      []string
	}{
		{"kp_alice", "org_acme", before, []string{"delete:reports", "export:reports", "read:reports"}},
		{"kp_alice", "org_acme", after, []string{"delete:reports"}},
		{"kp_alice", "org_acme", change, []string{"delete:reports", "export:reports", "read:reports"}},
		{"kp_alice", "org_beta", before, []string{"audit:read", "delete:reports", "export:reports"}},
		{"kp_bob", "org_acme", before, []string{"admin:permissions", "delete:reports", "export:reports"}},
		{"kp_bob", "", after, []string{"delete:reports"}},
		{"kp_carol", "org_acme", time.Time{}, []string{"delete:reports", "export:reports"}}, // unknown claims time
	}
	for _, tt := range tests {
		got := slices.Sorted(maps.Keys(d.Denied(tt.user, tt.org, tt.claims, all)))
		if !slices.Equal(got, tt.want) {
			t.Errorf("%s in %q, claims %v: denied %v; want %v", tt.user, tt.org, tt.claims.Sub(change), got, tt.want)
		}
	}
	var none *Denials
	if none.Denies("kp_alice", "", before, "export:reports") {
		t.Error("nil Denials denies")
	}
}

func TestRedirectPathOnSite(t *testing.T) {
	const site = "https://app.example.com"
	ok := map[string]string{
		"/dashboard":                            "/dashboard",
		"https://app.example.com/dashboard":     "/dashboard",
		"https://APP.example.com:443/a?b=1#c":   "/a?b=1#c",
		"https://app.example.com":               "/",
		"https://app.example.com/reports?x=%2F": "/reports?x=%2F",
	}
	for in, want := range ok {
		if got, err := RedirectPath(in, site); err != nil || got != want {
			t.Errorf("RedirectPath(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	bad := []string{
		"https://evil.example/dashboard", "http://app.example.com/dashboard", "https://app.example.com:8443/",
		"https://app.example.com.evil.example/", "https://user@app.example.com/", "//app.example.com/x",
		"//evil.example", `/\evil.example`, `/\x`, `https://app.example.com/\evil.example`,
		"https://app.example.com//evil.example", "ftp://app.example.com/", "dashboard",
	}
	for _, in := range bad {
		if got, err := RedirectPath(in, site); err == nil {
			t.Errorf("RedirectPath(%q) = %q; want refused", in, got)
		} else if strings.Contains(err.Error(), "\n") {
			t.Errorf("RedirectPath(%q) error spans lines: %q", in, err)
		}
	}
	if _, err := RedirectPath("https://app.example.com/dashboard", ""); err == nil {
		t.Error("an absolute URL with no site URL was accepted")
	}
}

func TestAccessClaimsLenient(t *testing.T) {
	tests := []struct {
		name, body string
		perms      []string
		roles      []string
		org        string
	}{
		{"kinde objects", `{"permissions":["a","b"],"roles":[{"id":"r1","key":"admin","name":"Admin"}],"org_code":"org_x"}`,
			[]string{"a", "b"}, []string{"admin"}, "org_x"},
		{"roles as strings", `{"permissions":["a"],"roles":["admin","viewer"]}`, []string{"a"}, []string{"admin", "viewer"}, ""},
		{"roles claim off", `{"permissions":["a"]}`, []string{"a"}, nil, ""},
		{"odd roles", `{"permissions":["a"],"roles":"admin"}`, []string{"a"}, nil, ""},
		{"hasura", `{"x-hasura-permissions":["a","b"],"x-hasura-roles":["admin"],"x-hasura-org-code":"org_h"}`,
			[]string{"a", "b"}, []string{"admin"}, "org_h"},
		{"hasura array literal", `{"x-hasura-permissions":"{a,b}"}`, []string{"a", "b"}, nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var ac accessClaims
			if err := json.Unmarshal([]byte(tt.body), &ac); err != nil {
				t.Fatal(err)
			}
			org, perms, rs := ac.read()
			var roles []string
			for _, r := range rs {
				roles = append(roles, r.Key)
			}
			if !slices.Equal(perms, tt.perms) || !slices.Equal(roles, tt.roles) || org != tt.org {
				t.Fatalf("perms %v roles %v org %q", perms, roles, org)
			}
		})
	}
}

// TestHostCookiesOnHTTPS: on an https site the session and flash cookies
// carry the __Host- prefix (so a sibling subdomain cannot plant them); on a
// plain-http local site they cannot, and keep their plain names.
func TestHostCookiesOnHTTPS(t *testing.T) {
	t.Parallel()
	keys, err := NewKeyring([]string{strings.Repeat("s", 32)})
	if err != nil {
		t.Fatal(err)
	}
	for site, want := range map[string]string{
		"https://app.example.com": "__Host-permsync_session",
		"http://localhost:8080":   "permsync_session",
	} {
		st := NewSessionStore(nil, keys, site, nil)
		if got := st.CookieName(); got != want {
			t.Errorf("%s: session cookie %q; want %q", site, got, want)
		}
		rec := httptest.NewRecorder()
		if err := st.AddFlash(rec, httptest.NewRequest("GET", "/", nil), nil, Flash{Kind: "info", Message: "hi"}); err != nil {
			t.Fatal(err)
		}
		ck := rec.Result().Cookies()[0]
		if strings.HasPrefix(want, "__Host-") != strings.HasPrefix(ck.Name, "__Host-") ||
			(strings.HasPrefix(ck.Name, "__Host-") && (!ck.Secure || ck.Path != "/" || ck.Domain != "")) {
			t.Errorf("%s: flash cookie %+v", site, ck)
		}
	}
}

// TestCSRFTokens: a token is bound to its purpose and binding, checks under
// a rotated secret, and nothing else passes.
func TestCSRFTokens(t *testing.T) {
	t.Parallel()
	old, _ := NewKeyring([]string{strings.Repeat("o", 32)})
	rotated, _ := NewKeyring([]string{strings.Repeat("n", 32), strings.Repeat("o", 32)})
	tok := old.CSRFToken("session", "abc")
	if !old.CheckCSRF("session", "abc", tok) || !rotated.CheckCSRF("session", "abc", tok) {
		t.Fatal("a valid token is refused")
	}
	for _, bad := range []struct{ purpose, binding, token string }{
		{"session", "abd", tok}, {"pre-session", "abc", tok}, {"session", "abc", ""}, {"session", "", tok},
		{"session", "abc", tok + "A"}, {"session", "abc", strings.ToLower(tok)},
	} {
		if bad.token != tok || bad.binding != "abc" || bad.purpose != "session" {
			if rotated.CheckCSRF(bad.purpose, bad.binding, bad.token) {
				t.Errorf("CheckCSRF(%q, %q, %q) passed", bad.purpose, bad.binding, bad.token)
			}
		}
	}
	if fresh, _ := NewKeyring([]string{strings.Repeat("x", 32)}); fresh.CheckCSRF("session", "abc", tok) {
		t.Error("a token made under another secret passed")
	}
}
