package admin

import (
	"slices"
	"strings"
)

// ReasonKind says why a user holds (or held) a permission.
type ReasonKind string

// Reason kinds.
const (
	ReasonRole    ReasonKind = "role"    // through a role that contains the permission
	ReasonDirect  ReasonKind = "direct"  // granted to the user directly in an organization
	ReasonSession ReasonKind = "session" // a live permsync session's token carries the key
)

// Reason is one reason a user is affected by, or holds, a permission.
type Reason struct {
	Kind    ReasonKind
	RoleKey string // the role, for ReasonRole
}

// String is the compact form stored with fan-out items: "role:analyst",
// "direct" or "session".
func (r Reason) String() string {
	if r.Kind == ReasonRole {
		return string(ReasonRole) + ":" + r.RoleKey
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
	}
	return string(r.Kind)
}

// formatReasons joins reasons in their compact form.
func formatReasons(rs []Reason) string {
	parts := make([]string, len(rs))
	for i, r := range rs {
		parts[i] = r.String()
	}
	return strings.Join(parts, ",")
}

// parseReasons reads the compact form back.
func parseReasons(s string) []Reason {
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
		out = append(out, Reason{Kind: ReasonKind(part)})
	}
	return out
}

// addReason appends r unless it is already there.
func addReason(rs []Reason, r Reason) []Reason {
	if slices.Contains(rs, r) {
		return rs
	}
	return append(rs, r)
}

// hasRoleReason reports whether any reason is a role.
func hasRoleReason(rs []Reason) bool {
	return slices.ContainsFunc(rs, func(r Reason) bool { return r.Kind == ReasonRole })
}

// sortReasons orders reasons roles first (by key), then direct, then session.
func sortReasons(rs []Reason) {
	rank := map[ReasonKind]int{ReasonRole: 0, ReasonDirect: 1, ReasonSession: 2}
	slices.SortFunc(rs, func(a, b Reason) int {
		if c := rank[a.Kind] - rank[b.Kind]; c != 0 {
			return c
		}
		return strings.Compare(a.RoleKey, b.RoleKey)
	})
}

// RoleRef names a role.
type RoleRef struct {
	ID   string
	Key  string
	Name string
}

// PermissionRef names a permission.
type PermissionRef struct {
	ID   string
	Key  string
	Name string
}
