package admin

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"permsync/apperr"
	"permsync/events"
	"permsync/fanout"
	"permsync/kinde"
	"permsync/store"
)

// DefaultUndoWindow is how long a deletion waits before Kinde is called,
// while the fan-out page offers Undo (PERMSYNC_UNDO_WINDOW).
const DefaultUndoWindow = 15 * time.Second

// HolderSource says who holds a permission key now, from a local copy of the
// tenant (the directory): it is asked inside the delete click, which must
// not wait for Kinde. Without one, holders are resolved at Kinde.
type HolderSource interface {
	// HolderIDs returns the ids of the users holding key by any path.
	HolderIDs(ctx context.Context, key string) ([]string, error)
}

// DeleteResult is what DeletePermission did.
type DeleteResult struct {
	FanoutID      string
	PermissionID  string
	PermissionKey string
	Affected      int       // users to refresh once Kinde deleted it
	KindeDueAt    time.Time // when the Kinde delete runs; until then Undo cancels it
}

// DeletePermission deletes a permission and makes every affected user lose
// it. confirmKey must equal the permission's key.
//
// The click itself does not call Kinde when a HolderSource is set: in one
// transaction it records the fan-out (phase waiting) with one item per
// holder (from the HolderSource, plus users whose live session carries the
// key), the denial of the key to everyone (unsettled: every session is
// refused it from the next request on), the durable job that deletes it at
// Kinde once the undo window has passed, and the audit entry. Affected
// users' pages are told at once (claims-changed, stage tombstoned). The
// job (fanout.ScheduleKindeCallTx) deletes it at Kinde, settles the denial and
// starts the refresh_claims jobs; UndoDeletion cancels it until then.
//
// Errors (apperr codes): Forbidden; NotFound (unknown id); Invalid (wrong
// confirmation); Conflict (the admin permission itself, or a deletion of it
// already under way); Unavailable (holders could not be resolved; nothing
// was changed).
func (s *Service) DeletePermission(ctx context.Context, a Actor, id, confirmKey string) (*DeleteResult, error) {
	if err := s.authorize(ctx, a); err != nil {
		return nil, err
	}
	p, err := s.permissionToDelete(ctx, id)
	if err != nil {
		return nil, err
	}
	target := p.ID + " (" + p.Key + ")"
	if p.Key == s.adminKey {
		s.audit(ctx, a, "permission.delete", target, store.AuditDenied, "Refused: it is the admin permission.")
		return nil, apperr.E(apperr.Conflict, "This permission grants access to this admin panel; permsync will not delete it.")
	}
	if strings.TrimSpace(confirmKey) != p.Key {
		return nil, apperr.E(apperr.Invalid, fmt.Sprintf("Type the permission key %q exactly to confirm.", p.Key))
	}
	if f, err := s.deletionUnderWay(ctx, p.Key); err != nil {
		return nil, errInternal(err)
	} else if f != "" {
		return nil, apperr.E(apperr.Conflict, fmt.Sprintf("A deletion of %s is already under way (fan-out %s).", p.Key, f))
	}

	// Holders come from the directory: until its first full sync is done it
	// does not know them all, and a deletion would miss some.
	if _, st, err := s.directoryStatus(ctx); err != nil {
		return nil, err
	} else if !st.Synced {
		return nil, apperr.E(apperr.Unavailable, "The directory is still on its first sync ("+st.Summary+
			"); permsync cannot yet say who holds this permission. Try again when it has finished.")
	}

	affected, err := s.holdersOf(ctx, p)
	if err != nil {
		s.audit(ctx, a, "permission.delete", target, store.AuditFailed, "Could not resolve the affected users; nothing was deleted.")
		return nil, err
	}

	now := time.Now()
	due := now.Add(s.undoWindow)
	f := &store.Fanout{
		ID: fanout.NewID(), Kind: FanoutPermissionDeleted, ActorID: a.UserID, ActorEmail: a.Email,
		PermissionID: p.ID, PermissionKey: p.Key, Reason: "Permission " + p.Key + " was deleted.", CreatedAt: now,
		Phase: store.FanoutPhaseWaiting, KindeDueAt: due,
	}
	items := make([]store.FanoutItem, len(affected))
	for i, u := range affected {
		items[i] = store.FanoutItem{UserID: u.UserID, Email: u.Email, Reasons: fanout.FormatReasons(u.Reasons)}
	}
	// Unsettled until Kinde deletes it: refused to every session meanwhile.
	deny := store.Denial{PermissionKey: p.Key, PermissionID: p.ID, CreatedAt: now, Reason: "deleted by " + a.name(),
		FanoutID: f.ID}
	err = s.db.InTx(ctx, func(tx *store.Tx) error {
		if err := tx.CreateFanout(ctx, f, items); err != nil {
			return err
		}
		if _, err := tx.AddDenial(ctx, deny); err != nil {
			return err
		}
		if err := s.fanouts.ScheduleKindeCallTx(ctx, tx, f.ID, due); err != nil {
			return err
		}
		return tx.AddAudit(ctx, store.AuditEntry{
			ActorID: a.UserID, Actor: a.name(), Action: "permission.delete", Target: target, Outcome: store.AuditOK,
			Detail: fmt.Sprintf("Refused to every session at once; Kinde delete due %s (undo until then); %d user(s) to refresh (fan-out %s).",
				due.UTC().Format(time.RFC3339), len(items), f.ID),
		})
	})
	if err != nil {
		s.audit(context.WithoutCancel(ctx), a, "permission.delete", target, store.AuditFailed, "Could not record the deletion; nothing was changed.")
		return nil, errInternal(err)
	}
	s.log.InfoContext(ctx, "admin: permission deletion recorded", "permission_id", p.ID, "permission_key", p.Key,
		"actor_id", a.UserID, "affected", len(affected), "kinde_due_at", due)
	events.NotifyTombstonesChanged(s.pub) // caches first, so the pages' next request sees it
	for _, u := range affected {
		events.PublishJSON(s.pub, events.UserTopic(u.UserID), events.EventClaimsChanged, events.ClaimsChangedData{
			Stage: events.StageTombstoned, Reason: f.Reason, PermissionKey: p.Key, FanoutID: f.ID,
		})
	}
	s.publishProgress(ctx, f.ID, "", "")
	return &DeleteResult{FanoutID: f.ID, PermissionID: p.ID, PermissionKey: p.Key, Affected: len(items),
		KindeDueAt: due}, nil
}

// UndoDeletion cancels a deletion whose Kinde delete has not happened (or,
// for an RBAC edit's fan-out, the edit: UndoEdit): in
// the undo window, or while Kinde refuses it. The job will not call Kinde,
// the denial is withdrawn, and the holders' open pages are told (they get
// the permission back live). Errors: Forbidden; NotFound; Conflict when
// Kinde is deleting it now or already did.
func (s *Service) UndoDeletion(ctx context.Context, a Actor, fanoutID string) error {
	if err := s.authorize(ctx, a); err != nil {
		return err
	}
	f, err := s.db.Fanout(ctx, fanoutID)
	if err == nil && f.Kind == FanoutRBACEdit {
		// The fan-out page of an RBAC edit offers Undo too: it undoes the edit.
		rec, err := s.db.RBACEditByFanout(ctx, f.ID)
		if err != nil {
			return apperr.E(apperr.NotFound, "No change to undo here.")
		}
		return s.UndoEdit(ctx, a, rec.ID)
	}
	if errors.Is(err, store.ErrNotFound) || (err == nil && f.Kind != FanoutPermissionDeleted) {
		return apperr.E(apperr.NotFound, "No deletion to undo here.")
	}
	if err != nil {
		return errInternal(err)
	}
	target := f.PermissionID + " (" + f.PermissionKey + ")"
	var undone bool
	err = s.db.InTx(ctx, func(tx *store.Tx) error {
		var err error
		if undone, err = tx.UndoFanout(ctx, f.ID, time.Now()); err != nil || !undone {
			return err
		}
		if _, err := tx.WithdrawDenials(ctx, f.ID); err != nil {
			return err
		}
		return tx.AddAudit(ctx, store.AuditEntry{ActorID: a.UserID, Actor: a.name(), Action: "permission.delete.undo",
			Target: target, Outcome: store.AuditOK,
			Detail: "Undone before Kinde deleted it; the key is honoured again (fan-out " + f.ID + ")."})
	})
	if err != nil {
		return errInternal(err)
	}
	if !undone {
		return apperr.E(apperr.Conflict, "Too late to undo: Kinde is deleting "+f.PermissionKey+" now, or already has.")
	}
	s.log.InfoContext(ctx, "admin: permission deletion undone", "fanout_id", f.ID, "permission_key", f.PermissionKey,
		"actor_id", a.UserID)
	events.NotifyTombstonesChanged(s.pub)
	if items, err := s.db.FanoutItems(ctx, f.ID); err == nil {
		for _, it := range items {
			events.PublishJSON(s.pub, events.UserTopic(it.UserID), events.EventClaimsChanged, events.ClaimsChangedData{
				Stage: events.StageRestored, Reason: "The deletion of " + f.PermissionKey + " was undone.",
				PermissionKey: f.PermissionKey, FanoutID: f.ID,
			})
		}
	}
	s.publishProgress(ctx, f.ID, "", "")
	return nil
}

// permissionToDelete finds the permission by id, locally first (the id → key
// map kept from listings and webhooks), then in the Kinde snapshot.
func (s *Service) permissionToDelete(ctx context.Context, id string) (kinde.Permission, error) {
	if k, err := s.db.PermissionKeyByID(ctx, strings.TrimSpace(id)); err == nil {
		if !k.DeletedAt.IsZero() {
			return kinde.Permission{}, apperr.E(apperr.NotFound, "Permission not found. It has been deleted already.")
		}
		return kinde.Permission{ID: k.ID, Key: k.Key, Name: k.Name, Description: k.Description}, nil
	} else if !errors.Is(err, store.ErrNotFound) {
		return kinde.Permission{}, errInternal(err)
	}
	return s.findPermission(ctx, id)
}

// deletionUnderWay returns the fan-out of a deletion of key that Kinde has
// not made yet, if any.
func (s *Service) deletionUnderWay(ctx context.Context, key string) (string, error) {
	ds, err := s.db.LiveDenials(ctx, time.Now())
	if err != nil {
		return "", err
	}
	for _, d := range ds {
		if d.Everyone() && d.PermissionKey == key && d.SettledAt.IsZero() && d.FanoutID != "" {
			return d.FanoutID, nil
		}
	}
	return "", nil
}

// holdersOf returns the users holding p: from the HolderSource when one is
// set (with users whose live session carries the key), else from the
// directory (which adds those sessions itself).
func (s *Service) holdersOf(ctx context.Context, p kinde.Permission) ([]AffectedUser, error) {
	if s.holders == nil {
		return s.affectedUsers(ctx, p.Key)
	}
	ids, err := s.holders.HolderIDs(ctx, p.Key)
	if err != nil {
		return nil, apperr.Wrap(err, apperr.Unavailable, "Could not read who holds "+p.Key+"; nothing was deleted.")
	}
	out := make([]AffectedUser, len(ids))
	for i, id := range ids {
		out[i] = AffectedUser{UserID: kinde.NormalizeUserID(id), Reasons: []Reason{{Kind: fanout.ReasonHolder}}}
	}
	return s.addLateSessions(ctx, out, p.Key), nil
}

// addLateSessions adds users whose live session carries the key but whom
// the holders did not include (the local copy lagging, or a token older
// than a change at Kinde).
func (s *Service) addLateSessions(ctx context.Context, affected []AffectedUser, key string) []AffectedUser {
	ids, err := s.sessions.UsersWithPermission(ctx, key)
	if err != nil {
		s.log.WarnContext(ctx, "admin: could not check sessions", "permission_key", key, "error", err)
		return affected
	}
	known := make(map[string]int, len(affected))
	for i, u := range affected {
		known[u.UserID] = i
	}
	for _, id := range ids {
		id = kinde.NormalizeUserID(id)
		if i, ok := known[id]; ok {
			affected[i].Reasons = fanout.AddReason(affected[i].Reasons, Reason{Kind: ReasonSession})
			continue
		}
		known[id] = len(affected)
		affected = append(affected, AffectedUser{UserID: id, Reasons: []Reason{{Kind: ReasonSession}}})
	}
	return affected
}
