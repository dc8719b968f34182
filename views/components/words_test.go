package components

import (
	"testing"
	"time"
)

func TestPermissionName(t *testing.T) {
	for key, want := range map[string]string{
		"export:reports":    "Export reports",
		"read:reports":      "Read reports",
		"admin:permissions": "Admin permissions",
		"reports.read_all":  "Reports read all",
		"billing-admin":     "Billing admin",
		"x":                 "X",
		"été:rapports":      "Été rapports",
		":::":               ":::",
		"":                  "",
	} {
		if got := PermissionName(key); got != want {
			t.Errorf("PermissionName(%q) = %q, want %q", key, got, want)
		}
	}
}

func TestPermissionDiffSummary(t *testing.T) {
	for _, tc := range []struct {
		d    PermissionDiff
		want string
	}{
		{PermissionDiff{}, ""},
		{PermissionDiff{Removed: []string{"export:reports"}}, "Export reports was removed from your access."},
		{PermissionDiff{Removed: []string{"delete:reports", "export:reports"}},
			"Delete reports and Export reports were removed from your access."},
		{PermissionDiff{Removed: []string{"a:b", "c:d", "e:f"}}, "A b, C d and E f were removed from your access."},
		{PermissionDiff{Added: []string{"read:reports"}}, "Read reports was added to your access."},
		{PermissionDiff{Added: []string{"read:reports"}, Removed: []string{"export:reports"}},
			"Export reports was removed from your access. Read reports was added."},
	} {
		if got := tc.d.Summary(); got != tc.want {
			t.Errorf("%+v.Summary() = %q, want %q", tc.d, got, tc.want)
		}
	}
}

func TestPlural(t *testing.T) {
	for _, tc := range []struct {
		n    int
		want string
	}{{0, "0 users"}, {1, "1 user"}, {2, "2 users"}, {19, "19 users"}} {
		if got := Plural(tc.n, "user", "users"); got != tc.want {
			t.Errorf("Plural(%d) = %q, want %q", tc.n, got, tc.want)
		}
	}
}

func TestDueIn(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, c := range []struct {
		due  time.Duration
		want string
	}{
		{3 * time.Second, "3s"},
		{90 * time.Second, "1m 30s"},
		{0, DueNow},
		{-2 * time.Second, DueNow},
	} {
		if got := DueIn(now, now.Add(c.due)); got != c.want {
			t.Errorf("DueIn(now, now%+v) = %q; want %q", c.due, got, c.want)
		}
	}
	// An expiry still says it expired.
	if got := Remaining(now, now.Add(-time.Second)); got != "expired" {
		t.Errorf("Remaining past = %q; want expired", got)
	}
}
