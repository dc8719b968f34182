package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"permsync/fanout"
	"permsync/kinde"
	"permsync/store"
)

// EditChanges returns the Kinde call of confirmed RBAC edits, for the job
// engine: register it with fanout.Engine.HandleKindeChanges(FanoutRBACEdit,
// ...) before the engine starts.
func (s *Service) EditChanges() fanout.KindeChange { return editChange{s: s} }

// editChange makes a confirmed edit at Kinde once its undo window has
// passed, and records what that means locally.
type editChange struct{ s *Service }

var _ fanout.KindeChange = editChange{}

// editReader reads an edit record by its fan-out: the database, or a
// transaction.
type editReader interface {
	RBACEditByFanout(ctx context.Context, fanoutID string) (*store.RBACEdit, error)
}

// load returns the edit record of the fan-out and its decoded edit.
func (c editChange) load(ctx context.Context, q editReader, f *store.Fanout) (*store.RBACEdit, Edit, error) {
	rec, err := q.RBACEditByFanout(ctx, f.ID)
	if err != nil {
		return nil, Edit{}, fmt.Errorf("edit of fan-out %s: %w", f.ID, err)
	}
	var e Edit
	if err := json.Unmarshal([]byte(rec.Payload), &e); err != nil {
		return nil, Edit{}, fmt.Errorf("edit %s: payload: %w", rec.ID, err)
	}
	return rec, e, nil
}

// ApplyAtKinde makes the edit with the Management API. Each call is safe to
// repeat: a removal of what is gone, or an add of what is there (an earlier
// attempt whose answer was lost), counts as made.
func (c editChange) ApplyAtKinde(ctx context.Context, f *store.Fanout) (string, error) {
	rec, e, err := c.load(ctx, c.s.db, f)
	if err != nil {
		return "", err
	}
	if ok, err := c.s.db.RBACEditApplying(ctx, rec.ID); err != nil {
		return "", err
	} else if !ok {
		return "", fmt.Errorf("edit %s is %s; not calling Kinde", rec.ID, rec.State)
	}
	k := c.s.kinde
	gone := func(err error) bool {
		return errors.Is(err, kinde.ErrNotAssigned) || errors.Is(err, kinde.ErrUnknownID)
	}
	there := func(err error) bool { return errors.Is(err, kinde.ErrExists) }
	switch e.Kind {
	case EditRoleAddPermission:
		if err := k.AddRolePermission(ctx, e.Role.ID, e.Permission.ID); err != nil && !there(err) {
			return "", err
		}
		return fmt.Sprintf("Kinde's role %s grants %s.", e.Role.Key, e.Permission.Key), nil
	case EditRoleRemovePermission:
		if err := k.RemoveRolePermission(ctx, e.Role.ID, e.Permission.ID); err != nil && !gone(err) {
			return "", err
		}
		return fmt.Sprintf("Kinde's role %s no longer grants %s.", e.Role.Key, e.Permission.Key), nil
	case EditRoleCreate:
		id, err := k.CreateRole(ctx, kinde.RoleInput{Key: e.NewKey, Name: e.NewName, Description: e.Description})
		if err != nil && !there(err) {
			return "", err
		}
		if id == "" {
			if id, err = c.findRole(ctx, e.NewKey); err != nil {
				return "", err
			}
		}
		e.Role = RoleRef{ID: id, Key: e.NewKey, Name: e.NewName}
		if err := c.remember(ctx, rec.ID, e); err != nil {
			return "", err
		}
		return fmt.Sprintf("Kinde created role %s (%s).", e.NewKey, id), nil
	case EditRoleRename:
		if err := k.UpdateRole(ctx, e.Role.ID, kinde.RoleInput{Key: e.NewKey, Name: e.NewName,
			Description: e.Description}); err != nil {
			return "", err
		}
		return fmt.Sprintf("Kinde's role %s is now %s (%q).", e.Role.Key, e.NewKey, e.NewName), nil
	case EditRoleDelete:
		if err := k.DeleteRole(ctx, e.Role.ID); err != nil && !gone(err) {
			return "", err
		}
		return fmt.Sprintf("Kinde deleted role %s.", e.Role.Key), nil
	case EditMemberAddRole:
		if err := k.AddOrganizationUserRole(ctx, e.OrgCode, e.UserID, e.Role.ID); err != nil && !there(err) {
			return "", err
		}
		return fmt.Sprintf("Kinde gave %s role %s in %s.", e.UserEmail, e.Role.Key, e.OrgCode), nil
	case EditMemberRemoveRole:
		if err := k.RemoveOrganizationUserRole(ctx, e.OrgCode, e.UserID, e.Role.ID); err != nil && !gone(err) {
			return "", err
		}
		return fmt.Sprintf("Kinde took role %s from %s in %s.", e.Role.Key, e.UserEmail, e.OrgCode), nil
	case EditMemberGrantPermission:
		if err := k.AddOrganizationUserPermission(ctx, e.OrgCode, e.UserID, e.Permission.ID); err != nil && !there(err) {
			return "", err
		}
		return fmt.Sprintf("Kinde granted %s %s in %s.", e.UserEmail, e.Permission.Key, e.OrgCode), nil
	case EditMemberRemovePermission:
		if err := k.RemoveOrganizationUserPermission(ctx, e.OrgCode, e.UserID, e.Permission.ID); err != nil && !gone(err) {
			return "", err
		}
		return fmt.Sprintf("Kinde removed %s's direct grant of %s in %s.", e.UserEmail, e.Permission.Key, e.OrgCode), nil
	case EditMemberRemove:
		if err := k.RemoveOrganizationUser(ctx, e.OrgCode, e.UserID); err != nil && !gone(err) {
			return "", err
		}
		return fmt.Sprintf("Kinde removed %s from %s.", e.UserEmail, e.OrgCode), nil
	case EditPermissionCreate:
		id, err := k.CreatePermission(ctx, kinde.PermissionInput{Key: e.NewKey, Name: e.NewName,
			Description: e.Description})
		if err != nil && !there(err) {
			return "", err
		}
		if id == "" {
			if id, err = c.findPermission(ctx, e.NewKey); err != nil {
				return "", err
			}
		}
		e.Permission = PermissionRef{ID: id, Key: e.NewKey, Name: e.NewName}
		if err := c.remember(ctx, rec.ID, e); err != nil {
			return "", err
		}
		return fmt.Sprintf("Kinde created permission %s (%s).", e.NewKey, id), nil
	case EditPermissionRename:
		if err := k.UpdatePermission(ctx, e.Permission.ID, kinde.PermissionInput{Key: e.NewKey, Name: e.NewName,
			Description: e.Description}); err != nil {
			return "", err
		}
		return fmt.Sprintf("Kinde's permission %s is now %s (%q).", e.Permission.Key, e.NewKey, e.NewName), nil
	}
	return "", fmt.Errorf("edit %s: unknown kind %q", rec.ID, e.Kind)
}

// remember records the id Kinde gave a created role or permission.
func (c editChange) remember(ctx context.Context, id string, e Edit) error {
	b, err := json.Marshal(e)
	if err != nil {
		return err
	}
	return c.s.db.SetRBACEditPayload(ctx, id, string(b))
}

func (c editChange) findRole(ctx context.Context, key string) (string, error) {
	rs, err := c.s.kinde.AllRoles(ctx)
	if err != nil {
		return "", err
	}
	for _, r := range rs {
		if r.Key == key {
			return r.ID, nil
		}
	}
	return "", fmt.Errorf("kinde created role %s but does not list it", key)
}

func (c editChange) findPermission(ctx context.Context, key string) (string, error) {
	ps, err := c.s.kinde.AllPermissions(ctx)
	if err != nil {
		return "", err
	}
	for _, p := range ps {
		if p.Key == key {
			return p.ID, nil
		}
	}
	return "", fmt.Errorf("kinde created permission %s but does not list it", key)
}

// KindeRefused records why Kinde refused on the edit; its page says it.
func (c editChange) KindeRefused(ctx context.Context, f *store.Fanout, reason string, final bool) {
	rec, err := c.s.db.RBACEditByFanout(ctx, f.ID)
	if err == nil {
		_, err = c.s.db.RBACEditRefused(ctx, rec.ID, reason, final)
	}
	if err != nil {
		c.s.log.WarnContext(ctx, "admin: could not record Kinde's refusal of an edit", "fanout_id", f.ID, "error", err)
	}
}

// KindeDoneTx records the edit as applied and makes the same change in the
// directory, inside the transaction that completes the Kinde call. A webhook
// Kinde sends for it later then finds the directory already current.
func (c editChange) KindeDoneTx(ctx context.Context, tx *store.Tx, f *store.Fanout, outcome string, at time.Time) error {
	rec, e, err := c.load(ctx, tx, f)
	if err != nil {
		return err
	}
	if _, err := tx.RBACEditApplied(ctx, rec.ID, outcome, at); err != nil {
		return err
	}
	if err := applyToDirectory(ctx, tx, e); err != nil {
		return err
	}
	if err := tx.DirTouch(ctx, at); err != nil {
		return err
	}
	return tx.AddAudit(ctx, store.AuditEntry{ActorID: rec.ActorID, Actor: rec.ActorEmail, Action: "rbac." + rec.Kind,
		Target: editTarget(e), Outcome: store.AuditOK,
		Detail: fmt.Sprintf("%s %d user(s) queued for a claims refresh (edit %s, fan-out %s).", outcome, f.Total,
			rec.ID, f.ID)})
}

// applyToDirectory makes the edit in the local copy of the tenant.
func applyToDirectory(ctx context.Context, tx *store.Tx, e Edit) error {
	run := func() (int64, error) {
		st, err := tx.DirSyncState(ctx)
		if err != nil {
			return 0, err
		}
		return st.Run, nil
	}
	switch e.Kind {
	case EditRoleAddPermission:
		return tx.DirGrantRolePermission(ctx, e.Role.ID, e.Permission.ID)
	case EditRoleRemovePermission:
		return tx.DirRevokeRolePermission(ctx, e.Role.ID, e.Permission.ID)
	case EditRoleCreate, EditRoleRename:
		r, err := run()
		if err != nil {
			return err
		}
		return tx.DirUpsertRoles(ctx, []store.DirRole{{ID: e.Role.ID, Key: e.NewKey, Name: e.NewName,
			Description: e.Description}}, r)
	case EditRoleDelete:
		return tx.DirDeleteRole(ctx, e.Role.ID)
	case EditMemberAddRole:
		return tx.DirGrantUserRole(ctx, e.OrgCode, e.UserID, e.Role.ID)
	case EditMemberRemoveRole:
		return tx.DirRevokeUserRole(ctx, e.OrgCode, e.UserID, e.Role.ID)
	case EditMemberGrantPermission:
		return tx.DirGrantUserPermission(ctx, e.OrgCode, e.UserID, e.Permission.ID)
	case EditMemberRemovePermission:
		return tx.DirRevokeUserPermission(ctx, e.OrgCode, e.UserID, e.Permission.ID)
	case EditMemberRemove:
		return tx.DirSetMembership(ctx, e.OrgCode, e.UserID, nil)
	case EditPermissionCreate, EditPermissionRename:
		r, err := run()
		if err != nil {
			return err
		}
		p := store.DirPermission{ID: e.Permission.ID, Key: e.NewKey, Name: e.NewName, Description: e.Description}
		if err := tx.DirUpsertPermissions(ctx, []store.DirPermission{p}, r); err != nil {
			return err
		}
		return tx.UpsertPermissionKeys(ctx, []store.PermissionKey{{ID: p.ID, Key: p.Key, Name: p.Name,
			Description: p.Description}})
	}
	return fmt.Errorf("unknown edit kind %q", e.Kind)
}
