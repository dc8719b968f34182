package admin

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
)

// An RBAC edit is one change an admin makes to who holds what: a role's
// permissions, a role itself, a member's roles or direct permissions in an
// organization, a membership, or a permission. Before it is confirmed, the
// edit is planned from the local copy of the tenant: for every user and
// organization it touches, which permission keys they lose (held by no other
// path afterwards), gain, or keep through another path, and why.

// EditKind names an RBAC edit.
type EditKind string

// Edit kinds.
const (
	EditRoleAddPermission      EditKind = "role.permission.add"
	EditRoleRemovePermission   EditKind = "role.permission.remove"
	EditRoleCreate             EditKind = "role.create"
	EditRoleRename             EditKind = "role.rename"
	EditRoleDelete             EditKind = "role.delete"
	EditMemberAddRole          EditKind = "member.role.add"
	EditMemberRemoveRole       EditKind = "member.role.remove"
	EditMemberGrantPermission  EditKind = "member.permission.add"
	EditMemberRemovePermission EditKind = "member.permission.remove"
	EditMemberRemove           EditKind = "member.remove"
	EditPermissionCreate       EditKind = "permission.create"
	EditPermissionRename       EditKind = "permission.rename"
)

// Edit is one RBAC edit. Which fields matter depends on Kind.
type Edit struct {
	Kind EditKind

	Role       RoleRef       // the role edited, or given or taken
	Permission PermissionRef // the permission edited, or given or taken
	UserID     string        // the member, for member edits
	UserEmail  string
	OrgCode    string // the organization, for member edits

	// For creates and renames: the new key, name and description.
	NewKey, NewName, Description string
}

// Via is one path by which a user holds a permission in an organization: a
// role (RoleID set) or a direct grant (RoleID empty).
type Via struct {
	RoleID  string
	RoleKey string
}

// Direct reports whether the path is a direct grant.
func (v Via) Direct() bool { return v.RoleID == "" }

// Label is "role analyst" or "a direct grant".
func (v Via) Label() string {
	if v.Direct() {
		return "a direct grant"
	}
	return "role " + v.RoleKey
}

// Holding is a user holding one permission key in one organization, with
// every path it comes through.
type Holding struct {
	UserID  string
	Email   string
	OrgCode string
	Key     string
	Via     []Via
}

// Member is a user holding a role in an organization.
type Member struct {
	UserID  string
	Email   string
	OrgCode string
}

// TenantReader answers the questions an edit plan asks about the tenant,
// from the local copy (the directory); none of them calls Kinde.
type TenantReader interface {
	// KeyHoldings returns every user and organization holding key, with its
	// paths.
	KeyHoldings(ctx context.Context, key string) ([]Holding, error)
	// RoleMembers returns every user and organization holding the role.
	RoleMembers(ctx context.Context, roleID string) ([]Member, error)
	// MemberHoldings returns what the user holds in the organization, one
	// Holding per key.
	MemberHoldings(ctx context.Context, userID, orgCode string) ([]Holding, error)
	// RolePermissionKeys returns the keys of the role's permissions.
	RolePermissionKeys(ctx context.Context, roleID string) ([]string, error)
	// RoleHoldings returns, for every user and organization holding the
	// role, every path to each of the role's permission keys.
	RoleHoldings(ctx context.Context, roleID string) ([]Holding, error)
}

// KeptKey is a permission a touched user keeps through another path: one
// the edit takes a path of, or one it gives that the user already held.
type KeptKey struct {
	Key string
	Via []Via // what still grants it
}

// UserEffect is what an edit does to one user in one organization.
type UserEffect struct {
	UserID  string
	Email   string
	OrgCode string
	Lost    []string  // keys held by no path afterwards, sorted
	Gained  []string  // keys held by no path before, sorted
	Kept    []KeptKey // keys the edit takes or gives, held by another path anyway
	Reason  string    // the edit, in plain words, as it reaches this user
}

// Affected reports whether the user's effective permissions change.
func (e UserEffect) Affected() bool { return len(e.Lost)+len(e.Gained) > 0 }

// Plan is an edit's preview: what it does, to whom, and why.
type Plan struct {
	Edit    Edit
	Summary string       // the edit in plain words
	Note    string       // a warning the admin must read, e.g. on a key change
	Effects []UserEffect // every touched user and organization, by email then organization
	// Refresh lists the users whose claims must be refreshed after the
	// Kinde call: those who lose or gain, plus, for a role rename, every
	// member (their tokens name the role). Sorted, distinct.
	Refresh []string
}

// Losers returns the effects that take something away.
func (p *Plan) Losers() []UserEffect {
	return filterEffects(p.Effects, func(e UserEffect) bool { return len(e.Lost) > 0 })
}

// Gainers returns the effects that give something.
func (p *Plan) Gainers() []UserEffect {
	return filterEffects(p.Effects, func(e UserEffect) bool { return len(e.Gained) > 0 })
}

// Keepers returns the touched users whose effective permissions do not
// change: another path keeps what the edit takes.
func (p *Plan) Keepers() []UserEffect {
	return filterEffects(p.Effects, func(e UserEffect) bool { return !e.Affected() && len(e.Kept) > 0 })
}

// TakesAway reports whether the edit makes anyone lose a permission.
func (p *Plan) TakesAway() bool { return len(p.Losers()) > 0 }

func filterEffects(es []UserEffect, keep func(UserEffect) bool) []UserEffect {
	var out []UserEffect
	for _, e := range es {
		if keep(e) {
			out = append(out, e)
		}
	}
	return out
}

// holdingsKey identifies a user in an organization.
type holdingsKey struct{ user, org string }

// memberState is what one user holds in one organization: key → paths.
type memberState struct {
	email string
	keys  map[string][]Via
}

// tenantSlice is the part of the tenant an edit touches.
type tenantSlice map[holdingsKey]*memberState

func (t tenantSlice) member(user, email, org string) *memberState {
	k := holdingsKey{user, org}
	m := t[k]
	if m == nil {
		m = &memberState{email: email, keys: map[string][]Via{}}
		t[k] = m
	}
	if m.email == "" {
		m.email = email
	}
	return m
}

func (t tenantSlice) addHoldings(hs []Holding, keep func(Holding) bool) {
	for _, h := range hs {
		if keep != nil && !keep(h) {
			continue
		}
		m := t.member(h.UserID, h.Email, h.OrgCode)
		for _, v := range h.Via {
			if !slices.Contains(m.keys[h.Key], v) {
				m.keys[h.Key] = append(m.keys[h.Key], v)
			}
		}
	}
}

// clone copies the slice, so the edit can be applied to the copy.
func (t tenantSlice) clone() tenantSlice {
	out := tenantSlice{}
	for k, m := range t {
		c := &memberState{email: m.email, keys: map[string][]Via{}}
		for key, vs := range m.keys {
			c.keys[key] = slices.Clone(vs)
		}
		out[k] = c
	}
	return out
}

// viaRole reports whether h holds its key through the role.
func viaRole(roleID string) func(Holding) bool {
	return func(h Holding) bool {
		return slices.ContainsFunc(h.Via, func(v Via) bool { return v.RoleID == roleID })
	}
}

// PlanEdit previews e from the tenant copy r. It returns an error only when
// r fails; an edit that changes nothing yields a plan without effects.
func PlanEdit(ctx context.Context, r TenantReader, e Edit) (*Plan, error) {
	before := tenantSlice{}
	var apply func(t tenantSlice)
	var touched func(key string, v Via) bool // a path the edit takes away
	var given func(key string) bool          // a key the edit gives
	role := Via{RoleID: e.Role.ID, RoleKey: e.Role.Key}
	direct := Via{}

	switch e.Kind {
	case EditRoleRemovePermission:
		hs, err := r.KeyHoldings(ctx, e.Permission.Key)
		if err != nil {
			return nil, err
		}
		before.addHoldings(hs, viaRole(e.Role.ID))
		touched = func(key string, v Via) bool { return key == e.Permission.Key && v.RoleID == e.Role.ID }

	case EditRoleAddPermission:
		members, err := r.RoleMembers(ctx, e.Role.ID)
		if err != nil {
			return nil, err
		}
		hs, err := r.KeyHoldings(ctx, e.Permission.Key)
		if err != nil {
			return nil, err
		}
		for _, m := range members {
			before.member(m.UserID, m.Email, m.OrgCode)
		}
		before.addHoldings(hs, func(h Holding) bool { return before[holdingsKey{h.UserID, h.OrgCode}] != nil })
		apply = func(t tenantSlice) {
			for _, m := range t {
				m.keys[e.Permission.Key] = appendVia(m.keys[e.Permission.Key], role)
			}
		}
		given = func(key string) bool { return key == e.Permission.Key }

	case EditRoleDelete:
		hs, err := r.RoleHoldings(ctx, e.Role.ID)
		if err != nil {
			return nil, err
		}
		before.addHoldings(hs, nil)
		// Members of a role without permissions are touched too: the role
		// leaves their tokens' roles claim.
		members, err := r.RoleMembers(ctx, e.Role.ID)
		if err != nil {
			return nil, err
		}
		for _, m := range members {
			before.member(m.UserID, m.Email, m.OrgCode)
		}
		touched = func(_ string, v Via) bool { return v.RoleID == e.Role.ID }

	case EditRoleRename:
		members, err := r.RoleMembers(ctx, e.Role.ID)
		if err != nil {
			return nil, err
		}
		for _, m := range members {
			before.member(m.UserID, m.Email, m.OrgCode)
		}

	case EditMemberAddRole, EditMemberRemoveRole, EditMemberGrantPermission, EditMemberRemovePermission,
		EditMemberRemove:
		hs, err := r.MemberHoldings(ctx, e.UserID, e.OrgCode)
		if err != nil {
			return nil, err
		}
		before.member(e.UserID, e.UserEmail, e.OrgCode)
		before.addHoldings(hs, nil)
		switch e.Kind {
		case EditMemberAddRole:
			keys, err := r.RolePermissionKeys(ctx, e.Role.ID)
			if err != nil {
				return nil, err
			}
			apply = func(t tenantSlice) {
				for _, m := range t {
					for _, k := range keys {
						m.keys[k] = appendVia(m.keys[k], role)
					}
				}
			}
			given = func(key string) bool { return slices.Contains(keys, key) }
		case EditMemberGrantPermission:
			apply = func(t tenantSlice) {
				for _, m := range t {
					m.keys[e.Permission.Key] = appendVia(m.keys[e.Permission.Key], direct)
				}
			}
			given = func(key string) bool { return key == e.Permission.Key }
		case EditMemberRemoveRole:
			touched = func(_ string, v Via) bool { return v.RoleID == e.Role.ID }
		case EditMemberRemovePermission:
			touched = func(key string, v Via) bool { return key == e.Permission.Key && v.Direct() }
		case EditMemberRemove:
			touched = func(string, Via) bool { return true }
		}

	case EditPermissionRename:
		if e.NewKey != "" && e.NewKey != e.Permission.Key {
			hs, err := r.KeyHoldings(ctx, e.Permission.Key)
			if err != nil {
				return nil, err
			}
			before.addHoldings(hs, nil)
			apply = func(t tenantSlice) {
				for _, m := range t {
					if vs := m.keys[e.Permission.Key]; len(vs) > 0 {
						m.keys[e.NewKey] = vs
						delete(m.keys, e.Permission.Key)
					}
				}
			}
		}

	case EditRoleCreate, EditPermissionCreate:
		// Nobody holds what does not exist yet.

	default:
		return nil, fmt.Errorf("admin: unknown RBAC edit %q", e.Kind)
	}

	after := before.clone()
	if touched != nil {
		for _, m := range after {
			for key, vs := range m.keys {
				vs = slices.DeleteFunc(vs, func(v Via) bool { return touched(key, v) })
				if len(vs) == 0 {
					delete(m.keys, key)
				} else {
					m.keys[key] = vs
				}
			}
		}
	}
	if apply != nil {
		apply(after)
	}
	plan := &Plan{Edit: e, Summary: e.Summary(), Note: e.note()}
	refresh := map[string]bool{}
	for k, b := range before {
		a := after[k]
		eff := UserEffect{UserID: k.user, Email: b.email, OrgCode: k.org, Reason: e.reasonFor(k.org)}
		for key, vs := range b.keys {
			switch now := a.keys[key]; {
			case len(now) == 0:
				eff.Lost = append(eff.Lost, key)
			case touched != nil && slices.ContainsFunc(vs, func(v Via) bool { return touched(key, v) }):
				eff.Kept = append(eff.Kept, KeptKey{Key: key, Via: now})
			case given != nil && given(key):
				eff.Kept = append(eff.Kept, KeptKey{Key: key, Via: vs}) // already held before the edit
			}
		}
		for key := range a.keys {
			if len(b.keys[key]) == 0 {
				eff.Gained = append(eff.Gained, key)
			}
		}
		slices.Sort(eff.Lost)
		slices.Sort(eff.Gained)
		slices.SortFunc(eff.Kept, func(x, y KeptKey) int { return strings.Compare(x.Key, y.Key) })
		if eff.Affected() || e.Kind == EditRoleRename || e.Kind == EditRoleDelete || e.isMemberEdit() {
			refresh[k.user] = true
		}
		plan.Effects = append(plan.Effects, eff)
	}
	slices.SortFunc(plan.Effects, func(x, y UserEffect) int {
		return cmp.Or(strings.Compare(x.Email, y.Email), strings.Compare(x.UserID, y.UserID),
			strings.Compare(x.OrgCode, y.OrgCode))
	})
	for u := range refresh {
		plan.Refresh = append(plan.Refresh, u)
	}
	slices.Sort(plan.Refresh)
	return plan, nil
}

func appendVia(vs []Via, v Via) []Via {
	if slices.Contains(vs, v) {
		return vs
	}
	return append(vs, v)
}

func (e Edit) isMemberEdit() bool {
	switch e.Kind {
	case EditMemberAddRole, EditMemberRemoveRole, EditMemberGrantPermission, EditMemberRemovePermission,
		EditMemberRemove:
		return true
	}
	return false
}

// TakesAwayByKind reports whether an edit of this kind can take a permission
// away (and so needs a denial while Kinde catches up).
func (k EditKind) TakesAwayByKind() bool {
	switch k {
	case EditRoleRemovePermission, EditRoleDelete, EditMemberRemoveRole, EditMemberRemovePermission,
		EditMemberRemove, EditPermissionRename:
		return true
	}
	return false
}

// Summary is the edit in plain words.
func (e Edit) Summary() string {
	who := e.UserEmail
	if who == "" {
		who = e.UserID
	}
	switch e.Kind {
	case EditRoleAddPermission:
		return fmt.Sprintf("Add %s to role %s", e.Permission.Key, e.Role.Key)
	case EditRoleRemovePermission:
		return fmt.Sprintf("Remove %s from role %s", e.Permission.Key, e.Role.Key)
	case EditRoleCreate:
		return fmt.Sprintf("Create role %s", e.NewKey)
	case EditRoleRename:
		if e.NewKey != e.Role.Key {
			return fmt.Sprintf("Rename role %s to %s (%q)", e.Role.Key, e.NewKey, e.NewName)
		}
		return fmt.Sprintf("Rename role %s to %q", e.Role.Key, e.NewName)
	case EditRoleDelete:
		return fmt.Sprintf("Delete role %s", e.Role.Key)
	case EditMemberAddRole:
		return fmt.Sprintf("Give %s role %s in %s", who, e.Role.Key, e.OrgCode)
	case EditMemberRemoveRole:
		return fmt.Sprintf("Take role %s from %s in %s", e.Role.Key, who, e.OrgCode)
	case EditMemberGrantPermission:
		return fmt.Sprintf("Grant %s %s directly in %s", who, e.Permission.Key, e.OrgCode)
	case EditMemberRemovePermission:
		return fmt.Sprintf("Remove %s's direct grant of %s in %s", who, e.Permission.Key, e.OrgCode)
	case EditMemberRemove:
		return fmt.Sprintf("Remove %s from %s", who, e.OrgCode)
	case EditPermissionCreate:
		return fmt.Sprintf("Create permission %s", e.NewKey)
	case EditPermissionRename:
		if e.NewKey != "" && e.NewKey != e.Permission.Key {
			return fmt.Sprintf("Change permission key %s to %s", e.Permission.Key, e.NewKey)
		}
		return fmt.Sprintf("Rename permission %s to %q", e.Permission.Key, e.NewName)
	}
	return string(e.Kind)
}

// note is what the admin must know before confirming, beyond who is
// affected.
func (e Edit) note() string {
	switch e.Kind {
	case EditPermissionRename:
		if e.NewKey != "" && e.NewKey != e.Permission.Key {
			return fmt.Sprintf("A key change works as deleting %s and creating %s: every holder loses %s at once "+
				"(code that checks it stops letting them in) and gets %s when their claims are refreshed.",
				e.Permission.Key, e.NewKey, e.Permission.Key, e.NewKey)
		}
		return "Tokens carry permission keys, not names: nobody's access changes."
	case EditRoleRename:
		return "Permissions do not change. Members' tokens name the role, so their claims are refreshed."
	case EditRoleDelete:
		return "Kinde takes the role from every member in every organization. This cannot be undone after the undo window."
	}
	return ""
}

// reasonFor is the edit as it reaches a user in org, in plain words.
func (e Edit) reasonFor(org string) string {
	switch e.Kind {
	case EditRoleRemovePermission:
		return fmt.Sprintf("role %s no longer grants %s", e.Role.Key, e.Permission.Key)
	case EditRoleAddPermission:
		return fmt.Sprintf("role %s now grants %s", e.Role.Key, e.Permission.Key)
	case EditRoleDelete:
		return fmt.Sprintf("role %s was deleted", e.Role.Key)
	case EditRoleRename:
		return fmt.Sprintf("role %s was renamed", e.Role.Key)
	case EditMemberAddRole:
		return fmt.Sprintf("given role %s in %s", e.Role.Key, org)
	case EditMemberRemoveRole:
		return fmt.Sprintf("role %s taken away in %s", e.Role.Key, org)
	case EditMemberGrantPermission:
		return fmt.Sprintf("granted %s directly in %s", e.Permission.Key, org)
	case EditMemberRemovePermission:
		return fmt.Sprintf("direct grant of %s removed in %s", e.Permission.Key, org)
	case EditMemberRemove:
		return fmt.Sprintf("removed from %s", org)
	case EditPermissionRename:
		return fmt.Sprintf("permission key %s became %s", e.Permission.Key, e.NewKey)
	}
	return e.Summary()
}
