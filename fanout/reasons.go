package fanout

import (
	"slices"
	"strings"
	"time"

	"permsync/store"
)

// ReasonKind says why a user holds (or held) a permission.
type ReasonKind string

// Reason kinds.
const (
	ReasonRole    ReasonKind = "role"    // through a role that contains the permission
	ReasonDirect  ReasonKind = "direct"  // granted to the user directly in an organization
	ReasonSession ReasonKind = "session" // a live permsync session's token carries the key
	ReasonHolder  ReasonKind = "holder"  // the local directory says they hold it (by a role or directly)
	// ReasonCovered: another fan-out already refreshes (or refreshed) the
	// user's claims after the change; the item is done without a call.
	ReasonCovered ReasonKind = "covered"
)

// Reason is one reason a user is affected by, or holds, a permission.
type Reason struct {
	Kind     ReasonKind
	RoleKey  string // the role, for ReasonRole
	FanoutID string // the fan-out that makes the refresh, for ReasonCovered ("": Refresh session)
}

// CoveredBy is the reason of an item whose refresh fan-out id makes.
func CoveredBy(fanoutID string) Reason { return Reason{Kind: ReasonCovered, FanoutID: fanoutID} }

// String is the compact form stored with fan-out items: "role:analyst",
// "direct", "session" or "covered:fo_…".
func (r Reason) String() string {
	switch r.Kind {
	case ReasonRole:
		return string(ReasonRole) + ":" + r.RoleKey
	case ReasonCovered:
		return string(ReasonCovered) + ":" + r.FanoutID
	}
	return string(r.Kind)
}

// Label is a short human description, e.g. "role analyst".
func (r Reason) Label() string {
	switch r.Kind {
	case ReasonRole:
		return "role " + r.RoleKey
	case ReasonDirect:
		return "granted directly"
	case ReasonSession:
		return "live session carries it"
	case ReasonHolder:
		return "holds it (directory)"
	case ReasonCovered:
		if r.FanoutID == "" {
			return "already refreshed after the change (Refresh session)"
		}
		return "already refreshed by fan-out " + r.FanoutID
	}
	return string(r.Kind)
}

// FormatReasons joins reasons in their compact form.
func FormatReasons(rs []Reason) string {
	parts := make([]string, len(rs))
	for i, r := range rs {
		parts[i] = r.String()
	}
	return strings.Join(parts, ",")
}

// ParseReasons reads the compact form back.
func ParseReasons(s string) []Reason {
	var out []Reason
	for part := range strings.SplitSeq(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		if key, ok := strings.CutPrefix(part, string(ReasonRole)+":"); ok {
			out = append(out, Reason{Kind: ReasonRole, RoleKey: key})
			continue
		}
		if id, ok := strings.CutPrefix(part, string(ReasonCovered)+":"); ok {
			out = append(out, CoveredBy(id))
			continue
		}
		out = append(out, Reason{Kind: ReasonKind(part)})
	}
	return out
}

// AddReason appends r unless it is already there.
func AddReason(rs []Reason, r Reason) []Reason {
	if slices.Contains(rs, r) {
		return rs
	}
	return append(rs, r)
}

// HasRoleReason reports whether any reason is a role.
func HasRoleReason(rs []Reason) bool {
	return slices.ContainsFunc(rs, func(r Reason) bool { return r.Kind == ReasonRole })
}

// SortReasons orders reasons roles first (by key), then direct, then
// session; a cover last.
func SortReasons(rs []Reason) {
	rank := map[ReasonKind]int{ReasonRole: 0, ReasonDirect: 1, ReasonSession: 2, ReasonCovered: 9}
	slices.SortFunc(rs, func(a, b Reason) int {
		if c := rank[a.Kind] - rank[b.Kind]; c != 0 {
			return c
		}
		return strings.Compare(a.RoleKey, b.RoleKey)
	})
}

// AffectedUser is a user a change reaches, and why.
type AffectedUser struct {
	UserID  string
	Email   string
	Name    string
	Reasons []Reason
}

// Items turns affected users into pending fan-out items, reasons sorted.
func Items(affected []AffectedUser) []store.FanoutItem {
	items := make([]store.FanoutItem, len(affected))
	for i, u := range affected {
		SortReasons(u.Reasons)
		items[i] = store.FanoutItem{UserID: u.UserID, Email: u.Email, Reasons: FormatReasons(u.Reasons)}
	}
	return items
}

// MergeAffected adds b's users and reasons to a.
func MergeAffected(a, b []AffectedUser) []AffectedUser {
	idx := make(map[string]int, len(a))
	for i, u := range a {
		idx[u.UserID] = i
	}
	for _, u := range b {
		if i, ok := idx[u.UserID]; ok {
			for _, r := range u.Reasons {
				a[i].Reasons = AddReason(a[i].Reasons, r)
			}
			if a[i].Email == "" {
				a[i].Email, a[i].Name = u.Email, u.Name
			}
			continue
		}
		idx[u.UserID] = len(a)
		a = append(a, u)
	}
	return a
}

// DefaultTombstoneTTL is how long a denial (a deleted permission's key, for
// everyone) lasts after Kinde made the change, by default. It outlives Kinde's default (and
// recommended maximum) access-token lifetime of 24 hours, with an hour to
// spare.
const DefaultTombstoneTTL = 25 * time.Hour
