// Package components holds pure templ components: they render what they are
// given and nothing else.
package components

import (
	"fmt"
	"time"
)

// Alert is a message box: Kind is "success", "info", "warning" or "error".
type Alert struct {
	Kind    string
	Message string
}

// Permission is one permission key as a session holds it.
type Permission struct {
	Key string
	// Revoked means the token still carries it but an admin deleted it, so
	// permsync no longer honours it.
	Revoked bool
}

// Role is one role claim.
type Role struct {
	Key  string
	Name string
}

// Identity is who is signed in.
type Identity struct {
	Name    string
	Email   string
	OrgCode string
	UserID  string
}

// TokenTiming is the access token's lifetime and the session's refresh times.
type TokenTiming struct {
	IssuedAt    time.Time
	ExpiresAt   time.Time
	RefreshedAt time.Time // zero before the first refresh
	SignedInAt  time.Time
	Now         time.Time // render time, for the initial countdown text
}

// Change is what a refresh changed.
type Change struct {
	Added             []string
	Removed           []string
	NewExpiry         time.Time
	TokenChanged      bool
	AlreadyRefreshed  bool
	ClaimsInvalidated bool
	ClaimsSkipped     bool
	// ClaimsRecent: refresh_claims ran for this user less than ClaimsEvery
	// ago, so only the tokens were refreshed.
	ClaimsRecent bool
	ClaimsEvery  time.Duration
}

// SessionPanel is the part of the dashboard that "Refresh session" swaps.
type SessionPanel struct {
	Identity    Identity
	Permissions []Permission
	Roles       []Role
	Timing      TokenTiming
	Change      *Change // set right after a refresh
	Notice      *Alert  // e.g. Kinde unreachable
	CanReports  bool
	CanExport   bool
	// Generation is the session generation this panel shows; the refresh
	// form posts it, so two tabs refreshing at once make one grant.
	Generation int64
	// ClaimsRefresh says whether the button also calls refresh_claims
	// (M2M credentials configured).
	ClaimsRefresh bool
}

// Remaining renders a duration like "4m 05s", or "expired".
func Remaining(now, until time.Time) string {
	d := until.Sub(now).Round(time.Second)
	if d <= 0 {
		return "expired"
	}
	h, m, s := int(d.Hours()), int(d.Minutes())%60, int(d.Seconds())%60
	switch {
	case h > 0:
		return fmt.Sprintf("%dh %02dm", h, m)
	case m > 0:
		return fmt.Sprintf("%dm %02ds", m, s)
	default:
		return fmt.Sprintf("%ds", s)
	}
}

// DueIn is Remaining for something due to happen, not to expire: once the
// time has come and the work has not started yet, it is "a moment" away (the
// text app.js shows too, from data-countdown-done).
func DueIn(now, due time.Time) string {
	if due.Sub(now).Round(time.Second) <= 0 {
		return DueNow
	}
	return Remaining(now, due)
}

// DueNow is what a countdown to due work says once the time has come.
const DueNow = "a moment"

// ISO formats a time for a datetime attribute.
func ISO(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// Clock formats a time for people, in UTC, with the date when it is not
// today; the browser rewrites it into local time.
func Clock(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	u := t.UTC()
	if y, m, d := time.Now().UTC().Date(); u.Year() != y || u.Month() != m || u.Day() != d {
		return u.Format("Jan 2, 15:04 UTC")
	}
	return u.Format("15:04:05 UTC")
}

// Millis is t in unix milliseconds, for data attributes read by app.js.
func Millis(t time.Time) string { return fmt.Sprint(t.UnixMilli()) }
