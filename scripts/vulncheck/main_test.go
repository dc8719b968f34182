package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// stream builds a govulncheck -format json stream from findings written as
// "ID fixed function" (function empty: the module is required but the
// vulnerable symbol is not reached).
func stream(findings ...[3]string) string {
	var b strings.Builder
	b.WriteString(`{"config":{"scanner_name":"govulncheck"}}` + "\n")
	for _, f := range findings {
		b.WriteString(`{"finding":{"osv":"` + f[0] + `","fixed_version":"` + f[1] +
			`","trace":[{"module":"example.com/m","version":"v1.0.0","package":"example.com/m","function":"` + f[2] + `"}]}}` + "\n")
	}
	return b.String()
}

func TestReport(t *testing.T) {
	accepted := filepath.Join(t.TempDir(), "SECURITY.md")
	if err := os.WriteFile(accepted, []byte("| GO-2026-0002 | no fix | mitigated |\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name     string
		in       string
		wantFail string // substring of the error; empty: passes
	}{
		{"nothing found", stream(), ""},
		{"required but not reached", stream([3]string{"GO-2026-0001", "v1.2.0", ""}), ""},
		{"reached, fix released", stream([3]string{"GO-2026-0001", "v1.2.0", "Parse"}), "GO-2026-0001"},
		{"reached, no fix, mitigation written down", stream([3]string{"GO-2026-0002", "", "Parse"}), ""},
		{"reached, no fix, nothing written down", stream([3]string{"GO-2026-0003", "", "Parse"}), "GO-2026-0003"},
		{"accepted id with a fix still fails", stream([3]string{"GO-2026-0002", "v1.3.0", "Parse"}), "GO-2026-0002"},
		{"not govulncheck output", "<html>", "reading govulncheck's output"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out strings.Builder
			err := report(strings.NewReader(tc.in), &out, accepted)
			switch {
			case tc.wantFail == "" && err != nil:
				t.Fatalf("report failed: %v\n%s", err, out.String())
			case tc.wantFail != "" && (err == nil || !strings.Contains(err.Error(), tc.wantFail)):
				t.Fatalf("report error = %v, want one naming %q\n%s", err, tc.wantFail, out.String())
			}
		})
	}
}

func TestIndex(t *testing.T) {
	osv, out := t.TempDir(), t.TempDir()
	rec := `{"id":"GO-2026-0001","modified":"2026-11-01T00:00:00Z","aliases":["CVE-2026-1"],` +
		`"affected":[{"package":{"name":"example.com/m"},"ranges":[{"events":[{"introduced":"0"},{"fixed":"1.2.0"}]}]}]}`
	if err := os.WriteFile(filepath.Join(osv, "GO-2026-0001.json"), []byte(rec), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := index(osv, out); err != nil {
		t.Fatal(err)
	}
	mods, err := os.ReadFile(filepath.Join(out, "index", "modules.json"))
	if err != nil {
		t.Fatal(err)
	}
	if want := `[{"path":"example.com/m","vulns":[{"id":"GO-2026-0001","modified":"2026-11-01T00:00:00Z","fixed":"1.2.0"}]}]`; string(mods) != want {
		t.Errorf("modules.json = %s, want %s", mods, want)
	}
	if _, err := os.Stat(filepath.Join(out, "ID", "GO-2026-0001.json")); err != nil {
		t.Error(err)
	}
	if err := index(t.TempDir(), out); err == nil {
		t.Error("indexing an empty folder succeeded")
	}
}
