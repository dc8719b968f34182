package auth

import (
	"bytes"
	"slices"
	"strings"
	"testing"
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

func TestCanSubtractsTombstones(t *testing.T) {
	s := &Session{Permissions: []string{"read:reports", "export:reports"}}
	if !s.Can("export:reports") {
		t.Fatal("token permission denied before tombstones")
	}
	s.applyTombstones(map[string]struct{}{"export:reports": {}})
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
