package admin

import (
	"context"
	"slices"
	"strings"
	"testing"

	"permsync/apperr"
)

// tableTenant is a tenant given as data: roles with their permission keys,
// and members with their roles and direct keys per organization. It answers
// TenantReader's questions the way the directory does, so PlanEdit's rules
// can be checked case by case.
type tableTenant struct {
	roles   map[string][]string // role key → permission keys (role id = "id-" + key)
	members []tableMember
}

type tableMember struct {
	user, org string
	roles     []string // role keys
	direct    []string // permission keys
}

func roleID(key string) string { return "id-" + key }

func email(user string) string { return user + "@acme.test" }

func (t *tableTenant) holdings(m tableMember) []Holding {
	byKey := map[string][]Via{}
	var order []string
	add := func(k string, v Via) {
		if byKey[k] == nil {
			order = append(order, k)
		}
		byKey[k] = append(byKey[k], v)
	}
	for _, r := range m.roles {
		for _, k := range t.roles[r] {
			add(k, Via{RoleID: roleID(r), RoleKey: r})
		}
	}
	for _, k := range m.direct {
		add(k, Via{})
	}
	var out []Holding
	for _, k := range order {
		out = append(out, Holding{UserID: m.user, Email: email(m.user), OrgCode: m.org, Key: k, Via: byKey[k]})
	}
	return out
}

func (t *tableTenant) KeyHoldings(_ context.Context, key string) ([]Holding, error) {
	var out []Holding
	for _, m := range t.members {
		for _, h := range t.holdings(m) {
			if h.Key == key {
				out = append(out, h)
			}
		}
	}
	return out, nil
}

func (t *tableTenant) RoleMembers(_ context.Context, id string) ([]Member, error) {
	var out []Member
	for _, m := range t.members {
		if slices.ContainsFunc(m.roles, func(r string) bool { return roleID(r) == id }) {
			out = append(out, Member{UserID: m.user, Email: email(m.user), OrgCode: m.org})
		}
	}
	return out, nil
}

func (t *tableTenant) MemberHoldings(_ context.Context, user, org string) ([]Holding, error) {
	for _, m := range t.members {
		if m.user == user && m.org == org {
			return t.holdings(m), nil
		}
	}
	return nil, nil
}

func (t *tableTenant) RoleHoldings(ctx context.Context, id string) ([]Holding, error) {
	keys, _ := t.RolePermissionKeys(ctx, id)
	var out []Holding
	for _, m := range t.members {
		if !slices.ContainsFunc(m.roles, func(r string) bool { return roleID(r) == id }) {
			continue
		}
		for _, h := range t.holdings(m) {
			if slices.Contains(keys, h.Key) {
				out = append(out, h)
			}
		}
	}
	return out, nil
}

func (t *tableTenant) RolePermissionKeys(_ context.Context, id string) ([]string, error) {
	for r, keys := range t.roles {
		if roleID(r) == id {
			return keys, nil
		}
	}
	return nil, nil
}

// demoTenant is the demo seed, plus alice as an analyst in a second
// organization.
func demoTenant() *tableTenant {
	return &tableTenant{
		roles: map[string][]string{
			"admin":   {"read:reports", "export:reports", "delete:reports", "admin:permissions"},
			"analyst": {"read:reports", "export:reports"},
			"viewer":  {"read:reports"},
			"empty":   nil,
		},
		members: []tableMember{
			{user: "admin", org: "org_acme", roles: []string{"admin"}},
			{user: "alice", org: "org_acme", roles: []string{"analyst"}},
			{user: "bob", org: "org_acme", roles: []string{"viewer"}},
			{user: "carol", org: "org_acme", roles: []string{"viewer"}, direct: []string{"export:reports"}},
			{user: "alice", org: "org_beta", roles: []string{"analyst"}},
		},
	}
}

func role(key string) RoleRef { return RoleRef{ID: roleID(key), Key: key} }

// effects renders a plan's effects compactly: "user@org -lost +gained =kept(via)".
func effects(p *Plan) []string {
	var out []string
	for _, e := range p.Effects {
		s := strings.TrimSuffix(e.Email, "@acme.test") + "@" + e.OrgCode
		for _, k := range e.Lost {
			s += " -" + k
		}
		for _, k := range e.Gained {
			s += " +" + k
		}
		for _, k := range e.Kept {
			var via []string
			for _, v := range k.Via {
				via = append(via, v.Label())
			}
			s += " =" + k.Key + "(" + strings.Join(via, ",") + ")"
		}
		out = append(out, s)
	}
	return out
}

func plan(t *testing.T, e Edit) *Plan {
	t.Helper()
	p, err := PlanEdit(context.Background(), demoTenant(), e)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func expectEffects(t *testing.T, p *Plan, want ...string) {
	t.Helper()
	if got := effects(p); !slices.Equal(got, want) {
		t.Errorf("%s:\n got %q\nwant %q", p.Summary, got, want)
	}
}

// The example of the issue: removing export:reports from analyst refuses
// alice (in both of her organizations); carol (direct grant) and admin
// (admin role) hold it by other paths and are not touched by the edit.
func TestPlanRoleRemovePermission(t *testing.T) {
	p := plan(t, Edit{Kind: EditRoleRemovePermission, Role: role("analyst"),
		Permission: PermissionRef{Key: "export:reports"}})
	expectEffects(t, p, "alice@org_acme -export:reports", "alice@org_beta -export:reports")
	if !slices.Equal(p.Refresh, []string{"alice"}) || !p.TakesAway() {
		t.Errorf("refresh %v, takes away %v", p.Refresh, p.TakesAway())
	}
	if p.Effects[0].Reason != "role analyst no longer grants export:reports" {
		t.Errorf("reason %q", p.Effects[0].Reason)
	}

	// Taking read:reports off viewer: carol and bob lose it; nobody keeps it.
	// Taking it off admin: admin loses it. Giving carol analyst first shows
	// a keeper.
	tn := demoTenant()
	tn.members[3].roles = append(tn.members[3].roles, "analyst")
	p, err := PlanEdit(context.Background(), tn, Edit{Kind: EditRoleRemovePermission, Role: role("viewer"),
		Permission: PermissionRef{Key: "read:reports"}})
	if err != nil {
		t.Fatal(err)
	}
	expectEffects(t, p, "bob@org_acme -read:reports", "carol@org_acme =read:reports(role analyst)")
	if k := p.Keepers(); len(k) != 1 || k[0].UserID != "carol" || len(p.Losers()) != 1 {
		t.Errorf("keepers %v losers %v", k, p.Losers())
	}
}

func TestPlanRoleAddPermission(t *testing.T) {
	p := plan(t, Edit{Kind: EditRoleAddPermission, Role: role("viewer"), Permission: PermissionRef{Key: "export:reports"}})
	// carol already holds it directly: she gains nothing.
	expectEffects(t, p, "bob@org_acme +export:reports", "carol@org_acme =export:reports(a direct grant)")
	if !slices.Equal(p.Refresh, []string{"bob"}) || p.TakesAway() {
		t.Errorf("refresh %v takes away %v", p.Refresh, p.TakesAway())
	}
}

func TestPlanRoleDelete(t *testing.T) {
	p := plan(t, Edit{Kind: EditRoleDelete, Role: role("viewer")})
	// bob loses read:reports; carol loses it too (her direct grant is export).
	expectEffects(t, p, "bob@org_acme -read:reports", "carol@org_acme -read:reports")
	p = plan(t, Edit{Kind: EditRoleDelete, Role: role("empty")})
	if len(p.Effects) != 0 || len(p.Refresh) != 0 {
		t.Errorf("a role nobody holds: %v", effects(p))
	}
}

func TestPlanMemberEdits(t *testing.T) {
	// A role removal in one organization leaves the same role in another
	// untouched.
	p := plan(t, Edit{Kind: EditMemberRemoveRole, Role: role("analyst"), UserID: "alice", UserEmail: email("alice"),
		OrgCode: "org_acme"})
	expectEffects(t, p, "alice@org_acme -export:reports -read:reports")

	p = plan(t, Edit{Kind: EditMemberRemoveRole, Role: role("viewer"), UserID: "carol", UserEmail: email("carol"),
		OrgCode: "org_acme"})
	expectEffects(t, p, "carol@org_acme -read:reports")

	p = plan(t, Edit{Kind: EditMemberRemovePermission, Permission: PermissionRef{Key: "export:reports"},
		UserID: "carol", UserEmail: email("carol"), OrgCode: "org_acme"})
	expectEffects(t, p, "carol@org_acme -export:reports")

	// alice's direct grant of read:reports is redundant with analyst.
	tn := demoTenant()
	tn.members[1].direct = []string{"read:reports"}
	p, err := PlanEdit(context.Background(), tn, Edit{Kind: EditMemberRemovePermission,
		Permission: PermissionRef{Key: "read:reports"}, UserID: "alice", UserEmail: email("alice"), OrgCode: "org_acme"})
	if err != nil {
		t.Fatal(err)
	}
	expectEffects(t, p, "alice@org_acme =read:reports(role analyst)")
	if p.TakesAway() {
		t.Error("a redundant grant's removal takes nothing away")
	}

	p = plan(t, Edit{Kind: EditMemberAddRole, Role: role("analyst"), UserID: "bob", UserEmail: email("bob"),
		OrgCode: "org_acme"})
	expectEffects(t, p, "bob@org_acme +export:reports =read:reports(role viewer)")

	p = plan(t, Edit{Kind: EditMemberGrantPermission, Permission: PermissionRef{Key: "delete:reports"},
		UserID: "bob", UserEmail: email("bob"), OrgCode: "org_acme"})
	expectEffects(t, p, "bob@org_acme +delete:reports")
	if !slices.Equal(p.Refresh, []string{"bob"}) {
		t.Errorf("refresh %v", p.Refresh)
	}

	p = plan(t, Edit{Kind: EditMemberRemove, UserID: "carol", UserEmail: email("carol"), OrgCode: "org_acme"})
	expectEffects(t, p, "carol@org_acme -export:reports -read:reports")
	p = plan(t, Edit{Kind: EditMemberRemove, UserID: "alice", UserEmail: email("alice"), OrgCode: "org_beta"})
	expectEffects(t, p, "alice@org_beta -export:reports -read:reports")
}

func TestPlanPermissionEdits(t *testing.T) {
	p := plan(t, Edit{Kind: EditPermissionRename, Permission: PermissionRef{Key: "export:reports"},
		NewKey: "export:all", NewName: "Export all"})
	expectEffects(t, p,
		"admin@org_acme -export:reports +export:all",
		"alice@org_acme -export:reports +export:all",
		"alice@org_beta -export:reports +export:all",
		"carol@org_acme -export:reports +export:all")
	if !strings.Contains(p.Note, "deleting export:reports and creating export:all") {
		t.Errorf("note %q", p.Note)
	}
	p = plan(t, Edit{Kind: EditPermissionRename, Permission: PermissionRef{Key: "export:reports"},
		NewKey: "export:reports", NewName: "Export"})
	if len(p.Effects) != 0 || p.Note == "" {
		t.Errorf("a name change: %v, note %q", effects(p), p.Note)
	}
	for _, k := range []EditKind{EditPermissionCreate, EditRoleCreate} {
		if p := plan(t, Edit{Kind: k, NewKey: "x"}); len(p.Effects) != 0 {
			t.Errorf("%s touches %v", k, effects(p))
		}
	}
	p = plan(t, Edit{Kind: EditRoleRename, Role: role("analyst"), NewKey: "analysts", NewName: "Analysts"})
	expectEffects(t, p, "alice@org_acme", "alice@org_beta")
	if !slices.Equal(p.Refresh, []string{"alice"}) {
		t.Errorf("a role rename refreshes its members: %v", p.Refresh)
	}
	if _, err := PlanEdit(context.Background(), demoTenant(), Edit{Kind: "nope"}); err == nil {
		t.Error("an unknown edit kind was planned")
	}
}

// The lookups of RBACDirectory, for resolveEdit and planEdit.

func permID(key string) string { return "p-" + key }

func (t *tableTenant) RoleByID(_ context.Context, id string) (*RoleRef, error) {
	for r := range t.roles {
		if roleID(r) == id {
			return &RoleRef{ID: id, Key: r, Name: r}, nil
		}
	}
	return nil, nil
}

func (t *tableTenant) RoleByKey(ctx context.Context, key string) (*RoleRef, error) {
	return t.RoleByID(ctx, roleID(key))
}

func (t *tableTenant) PermissionByKey(_ context.Context, key string) (*PermissionRef, error) {
	for _, keys := range t.roles {
		if slices.Contains(keys, key) {
			return &PermissionRef{ID: permID(key), Key: key, Name: key}, nil
		}
	}
	return nil, nil
}

func (t *tableTenant) PermissionByID(ctx context.Context, id string) (*PermissionRef, error) {
	key, ok := strings.CutPrefix(id, "p-")
	if !ok {
		return nil, nil
	}
	return t.PermissionByKey(ctx, key)
}

func (t *tableTenant) Member(_ context.Context, user, org string) (*MemberInfo, error) {
	known := false
	for _, m := range t.members {
		if m.user != user {
			continue
		}
		known = true
		if m.org == org {
			info := &MemberInfo{UserID: user, Email: email(user), IsMember: true, DirectKeys: m.direct}
			for _, r := range m.roles {
				info.RoleIDs = append(info.RoleIDs, roleID(r))
			}
			return info, nil
		}
	}
	if !known {
		return nil, nil
	}
	return &MemberInfo{UserID: user, Email: email(user)}, nil
}

func TestResolveEditRefusals(t *testing.T) {
	admin := Actor{UserID: "admin", Email: email("admin"), Permissions: []string{DefaultAdminPermission}}
	cases := []struct {
		in   EditInput
		code apperr.Code
		msg  string
	}{
		{EditInput{Kind: EditRoleAddPermission, RoleID: roleID("nope"), PermissionID: permID("read:reports")},
			apperr.NotFound, "Role not found"},
		{EditInput{Kind: EditRoleAddPermission, RoleID: roleID("viewer"), PermissionID: "p-nope"},
			apperr.NotFound, "Permission not found"},
		{EditInput{Kind: EditRoleAddPermission, RoleID: roleID("viewer"), PermissionID: permID("read:reports")},
			apperr.Invalid, "already grants"},
		{EditInput{Kind: EditRoleRemovePermission, RoleID: roleID("viewer"), PermissionID: permID("export:reports")},
			apperr.Invalid, "does not grant"},
		{EditInput{Kind: EditRoleCreate, Key: "analyst"}, apperr.Conflict, "already exists"},
		{EditInput{Kind: EditRoleCreate, Key: "two words"}, apperr.Invalid, "spaces"},
		{EditInput{Kind: EditRoleCreate, Key: " "}, apperr.Invalid, "required"},
		{EditInput{Kind: EditRoleRename, RoleID: roleID("viewer"), Key: "viewer", Name: "viewer"}, apperr.Invalid,
			"Nothing to change"},
		{EditInput{Kind: EditRoleRename, RoleID: roleID("viewer"), Key: "analyst"}, apperr.Conflict, "already exists"},
		{EditInput{Kind: EditMemberAddRole, RoleID: roleID("analyst"), UserID: "alice", OrgCode: "org_acme"},
			apperr.Invalid, "already has role"},
		{EditInput{Kind: EditMemberAddRole, RoleID: roleID("analyst"), UserID: "bob", OrgCode: "org_beta"},
			apperr.Invalid, "not a member"},
		{EditInput{Kind: EditMemberAddRole, RoleID: roleID("analyst"), UserID: "zed", OrgCode: "org_acme"},
			apperr.NotFound, "User not found"},
		{EditInput{Kind: EditMemberRemoveRole, RoleID: roleID("admin"), UserID: "bob", OrgCode: "org_acme"},
			apperr.Invalid, "does not have role"},
		{EditInput{Kind: EditMemberGrantPermission, PermissionID: permID("export:reports"), UserID: "carol",
			OrgCode: "org_acme"}, apperr.Invalid, "already has"},
		{EditInput{Kind: EditMemberRemovePermission, PermissionID: permID("read:reports"), UserID: "bob",
			OrgCode: "org_acme"}, apperr.Invalid, "goes with the role"},
		{EditInput{Kind: EditPermissionCreate, Key: "read:reports"}, apperr.Conflict, "already exists"},
		{EditInput{Kind: EditPermissionRename, PermissionID: permID(DefaultAdminPermission), Key: "admin:all"},
			apperr.Conflict, "admin panel"},
		{EditInput{Kind: EditPermissionRename, PermissionID: permID("read:reports"), Key: "read:reports",
			Name: "read:reports"}, apperr.Invalid, "Nothing to change"},
		// Self-lockout: the admin taking the admin permission from their own role.
		{EditInput{Kind: EditRoleRemovePermission, RoleID: roleID("admin"), PermissionID: permID(DefaultAdminPermission)},
			apperr.Conflict, "lock you out"},
		{EditInput{Kind: EditMemberRemove, UserID: "admin", OrgCode: "org_acme"}, apperr.Conflict, "lock you out"},
		{EditInput{Kind: "role.paint"}, apperr.Invalid, "Unknown change"},
	}
	for _, c := range cases {
		_, err := planEdit(context.Background(), demoTenant(), DefaultAdminPermission, admin, c.in)
		if apperr.CodeOf(err) != c.code || !strings.Contains(apperr.MessageOf(err), c.msg) {
			t.Errorf("%+v: %v (%s), want %s containing %q", c.in, err, apperr.CodeOf(err), c.code, c.msg)
		}
	}
}

func TestPlanEditPreview(t *testing.T) {
	admin := Actor{UserID: "admin", Email: email("admin"), Permissions: []string{DefaultAdminPermission}}
	p, err := planEdit(context.Background(), demoTenant(), DefaultAdminPermission, admin, EditInput{
		Kind: EditRoleRemovePermission, RoleID: roleID("analyst"), PermissionID: permID("export:reports")})
	if err != nil {
		t.Fatal(err)
	}
	if p.ConfirmWord != "export:reports" || p.Summary != "Remove export:reports from role analyst" {
		t.Errorf("preview %q confirm %q", p.Summary, p.ConfirmWord)
	}
	p, err = planEdit(context.Background(), demoTenant(), DefaultAdminPermission, admin, EditInput{
		Kind: EditMemberGrantPermission, PermissionID: permID("delete:reports"), UserID: "bob", OrgCode: " org_acme "})
	if err != nil {
		t.Fatal(err)
	}
	if p.ConfirmWord != "" || p.Edit.UserEmail != email("bob") || len(p.Gainers()) != 1 {
		t.Errorf("grant preview: confirm %q, %+v", p.ConfirmWord, p.Effects)
	}
}

func (t *tableTenant) MemberOrgs(_ context.Context, user string) ([]string, error) {
	var out []string
	for _, m := range t.members {
		if m.user == user {
			out = append(out, m.org)
		}
	}
	return out, nil
}

func (t *tableTenant) Roles(ctx context.Context) ([]RoleRef, error) {
	var out []RoleRef
	for r := range t.roles {
		out = append(out, RoleRef{ID: roleID(r), Key: r, Name: r})
	}
	return out, nil
}

func (t *tableTenant) Permissions(ctx context.Context) ([]PermissionRef, error) {
	var out []PermissionRef
	for _, k := range t.roles["admin"] {
		out = append(out, PermissionRef{ID: permID(k), Key: k, Name: k})
	}
	return out, nil
}
