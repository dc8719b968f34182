package admin

import (
	"context"
	"errors"
	"fmt"
	"time"

	"permsync/apperr"
	"permsync/fanout"
	"permsync/store"
)

// Fan-out kinds.
const (
	FanoutPermissionDeleted = fanout.KindPermissionDeleted // an admin deleted a permission
	FanoutUserRefresh       = fanout.KindUserRefresh       // an admin refreshed one user's claims
	FanoutWebhook           = fanout.KindWebhook           // a Kinde webhook started it
)

// Fan-out item statuses, as stored.
const (
	ItemPending = store.FanoutItemPending
	ItemDone    = store.FanoutItemDone
	ItemFailed  = store.FanoutItemFailed
)

// FanoutSummary is one fan-out in a list: the stored record and what is
// computed from it.
type FanoutSummary struct {
	ID            string
	Kind          string // FanoutPermissionDeleted or FanoutUserRefresh
	Actor         string // who started it (email, or user id)
	PermissionID  string // for FanoutPermissionDeleted
	PermissionKey string
	Reason        string // a readable sentence
	Total         int
	Done          int
	Failed        int
	Pending       int
	Percent       int // (done + failed) of total, 0..100
	Finished      bool
	CreatedAt     time.Time
	UpdatedAt     time.Time
	FinishedAt    time.Time // zero while pending

	// The Kinde call of a deletion or an RBAC edit (store.FanoutPhase*; ""
	// for other fan-outs). FanoutPhaseDeleting is the call under way,
	// whatever the change.
	Phase         string
	KindeDueAt    time.Time // end of the undo window
	KindeAttempts int
	KindeError    string    // why Kinde refused, while retrying or failed
	KindeDoneAt   time.Time // when Kinde made the change
	Undoable      bool      // Undo still cancels it
}

// FanoutProgress is the fan-out page: counters, pace and per-user status.
type FanoutProgress struct {
	FanoutSummary
	Rate  float64       // users finished per second since the fan-out started
	ETA   time.Duration // estimated time to finish the pending users; 0 if unknown or finished
	Items []FanoutItem  // a page of them: failed first, then pending, then done
	// Offset and Limit say which page of the Total items Items is.
	Offset, Limit int
}

// FanoutItemsPageSize is how many users a fan-out page lists at a time.
const FanoutItemsPageSize = 100

// FanoutQuery picks a fan-out and a page of its users.
type FanoutQuery struct {
	ID     string
	Offset int
	Limit  int // ≤ 0 means FanoutItemsPageSize
}

// FanoutItem is one user's status in a fan-out.
type FanoutItem struct {
	UserID    string
	Email     string
	Reasons   []Reason
	Status    string // ItemPending, ItemDone or ItemFailed
	Attempts  int
	LastError string // readable; set on failure and while retrying
	UpdatedAt time.Time
	DoneAt    time.Time
}

// FanoutStarted is what an action that starts a fan-out returns.
type FanoutStarted struct {
	FanoutID string
	Total    int
}

// RetryResult says how many failed users were queued again.
type RetryResult struct {
	FanoutID string
	Requeued int
}

// Fanouts lists the most recent fan-outs, newest first. limit ≤ 0 means 50.
func (s *Service) Fanouts(ctx context.Context, a Actor, limit int) ([]FanoutSummary, error) {
	if err := s.authorize(ctx, a); err != nil {
		return nil, err
	}
	return s.recentFanouts(ctx, limit)
}

func (s *Service) recentFanouts(ctx context.Context, limit int) ([]FanoutSummary, error) {
	fs, err := s.db.Fanouts(ctx, limit)
	if err != nil {
		return nil, errInternal(err)
	}
	out := make([]FanoutSummary, len(fs))
	for i, f := range fs {
		out[i] = summarize(f)
	}
	return out, nil
}

// Fanout returns a progress snapshot of one fan-out with the first page of
// its users, or apperr.NotFound.
func (s *Service) Fanout(ctx context.Context, a Actor, id string) (*FanoutProgress, error) {
	return s.FanoutPage(ctx, a, FanoutQuery{ID: id})
}

// FanoutPage returns a progress snapshot of one fan-out with a page of its
// users (a deletion reaches thousands), or apperr.NotFound.
func (s *Service) FanoutPage(ctx context.Context, a Actor, q FanoutQuery) (*FanoutProgress, error) {
	f, err := s.authorizedFanout(ctx, a, q.ID)
	if err != nil {
		return nil, err
	}
	if q.Limit <= 0 {
		q.Limit = FanoutItemsPageSize
	}
	q.Offset = max(q.Offset, 0)
	items, err := s.db.FanoutItemsPage(ctx, f.ID, q.Limit, q.Offset)
	if err != nil {
		return nil, errInternal(err)
	}
	p := progressOf(*f, time.Now())
	p.Offset, p.Limit = q.Offset, q.Limit
	p.Items = make([]FanoutItem, len(items))
	for i, it := range items {
		p.Items[i] = FanoutItem{
			UserID: it.UserID, Email: it.Email, Reasons: fanout.ParseReasons(it.Reasons), Status: it.Status,
			Attempts: it.Attempts, LastError: it.LastError, UpdatedAt: it.UpdatedAt, DoneAt: it.DoneAt,
		}
	}
	return p, nil
}

// RetryFanout queues a fan-out's failed users again. It returns apperr.NotFound
// for an unknown fan-out; Requeued is 0 when nothing had failed.
func (s *Service) RetryFanout(ctx context.Context, a Actor, id string) (*RetryResult, error) {
	f, err := s.authorizedFanout(ctx, a, id)
	if err != nil {
		return nil, err
	}
	var requeued int
	err = s.db.InTx(ctx, func(tx *store.Tx) error {
		var err error
		if requeued, err = s.fanouts.RequeueFailedTx(ctx, tx, id); err != nil || requeued == 0 {
			return err
		}
		return tx.AddAudit(ctx, store.AuditEntry{
			ActorID: a.UserID, Actor: a.name(), Action: "fanout.retry", Target: id, Outcome: store.AuditOK,
			Detail: fmt.Sprintf("Queued %d failed user(s) again.", requeued),
		})
	})
	if err != nil {
		s.audit(ctx, a, "fanout.retry", id, store.AuditFailed, "Could not queue the failed users again.")
		return nil, errInternal(err)
	}
	if requeued > 0 {
		s.publishProgress(ctx, f.ID, "", "")
	}
	return &RetryResult{FanoutID: id, Requeued: requeued}, nil
}

// authorizedFanout checks the actor, then reads the fan-out, or
// apperr.NotFound.
func (s *Service) authorizedFanout(ctx context.Context, a Actor, id string) (*store.Fanout, error) {
	if err := s.authorize(ctx, a); err != nil {
		return nil, err
	}
	f, err := s.db.Fanout(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, apperr.E(apperr.NotFound, "Fan-out not found.")
	}
	if err != nil {
		return nil, errInternal(err)
	}
	return f, nil
}

// summarize turns a stored fan-out into its summary.
func summarize(f store.Fanout) FanoutSummary {
	actor := f.ActorEmail
	if actor == "" {
		actor = f.ActorID
	}
	pct := 100
	if f.Total > 0 {
		pct = (f.Done + f.Failed) * 100 / f.Total
	}
	return FanoutSummary{
		ID: f.ID, Kind: f.Kind, Actor: actor, PermissionID: f.PermissionID, PermissionKey: f.PermissionKey,
		Reason: f.Reason, Total: f.Total, Done: f.Done, Failed: f.Failed, Pending: f.Pending(), Percent: pct,
		Finished: !f.FinishedAt.IsZero(), CreatedAt: f.CreatedAt, UpdatedAt: f.UpdatedAt, FinishedAt: f.FinishedAt,
		Phase: f.Phase, KindeDueAt: f.KindeDueAt, KindeAttempts: f.KindeAttempts, KindeError: f.KindeError,
		KindeDoneAt: f.KindeDoneAt, Undoable: f.Undoable(),
	}
}

// progressOf computes the pace of a fan-out at now: users finished per
// second since it started, and the time the pending ones should take.
func progressOf(f store.Fanout, now time.Time) *FanoutProgress {
	p := &FanoutProgress{FanoutSummary: summarize(f)}
	end := now
	if !f.FinishedAt.IsZero() {
		end = f.FinishedAt
	}
	start := f.CreatedAt
	if !f.KindeDoneAt.IsZero() { // the refreshes started when Kinde deleted it
		start = f.KindeDoneAt
	}
	elapsed := end.Sub(start).Seconds()
	if processed := f.Done + f.Failed; processed > 0 && elapsed > 0 {
		p.Rate = float64(processed) / elapsed
	}
	if pending := f.Pending(); pending > 0 && p.Rate > 0 {
		p.ETA = time.Duration(float64(pending) / p.Rate * float64(time.Second)).Round(time.Second)
	}
	return p
}

// publishProgress sends a fan-out's counters to the admin topic. userID and
// status name the item that just changed, if any.
func (s *Service) publishProgress(ctx context.Context, fanoutID, userID, status string) {
	fanout.PublishProgress(ctx, s.db, s.pub, s.log, fanoutID, userID, status)
}

// audit records an entry outside any transaction; a failure is logged.
func (s *Service) audit(ctx context.Context, a Actor, action, target, outcome, detail string) {
	err := s.db.AddAudit(context.WithoutCancel(ctx), store.AuditEntry{
		ActorID: a.UserID, Actor: a.name(), Action: action, Target: target, Outcome: outcome, Detail: detail,
	})
	if err != nil {
		s.log.ErrorContext(ctx, "admin: could not write audit entry", "action", action, "target", target, "error", err)
	}
}
