package admin

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"unicode"

	"permsync/apperr"
)

// RBACDirectory is what RBAC edits read from the local copy of the tenant:
// the plan's questions, and the names and memberships a form refers to.
// Lookups return nil for something the copy does not know.
type RBACDirectory interface {
	TenantReader
	RoleByID(ctx context.Context, id string) (*RoleRef, error)
	RoleByKey(ctx context.Context, key string) (*RoleRef, error)
	PermissionByID(ctx context.Context, id string) (*PermissionRef, error)
	PermissionByKey(ctx context.Context, key string) (*PermissionRef, error)
	// Member returns the user and, when they belong to the organization,
	// the roles they hold there and their direct grants; nil for a user the
	// copy does not know.
	Member(ctx context.Context, userID, orgCode string) (*MemberInfo, error)
	// MemberOrgs returns the codes of the organizations the user belongs to.
	MemberOrgs(ctx context.Context, userID string) ([]string, error)
	// Roles and Permissions list everything the copy knows.
	Roles(ctx context.Context) ([]RoleRef, error)
	Permissions(ctx context.Context) ([]PermissionRef, error)
}

// MemberInfo is a user and their membership of one organization.
type MemberInfo struct {
	UserID     string
	Email      string
	IsMember   bool
	RoleIDs    []string // roles held in the organization
	DirectKeys []string // permissions granted directly in the organization
}

// EditInput is an RBAC edit as a form names it: ids from the directory,
// and the new key, name and description of a create or rename.
type EditInput struct {
	Kind         EditKind
	RoleID       string
	PermissionID string
	UserID       string
	OrgCode      string
	Key          string
	Name         string
	Description  string
}

// EditPreview is a planned edit with what the confirm form needs.
type EditPreview struct {
	*Plan
	// ConfirmWord, when set, is what the admin types to confirm: the key
	// (or organization) the edit takes away.
	ConfirmWord string
}

// maxKeyLen bounds a new role or permission key.
const maxKeyLen = 100

// checkKey validates a new key: 1–100 characters, no spaces or control
// characters.
func checkKey(what, key string) error {
	if key == "" {
		return apperr.E(apperr.Invalid, fmt.Sprintf("The %s key is required.", what))
	}
	if len(key) > maxKeyLen {
		return apperr.E(apperr.Invalid, fmt.Sprintf("The %s key is longer than %d characters.", what, maxKeyLen))
	}
	if strings.ContainsFunc(key, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) {
		return apperr.E(apperr.Invalid, fmt.Sprintf("The %s key cannot contain spaces.", what))
	}
	return nil
}

// resolveEdit turns in into an Edit, checking that everything it names
// exists and that it would change something. Errors are *apperr.Error
// (NotFound, Invalid, Conflict).
func resolveEdit(ctx context.Context, dir RBACDirectory, adminKey string, in EditInput) (Edit, error) {
	e := Edit{Kind: in.Kind, NewKey: strings.TrimSpace(in.Key), NewName: strings.TrimSpace(in.Name),
		Description: strings.TrimSpace(in.Description), OrgCode: strings.TrimSpace(in.OrgCode)}
	fail := func(err error) (Edit, error) { return Edit{}, err }
	internal := func(err error) (Edit, error) { return Edit{}, errInternal(err) }

	var rolePerms []string
	if needsRole(in.Kind) {
		r, err := dir.RoleByID(ctx, in.RoleID)
		if err != nil {
			return internal(err)
		}
		if r == nil {
			return fail(apperr.E(apperr.NotFound, "Role not found. The directory may not have synced it yet."))
		}
		e.Role = *r
		if rolePerms, err = dir.RolePermissionKeys(ctx, r.ID); err != nil {
			return internal(err)
		}
	}
	if needsPermission(in.Kind) {
		p, err := dir.PermissionByID(ctx, in.PermissionID)
		if err != nil {
			return internal(err)
		}
		if p == nil {
			return fail(apperr.E(apperr.NotFound, "Permission not found. The directory may not have synced it yet."))
		}
		e.Permission = *p
	}
	var member *MemberInfo
	if e.isMemberEdit() {
		m, err := dir.Member(ctx, in.UserID, e.OrgCode)
		if err != nil {
			return internal(err)
		}
		if m == nil {
			return fail(apperr.E(apperr.NotFound, "User not found."))
		}
		if !m.IsMember {
			return fail(apperr.E(apperr.Invalid, fmt.Sprintf("%s is not a member of %s.", m.Email, e.OrgCode)))
		}
		member, e.UserID, e.UserEmail = m, m.UserID, m.Email
	}
	invalid := func(format string, args ...any) (Edit, error) {
		return fail(apperr.E(apperr.Invalid, fmt.Sprintf(format, args...)))
	}

	switch in.Kind {
	case EditRoleAddPermission:
		if slices.Contains(rolePerms, e.Permission.Key) {
			return invalid("Role %s already grants %s.", e.Role.Key, e.Permission.Key)
		}
	case EditRoleRemovePermission:
		if !slices.Contains(rolePerms, e.Permission.Key) {
			return invalid("Role %s does not grant %s.", e.Role.Key, e.Permission.Key)
		}
	case EditRoleCreate, EditRoleRename:
		if e.NewName == "" {
			e.NewName = e.NewKey
		}
		if err := checkKey("role", e.NewKey); err != nil {
			return fail(err)
		}
		if in.Kind == EditRoleRename && e.NewKey == e.Role.Key && e.NewName == e.Role.Name && e.Description == "" {
			return invalid("Nothing to change: the role already has this key and name.")
		}
		taken, err := dir.RoleByKey(ctx, e.NewKey)
		if err != nil {
			return internal(err)
		}
		if taken != nil && taken.ID != e.Role.ID {
			return fail(apperr.E(apperr.Conflict, fmt.Sprintf("A role with key %s already exists.", e.NewKey)))
		}
	case EditRoleDelete:
	case EditMemberAddRole:
		if slices.Contains(member.RoleIDs, e.Role.ID) {
			return invalid("%s already has role %s in %s.", e.UserEmail, e.Role.Key, e.OrgCode)
		}
	case EditMemberRemoveRole:
		if !slices.Contains(member.RoleIDs, e.Role.ID) {
			return invalid("%s does not have role %s in %s.", e.UserEmail, e.Role.Key, e.OrgCode)
		}
	case EditMemberGrantPermission:
		if slices.Contains(member.DirectKeys, e.Permission.Key) {
			return invalid("%s already has %s directly in %s.", e.UserEmail, e.Permission.Key, e.OrgCode)
		}
	case EditMemberRemovePermission:
		if !slices.Contains(member.DirectKeys, e.Permission.Key) {
			return invalid("%s has no direct grant of %s in %s (a permission held through a role goes with the role).",
				e.UserEmail, e.Permission.Key, e.OrgCode)
		}
	case EditMemberRemove:
	case EditPermissionCreate, EditPermissionRename:
		if e.NewName == "" {
			e.NewName = e.NewKey
		}
		if err := checkKey("permission", e.NewKey); err != nil {
			return fail(err)
		}
		if in.Kind == EditPermissionRename {
			if e.Permission.Key == adminKey && e.NewKey != adminKey {
				return fail(apperr.E(apperr.Conflict,
					"This permission grants access to this admin panel; permsync will not change its key."))
			}
			if e.NewKey == e.Permission.Key && e.NewName == e.Permission.Name {
				return invalid("Nothing to change: the permission already has this key and name.")
			}
		}
		taken, err := dir.PermissionByKey(ctx, e.NewKey)
		if err != nil {
			return internal(err)
		}
		if taken != nil && taken.ID != e.Permission.ID {
			return fail(apperr.E(apperr.Conflict, fmt.Sprintf("A permission with key %s already exists.", e.NewKey)))
		}
	default:
		return invalid("Unknown change %q.", in.Kind)
	}
	return e, nil
}

func needsRole(k EditKind) bool {
	switch k {
	case EditRoleAddPermission, EditRoleRemovePermission, EditRoleRename, EditRoleDelete, EditMemberAddRole,
		EditMemberRemoveRole:
		return true
	}
	return false
}

func needsPermission(k EditKind) bool {
	switch k {
	case EditRoleAddPermission, EditRoleRemovePermission, EditMemberGrantPermission, EditMemberRemovePermission,
		EditPermissionRename:
		return true
	}
	return false
}

// confirmWord is what the admin types to confirm an edit that takes
// something away; "" for one that does not.
func (e Edit) confirmWord() string {
	switch e.Kind {
	case EditRoleRemovePermission, EditMemberRemovePermission:
		return e.Permission.Key
	case EditRoleDelete, EditMemberRemoveRole:
		return e.Role.Key
	case EditMemberRemove:
		return e.OrgCode
	case EditPermissionRename:
		if e.NewKey != e.Permission.Key {
			return e.Permission.Key
		}
	}
	return ""
}

// planEdit resolves and plans in for actor a, refusing an edit that would
// take the admin permission from the actor themself.
func planEdit(ctx context.Context, dir RBACDirectory, adminKey string, a Actor, in EditInput) (*EditPreview, error) {
	e, err := resolveEdit(ctx, dir, adminKey, in)
	if err != nil {
		return nil, err
	}
	p, err := PlanEdit(ctx, dir, e)
	if err != nil {
		return nil, errInternal(err)
	}
	for _, l := range p.Losers() {
		if l.UserID == a.UserID && slices.Contains(l.Lost, adminKey) {
			return nil, apperr.E(apperr.Conflict, fmt.Sprintf(
				"This would take %s from you in %s and lock you out of this admin panel; ask another admin to do it.",
				adminKey, l.OrgCode))
		}
	}
	return &EditPreview{Plan: p, ConfirmWord: e.confirmWord()}, nil
}
