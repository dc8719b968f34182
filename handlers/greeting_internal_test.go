package handlers

import (
	"testing"
	"time"

	"permsync/auth"
)

func TestGreeting(t *testing.T) {
	now := time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name    string
		created time.Time
		want    string
	}{
		{"Alice Analyst", now.Add(-time.Minute), "Welcome, Alice"},
		{"Alice Analyst", now.Add(-2 * time.Hour), "Welcome back, Alice"},
		{"", now.Add(-time.Minute), "Welcome"},
		{"  ", now.Add(-2 * time.Hour), "Welcome back"},
		{"Bob", time.Time{}, "Welcome, Bob"},
	} {
		s := &auth.Session{}
		s.Name, s.CreatedAt = tc.name, tc.created
		if got := greeting(s, now); got != tc.want {
			t.Errorf("greeting(%q, signed in %v ago) = %q, want %q", tc.name, now.Sub(tc.created), got, tc.want)
		}
	}
}
