package kindesync

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"permsync/directory"
	"permsync/fanout"
	"permsync/kinde"
	"permsync/store"
)

// EnforceTx makes what a directory sync or reconciliation found taken away
// at Kinde take effect, in the transaction that records it in the directory
// (it is the directory's Enforcer). Correctness does not wait for a webhook
// Kinde may never send:
//   - a permission that no longer exists is denied to everyone and every holder the
//     directory knew (signed in to permsync or not), plus any live session
//     carrying the key, gets the claim-refresh fan-out, as permission.deleted
//     would have done; one already denied for that id (deleted through
//     permsync, or its webhook came first) is left alone;
//   - users who lost a permission in an organization (a role lost it, a role
//     or a direct grant or a membership was taken away) get the claim-refresh
//     fan-out: refresh_claims, then the epoch bump and the live event.
func (s *Syncer) EnforceTx(ctx context.Context, tx *store.Tx, c *directory.Change) (func(context.Context), error) {
	var after []func(context.Context)
	// Kinde made these changes before the directory read them, so a refresh
	// sent after now, or pending past its Kinde call, meets the need.
	need := refreshNeed{since: time.Now()}
	live, err := tx.LiveDenials(ctx, need.since)
	if err != nil {
		return nil, err
	}
	for _, rm := range c.DeletedPermissions {
		if slices.ContainsFunc(live, func(d store.Denial) bool {
			return d.Everyone() && d.PermissionKey == rm.Key && (d.PermissionID == rm.ID || d.PermissionID == "")
		}) {
			continue
		}
		ids, err := tx.UsersWithPermission(ctx, rm.Key)
		if err != nil {
			return nil, err
		}
		affected := directory.Affected(rm.Holders)
		for _, id := range ids {
			affected = fanout.MergeAffected(affected, []fanout.AffectedUser{{UserID: kinde.NormalizeUserID(id),
				Reasons: []fanout.Reason{{Kind: fanout.ReasonSession}}}})
		}
		reason := "Permission " + rm.Key + " no longer exists at Kinde (found by the directory " + c.Source + ")."
		pl := s.revokeKeyPlan(rm.ID, rm.Key, reason, affected, true, need)
		if err := pl.inTx(ctx, tx); err != nil {
			return nil, err
		}
		s.log.InfoContext(ctx, "kindesync: a permission vanished at Kinde without a webhook; denied it to everyone",
			"permission_key", rm.Key, "source", c.Source, "fanout_id", pl.fanoutID, "users", len(affected))
		after = append(after, pl.after...)
	}
	if len(c.Losses) > 0 {
		keys := map[string]bool{}
		byUser := map[string]*fanout.AffectedUser{}
		var order []string
		for _, l := range c.Losses {
			for _, k := range l.Keys {
				keys[k] = true
			}
			if byUser[l.UserID] == nil {
				byUser[l.UserID] = &fanout.AffectedUser{UserID: l.UserID}
				order = append(order, l.UserID)
			}
		}
		affected := make([]fanout.AffectedUser, len(order))
		for i, id := range order {
			affected[i] = *byUser[id]
		}
		lost := slices.Sorted(maps.Keys(keys))
		reason := fmt.Sprintf("Kinde no longer grants %s to %d user(s) (found by the directory %s: %s).",
			strings.Join(lost, ", "), len(affected), c.Source, c.Losses[0].Reason)
		f := &store.Fanout{ID: fanout.NewID(), Kind: fanout.KindWebhook, ActorEmail: "Directory " + c.Source,
			Reason: reason, CreatedAt: time.Now()}
		queued, err := s.startRefreshTx(ctx, tx, f, fanout.Items(affected), need)
		if err != nil {
			return nil, err
		}
		s.log.InfoContext(ctx, "kindesync: Kinde took permissions away without a webhook; refreshing the users' claims",
			"keys", strings.Join(lost, ","), "users", len(affected), "source", c.Source, "fanout_id", f.ID,
			"outcome", queued)
		after = append(after, func(ctx context.Context) { s.publishProgress(ctx, f.ID) })
	}
	if len(after) == 0 {
		return nil, nil
	}
	return func(ctx context.Context) {
		for _, f := range after {
			f(ctx)
		}
	}, nil
}
