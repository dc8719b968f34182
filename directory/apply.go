package directory

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"permsync/kinde"
	"permsync/store"
)

// Update is what one Kinde event changes in the directory, prepared with
// the Kinde reads it needs (a role's permissions, a membership the event
// does not spell out, a role or permission the directory has not met yet).
// ApplyTx writes it inside the transaction that records the event.
type Update struct {
	// Summary says what the update does, for logs and the webhook page.
	Summary string
	apply   func(ctx context.Context, tx *store.Tx) (*Change, error)
}

// ApplyTx writes the update and returns what it took away. A nil Update
// does nothing.
func (u *Update) ApplyTx(ctx context.Context, tx *store.Tx) (*Change, error) {
	if u == nil || u.apply == nil {
		return &Change{}, nil
	}
	c, err := u.apply(ctx, tx)
	if err != nil {
		return nil, err
	}
	if err := tx.DirTouch(ctx, time.Now()); err != nil {
		return nil, err
	}
	c.Source = "webhook"
	return c, nil
}

// Prepare turns a Kinde event into an Update. Events the directory does
// not track give a nil Update. Anything the event leaves unsaid, or refers
// to without the directory knowing it, is re-read from Kinde (a targeted
// read, a few calls), never guessed.
func (d *Directory) Prepare(ctx context.Context, kc Kinde, ev *kinde.Event) (*Update, error) {
	switch ev.Type {
	case kinde.EventPermissionCreated, kinde.EventPermissionUpdated:
		p, err := ev.Permission()
		if err != nil {
			return nil, err
		}
		if p.Key == "" {
			return nil, fmt.Errorf("%s without a key", ev.Type)
		}
		perm := store.DirPermission{ID: p.ID, Key: p.Key, Name: p.Name, Description: p.Description}
		return &Update{Summary: "recorded permission " + p.Key, apply: func(ctx context.Context, tx *store.Tx) (*Change, error) {
			before, err := tx.DirEffective(ctx, store.ScopePermissionHolders, p.ID)
			if err != nil {
				return nil, err
			}
			if err := upsertPermissionsTx(ctx, tx, perm); err != nil {
				return nil, err
			}
			after, err := tx.DirEffective(ctx, store.ScopePermissionHolders, p.ID)
			if err != nil {
				return nil, err
			}
			// A new key: tokens carrying the old one must lose it.
			return &Change{Losses: diffGrants(before, after, "permission renamed to "+p.Key)}, nil
		}}, nil

	case kinde.EventPermissionDeleted:
		p, err := ev.Permission()
		if err != nil {
			return nil, err
		}
		return &Update{Summary: "removed permission " + p.ID, apply: func(ctx context.Context, tx *store.Tx) (*Change, error) {
			rm, err := deletePermissionTx(ctx, tx, p.ID)
			if err != nil || rm == nil {
				return &Change{}, err
			}
			return &Change{DeletedPermissions: []Removed{*rm}}, nil
		}}, nil

	case kinde.EventRoleCreated, kinde.EventRoleUpdated:
		r, err := ev.Role()
		if err != nil {
			return nil, err
		}
		perms, err := kc.AllRolePermissions(ctx, r.ID)
		if kinde.IsNotFound(err) {
			return d.roleDeleted(r.ID), nil // deleted since
		}
		if err != nil {
			return nil, err
		}
		role := store.DirRole{ID: r.ID, Key: r.Key, Name: r.Name, Description: r.Description, IsDefault: r.IsDefaultRole}
		return &Update{Summary: "recorded role " + r.Key + " and its permissions", apply: func(ctx context.Context, tx *store.Tx) (*Change, error) {
			if role.Key == "" { // Kinde sent only the id: keep what the directory has
				known, err := tx.DirRoleByID(ctx, r.ID)
				if errors.Is(err, store.ErrNotFound) {
					return nil, fmt.Errorf("%s for role %s without a key, unknown to the directory", ev.Type, r.ID)
				}
				if err != nil {
					return nil, err
				}
				role = *known
			}
			if err := upsertRolesTx(ctx, tx, role); err != nil {
				return nil, err
			}
			if err := upsertPermissionsTx(ctx, tx, toDirPermissions(perms)...); err != nil {
				return nil, err
			}
			ids := make([]string, len(perms))
			for i, p := range perms {
				ids[i] = p.ID
			}
			lost, err := setRolePermissionsTx(ctx, tx, role.ID, role.Key, ids)
			return &Change{Losses: lost}, err
		}}, nil

	case kinde.EventRoleDeleted:
		r, err := ev.Role()
		if err != nil {
			return nil, err
		}
		return d.roleDeleted(r.ID), nil

	case kinde.EventUserCreated, kinde.EventUserUpdated:
		u, err := ev.User()
		if err != nil {
			return nil, err
		}
		return d.prepareUser(ctx, kc, u)

	case kinde.EventUserDeleted:
		u, err := ev.User()
		if err != nil {
			return nil, err
		}
		return &Update{Summary: "removed user " + u.ID, apply: func(ctx context.Context, tx *store.Tx) (*Change, error) {
			before, err := tx.DirEffective(ctx, store.ScopeUser, u.ID)
			if err != nil {
				return nil, err
			}
			if err := tx.DirDeleteUser(ctx, u.ID); err != nil {
				return nil, err
			}
			return &Change{Losses: diffGrants(before, nil, "user deleted at Kinde")}, nil
		}}, nil

	case "organization.created", kinde.EventOrganizationUpdated:
		o, err := ev.Organization()
		if err != nil {
			return nil, err
		}
		org := store.DirOrganization{Code: o.Code, Name: o.Name}
		return &Update{Summary: "recorded organization " + o.Code, apply: func(ctx context.Context, tx *store.Tx) (*Change, error) {
			st, err := tx.DirSyncState(ctx)
			if err != nil {
				return nil, err
			}
			return &Change{}, tx.DirUpsertOrganizations(ctx, []store.DirOrganization{org}, st.Run)
		}}, nil

	case kinde.EventOrganizationDeleted:
		o, err := ev.Organization()
		if err != nil {
			return nil, err
		}
		return &Update{Summary: "removed organization " + o.Code, apply: func(ctx context.Context, tx *store.Tx) (*Change, error) {
			before, err := tx.DirEffective(ctx, store.ScopeOrganization, o.Code)
			if err != nil {
				return nil, err
			}
			if err := tx.DirDeleteOrganization(ctx, o.Code); err != nil {
				return nil, err
			}
			return &Change{Losses: diffGrants(before, nil, "organization "+o.Code+" was deleted")}, nil
		}}, nil
	}
	return nil, nil
}

func (d *Directory) roleDeleted(id string) *Update {
	return &Update{Summary: "removed role " + id, apply: func(ctx context.Context, tx *store.Tx) (*Change, error) {
		rl, err := tx.DirRoleByID(ctx, id)
		if errors.Is(err, store.ErrNotFound) {
			return &Change{}, nil
		}
		if err != nil {
			return nil, err
		}
		lost, err := deleteRoleTx(ctx, tx, *rl)
		return &Change{Losses: lost}, err
	}}
}

// upsertPermissionsTx records permissions met outside a sync run; they
// count as seen by the current run, so its sweep keeps them.
func upsertPermissionsTx(ctx context.Context, tx *store.Tx, perms ...store.DirPermission) error {
	st, err := tx.DirSyncState(ctx)
	if err != nil {
		return err
	}
	return tx.DirUpsertPermissions(ctx, perms, st.Run)
}

func upsertRolesTx(ctx context.Context, tx *store.Tx, roles ...store.DirRole) error {
	st, err := tx.DirSyncState(ctx)
	if err != nil {
		return err
	}
	return tx.DirUpsertRoles(ctx, roles, st.Run)
}

// membershipRead is one organization of a user.* event, resolved to ids.
type membershipRead struct {
	org     string
	roleIDs []string
	permIDs []string
}

// prepareUser resolves a user.created/updated event: the user's profile and,
// per organization, their roles and direct permissions. An organization
// whose roles or permissions the event leaves null, or that names a role or
// permission the directory does not know, is re-read from Kinde.
func (d *Directory) prepareUser(ctx context.Context, kc Kinde, u *kinde.EventUser) (*Update, error) {
	known := func(ids map[string]string, ref kinde.EventRef) (string, bool) {
		if ref.ID != "" {
			_, ok := ids[ref.ID]
			return ref.ID, ok
		}
		for id, key := range ids {
			if key == ref.Key {
				return id, true
			}
		}
		return "", false
	}
	roles, err := d.db.DirRoles(ctx)
	if err != nil {
		return nil, err
	}
	roleIDs := map[string]string{}
	for _, r := range roles {
		roleIDs[r.ID] = r.Key
	}
	perms, err := d.db.DirPermissions(ctx)
	if err != nil {
		return nil, err
	}
	permIDs := map[string]string{}
	for _, p := range perms {
		permIDs[p.ID] = p.Key
	}

	var reads []membershipRead
	var newRoles []store.DirRole
	rolePerms := map[string][]kinde.Permission{}
	var newPerms []store.DirPermission
	for _, o := range u.Organizations {
		m := membershipRead{org: o.Code}
		complete := o.Roles != nil && o.Permissions != nil
		for _, ref := range o.Roles {
			id, ok := known(roleIDs, ref)
			if !ok {
				complete = false
				break
			}
			m.roleIDs = append(m.roleIDs, id)
		}
		for _, ref := range o.Permissions {
			id, ok := known(permIDs, ref)
			if !ok {
				complete = false
				break
			}
			m.permIDs = append(m.permIDs, id)
		}
		if complete {
			reads = append(reads, m)
			continue
		}
		// Targeted re-read of this membership.
		m = membershipRead{org: o.Code}
		rs, err := kc.OrganizationUserRoles(ctx, o.Code, u.ID)
		if kinde.IsNotFound(err) {
			continue // no longer a member: the membership is dropped below
		}
		if err != nil {
			return nil, err
		}
		for _, r := range rs {
			m.roleIDs = append(m.roleIDs, r.ID)
			if _, ok := roleIDs[r.ID]; !ok {
				ps, err := kc.AllRolePermissions(ctx, r.ID)
				if err != nil {
					return nil, err
				}
				roleIDs[r.ID] = r.Key
				newRoles = append(newRoles, store.DirRole{ID: r.ID, Key: r.Key, Name: r.Name})
				rolePerms[r.ID] = ps
			}
		}
		ps, err := kc.OrganizationUserPermissions(ctx, o.Code, u.ID)
		if err != nil && !kinde.IsNotFound(err) {
			return nil, err
		}
		for _, p := range ps {
			if _, ok := permIDs[p.ID]; !ok {
				permIDs[p.ID] = p.Key
				newPerms = append(newPerms, store.DirPermission{ID: p.ID, Key: p.Key, Name: p.Name, Description: p.Description})
			}
			if len(p.Roles) == 0 {
				m.permIDs = append(m.permIDs, p.ID)
			}
		}
		reads = append(reads, m)
	}
	user := store.DirUser{ID: u.ID, Email: u.Email, Name: joinName(u.FirstName, u.LastName), Suspended: u.IsSuspended}
	listed := u.Organizations != nil
	return &Update{Summary: "recorded user " + u.ID + " and their memberships", apply: func(ctx context.Context, tx *store.Tx) (*Change, error) {
		if err := upsertPermissionsTx(ctx, tx, newPerms...); err != nil {
			return nil, err
		}
		if err := upsertRolesTx(ctx, tx, newRoles...); err != nil {
			return nil, err
		}
		for id, ps := range rolePerms {
			ids := make([]string, len(ps))
			for i, p := range ps {
				ids[i] = p.ID
			}
			if err := upsertPermissionsTx(ctx, tx, toDirPermissions(ps)...); err != nil {
				return nil, err
			}
			if err := tx.DirSetRolePermissions(ctx, id, ids); err != nil {
				return nil, err
			}
		}
		if err := tx.DirUpsertUsers(ctx, []store.DirUser{user}); err != nil {
			return nil, err
		}
		before, err := tx.DirEffective(ctx, store.ScopeUser, u.ID)
		if err != nil {
			return nil, err
		}
		if listed {
			current, err := tx.DirUserOrganizations(ctx, u.ID)
			if err != nil {
				return nil, err
			}
			for _, org := range current {
				if !slices.ContainsFunc(reads, func(m membershipRead) bool { return m.org == org }) {
					if err := tx.DirSetMembership(ctx, org, u.ID, nil); err != nil {
						return nil, err
					}
				}
			}
		}
		st, err := tx.DirSyncState(ctx)
		if err != nil {
			return nil, err
		}
		for _, m := range reads {
			// An organization met here first gets a row (its name comes with
			// the next sync).
			if err := tx.DirEnsureOrganization(ctx, m.org, st.Run); err != nil {
				return nil, err
			}
			if err := tx.DirSetMembership(ctx, m.org, u.ID, &store.DirMember{RoleIDs: m.roleIDs, PermissionIDs: m.permIDs}); err != nil {
				return nil, err
			}
		}
		after, err := tx.DirEffective(ctx, store.ScopeUser, u.ID)
		if err != nil {
			return nil, err
		}
		return &Change{Losses: diffGrants(before, after, "Kinde no longer grants it to the user")}, nil
	}}, nil
}

func joinName(first, last string) string {
	switch {
	case first == "":
		return last
	case last == "":
		return first
	}
	return first + " " + last
}
