package admin

import (
	"context"
	"time"
)

// Overview is the admin home page.
type Overview struct {
	// KindeOK is false until the directory has completed its first sync;
	// KindeMessage then says what it is doing, while local data is shown.
	KindeOK       bool
	KindeMessage  string
	Permissions   int
	Roles         int
	Users         int
	Organizations int
	AsOf          time.Time // the directory's last completed sync
	Directory     DirectoryStatus

	Tombstones    []Tombstone     // live tombstones
	Fanouts       int             // fan-outs ever recorded
	ActiveFanouts int             // fan-outs with users still pending
	RecentFanouts []FanoutSummary // the five newest
	RecentAudit   []AuditEntry    // the five newest entries
	Webhooks      WebhookHealth
}

// overviewRecent is how many recent fan-outs and audit entries are shown.
const overviewRecent = 5

// Overview returns counts, recent fan-outs and audit entries, live
// tombstones and webhook health. A Kinde failure is reported in the result,
// not as an error, so the page still renders.
func (s *Service) Overview(ctx context.Context, a Actor) (*Overview, error) {
	if err := s.authorize(ctx, a); err != nil {
		return nil, err
	}
	out := &Overview{KindeOK: true}
	st, dst, err := s.directoryStatus(ctx)
	if err != nil {
		return nil, err
	}
	out.Directory, out.AsOf = dst, st.CompletedAt
	out.Permissions, out.Roles, out.Users, out.Organizations = st.Counts.Permissions, st.Counts.Roles, st.Counts.Users,
		st.Counts.Organizations
	if !st.Synced() {
		out.KindeOK, out.KindeMessage = false, "The directory, permsync's copy of Kinde's users, roles and permissions, "+
			"is "+dst.Summary+"; the counts fill in as it goes."
	}
	if out.Tombstones, err = s.tombstones(ctx); err != nil {
		return nil, err
	}
	if out.Fanouts, out.ActiveFanouts, err = s.db.FanoutCounts(ctx); err != nil {
		return nil, errInternal(err)
	}
	if out.RecentFanouts, err = s.recentFanouts(ctx, overviewRecent); err != nil {
		return nil, err
	}
	if out.RecentAudit, err = s.auditEntries(ctx, overviewRecent); err != nil {
		return nil, err
	}
	if s.webhooks != nil {
		if out.Webhooks, err = s.webhooks.WebhookHealth(ctx); err != nil {
			s.log.WarnContext(ctx, "admin: could not read webhook health", "error", err)
			out.Webhooks = WebhookHealth{}
		}
	}
	return out, nil
}

// AuditEntry is one line of the audit log.
type AuditEntry struct {
	ID      int64
	At      time.Time
	ActorID string
	Actor   string // usually the actor's email
	Action  string // e.g. "permission.delete", "user.refresh_claims", "fanout.retry"
	Target  string
	Outcome string // "ok", "failed", "partial" or "denied"
	Detail  string
}

// Audit returns the most recent audit entries, newest first. limit ≤ 0
// means 100.
func (s *Service) Audit(ctx context.Context, a Actor, limit int) ([]AuditEntry, error) {
	if err := s.authorize(ctx, a); err != nil {
		return nil, err
	}
	return s.auditEntries(ctx, limit)
}

func (s *Service) auditEntries(ctx context.Context, limit int) ([]AuditEntry, error) {
	es, err := s.db.AuditEntries(ctx, limit)
	if err != nil {
		return nil, errInternal(err)
	}
	out := make([]AuditEntry, len(es))
	for i, e := range es {
		out[i] = AuditEntry{ID: e.ID, At: e.At, ActorID: e.ActorID, Actor: e.Actor, Action: e.Action,
			Target: e.Target, Outcome: e.Outcome, Detail: e.Detail}
	}
	return out, nil
}
