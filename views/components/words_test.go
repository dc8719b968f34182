package components

import "testing"

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
