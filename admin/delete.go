package admin

import (
	"context"
	"fmt"
	"strings"
	"time"

	"permsync/apperr"
	"permsync/events"
	"permsync/fanout"
	"permsync/kinde"
	"permsync/store"
)

// DeleteResult is what DeletePermission did.
type DeleteResult struct {
	FanoutID           string
	PermissionID       string
	PermissionKey      string
	Affected           int       // users queued for a claims refresh
	TombstoneExpiresAt time.Time // until then no session honours the key
}

// recordTimeout bounds the local bookkeeping after Kinde deleted the
// permission; it runs even if the caller's context ends meanwhile.
const recordTimeout = 30 * time.Second

// DeletePermission deletes a permission and makes every affected user lose
// it (DESIGN §4.3). confirmKey must equal the permission's key.
//
// In order: resolve the affected users (role holders, direct holders, live
// sessions carrying the key) BEFORE deleting; DELETE it at Kinde; then in
// one transaction tombstone the key for TombstoneTTL, record the fan-out
// (actor, time, permission id and key, total), enqueue one refresh_claims job
// per user (unique per fan-out and user) and write the audit entry. Affected
// users' pages are told at once (claims-changed, stage tombstoned).
//
// Errors (apperr codes): Forbidden; NotFound (unknown id); Invalid (wrong
// confirmation); Conflict (the admin permission itself); Unavailable (Kinde
// failed; nothing was changed); Internal when Kinde deleted it but the local
// record failed (the message says so).
func (s *Service) DeletePermission(ctx context.Context, a Actor, id, confirmKey string) (*DeleteResult, error) {
	if err := s.authorize(ctx, a); err != nil {
		return nil, err
	}
	p, err := s.findPermission(ctx, id)
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
	// Holders come from the directory: until its first full sync is done it
	// does not know them all, and a deletion would miss some.
	if _, st, err := s.directoryStatus(ctx); err != nil {
		return nil, err
	} else if !st.Synced {
		return nil, apperr.E(apperr.Unavailable, "The directory is still on its first sync ("+st.Summary+
			"); permsync cannot yet say who holds this permission. Try again when it has finished.")
	}

	affected, err := s.affectedUsers(ctx, p.Key)
	if err != nil {
		s.audit(ctx, a, "permission.delete", target, store.AuditFailed, "Could not resolve the affected users; nothing was deleted.")
		return nil, err
	}
	if err := s.kinde.DeletePermission(ctx, p.ID); err != nil {
		s.audit(ctx, a, "permission.delete", target, store.AuditFailed, "Kinde did not delete it: "+fanout.ReadableError(err))
		return nil, kindeError(err, "Permission")
	}
	s.log.InfoContext(ctx, "admin: permission deleted at Kinde", "permission_id", p.ID, "permission_key", p.Key,
		"actor_id", a.UserID, "affected", len(affected))

	// Kinde has deleted it: record everything even if the caller goes away.
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), recordTimeout)
	defer cancel()
	affected = s.addLateSessions(rctx, affected, p.Key)
	now := time.Now()
	// Kinde deleted it before now: the denial is settled at once.
	tomb := store.Denial{PermissionKey: p.Key, PermissionID: p.ID, CreatedAt: now, SettledAt: now,
		ExpiresAt: now.Add(s.tombstoneTTL), Reason: "deleted by " + a.name()}
	f := &store.Fanout{
		ID: fanout.NewID(), Kind: FanoutPermissionDeleted, ActorID: a.UserID, ActorEmail: a.Email,
		PermissionID: p.ID, PermissionKey: p.Key, Reason: "Permission " + p.Key + " was deleted.", CreatedAt: now,
	}
	items := make([]store.FanoutItem, len(affected))
	for i, u := range affected {
		items[i] = store.FanoutItem{UserID: u.UserID, Email: u.Email, Reasons: fanout.FormatReasons(u.Reasons)}
	}
	err = s.db.InTx(rctx, func(tx *store.Tx) error {
		tomb.FanoutID = f.ID
		if _, err := tx.AddDenial(rctx, tomb); err != nil {
			return err
		}
		if err := tx.MarkPermissionDeleted(rctx, p.ID, p.Key); err != nil {
			return err
		}
		// Kinde has deleted it: so does the directory.
		if _, err := tx.DirDeletePermission(rctx, p.ID); err != nil {
			return err
		}
		if err := s.fanouts.StartTx(rctx, tx, f, items); err != nil {
			return err
		}
		return tx.AddAudit(rctx, store.AuditEntry{
			ActorID: a.UserID, Actor: a.name(), Action: "permission.delete", Target: target, Outcome: store.AuditOK,
			Detail: fmt.Sprintf("Deleted at Kinde; key denied to older tokens until %s; %d user(s) queued for a claims refresh (fan-out %s).",
				tomb.ExpiresAt.UTC().Format(time.RFC3339), len(items), f.ID),
		})
	})
	if err != nil {
		return nil, s.recordFailed(rctx, a, target, tomb, err)
	}
	events.NotifyTombstonesChanged(s.pub) // caches first, so the pages' next request sees it
	for _, u := range affected {
		events.PublishJSON(s.pub, events.UserTopic(u.UserID), events.EventClaimsChanged, events.ClaimsChangedData{
			Stage: events.StageTombstoned, Reason: f.Reason, PermissionKey: p.Key, FanoutID: f.ID,
		})
	}
	s.publishProgress(rctx, f.ID, "", "")
	return &DeleteResult{FanoutID: f.ID, PermissionID: p.ID, PermissionKey: p.Key, Affected: len(items),
		TombstoneExpiresAt: tomb.ExpiresAt}, nil
}

// addLateSessions adds users whose sessions started carrying the key while
// Kinde was deleting it.
func (s *Service) addLateSessions(ctx context.Context, affected []AffectedUser, key string) []AffectedUser {
	ids, err := s.sessions.UsersWithPermission(ctx, key)
	if err != nil {
		s.log.WarnContext(ctx, "admin: could not re-check sessions", "permission_key", key, "error", err)
		return affected
	}
	for _, id := range ids {
		id = kinde.NormalizeUserID(id)
		found := false
		for _, u := range affected {
			if u.UserID == id {
				found = true
				break
			}
		}
		if !found {
			affected = append(affected, AffectedUser{UserID: id, Reasons: []Reason{{Kind: ReasonSession}}})
		}
	}
	return affected
}

// recordFailed handles the worst case: Kinde deleted the permission but the
// fan-out could not be recorded. It still tries to tombstone the key, so the
// permission stops working locally, and audits what happened.
func (s *Service) recordFailed(ctx context.Context, a Actor, target string, tomb store.Denial, cause error) error {
	s.log.ErrorContext(ctx, "admin: permission deleted at Kinde but the fan-out was not recorded",
		"permission_key", tomb.PermissionKey, "error", cause)
	detail := "Deleted at Kinde, but the fan-out could not be recorded."
	tomb.FanoutID = ""
	if _, err := s.db.AddDenial(ctx, tomb); err != nil {
		detail += " The key could not be denied either."
	} else {
		detail += " The key was denied to everyone."
		events.NotifyTombstonesChanged(s.pub)
	}
	s.audit(ctx, a, "permission.delete", target, store.AuditPartial, detail)
	return apperr.Wrap(cause, apperr.Internal,
		"The permission was deleted at Kinde, but refreshing the affected users could not be queued. "+
			"Refresh their claims from the users page.")
}
