package fanout

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"

	"github.com/riverqueue/river"

	"permsync/events"
	"permsync/store"
)

// Fan-out kinds.
const (
	KindPermissionDeleted = "permission_deleted" // an admin deleted a permission
	KindUserRefresh       = "user_refresh"       // an admin refreshed one user's claims
	KindWebhook           = "webhook"            // a Kinde webhook started it
)

// NewID returns a random fan-out id, "fo_" and 16 hex digits.
func NewID() string {
	var b [8]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	return "fo_" + hex.EncodeToString(b[:])
}

// StartTx records a fan-out with one pending item per user and enqueues
// their jobs, inside tx.
func (e *Engine) StartTx(ctx context.Context, tx *store.Tx, f *store.Fanout, items []store.FanoutItem) error {
	if err := tx.CreateFanout(ctx, f, items); err != nil {
		return err
	}
	jobs := make([]RefreshArgs, len(items))
	for i, it := range items {
		jobs[i] = RefreshArgs{FanoutID: f.ID, UserID: it.UserID}
	}
	return e.EnqueueTx(ctx, tx, jobs)
}

// RequeueFailedTx moves a fan-out's failed items to a new round and
// enqueues their jobs, inside tx. It returns how many it queued.
func (e *Engine) RequeueFailedTx(ctx context.Context, tx *store.Tx, fanoutID string) (int, error) {
	items, err := tx.RequeueFailedFanoutItems(ctx, fanoutID)
	if err != nil || len(items) == 0 {
		return 0, err
	}
	jobs := make([]RefreshArgs, len(items))
	for i, it := range items {
		jobs[i] = RefreshArgs{FanoutID: fanoutID, UserID: it.UserID, Round: it.Round}
	}
	return len(items), e.EnqueueTx(ctx, tx, jobs)
}

// EnqueueTx inserts refresh_claims jobs, unique per (fan-out, user, round),
// and records each job's id on its item, inside tx.
func (e *Engine) EnqueueTx(ctx context.Context, tx *store.Tx, jobs []RefreshArgs) error {
	if len(jobs) == 0 {
		return nil
	}
	params := make([]river.InsertManyParams, len(jobs))
	for i, j := range jobs {
		params[i] = river.InsertManyParams{Args: j}
	}
	res, err := e.client.InsertManyTx(ctx, tx.Tx, params)
	if err != nil {
		return fmt.Errorf("enqueue fan-out jobs: %w", err)
	}
	for _, r := range res {
		if r == nil || r.Job == nil {
			continue
		}
		var args RefreshArgs
		if err := json.Unmarshal(r.Job.EncodedArgs, &args); err != nil {
			return fmt.Errorf("enqueue fan-out jobs: decode args: %w", err)
		}
		if err := tx.SetFanoutItemJob(ctx, args.FanoutID, args.UserID, r.Job.ID); err != nil {
			return err
		}
	}
	return nil
}

// PublishProgress sends a fan-out's counters to the admin topic. userID and
// status name the item that just changed, if any.
func PublishProgress(ctx context.Context, db *store.DB, pub events.Publisher, log *slog.Logger, fanoutID, userID, status string) {
	f, err := db.Fanout(ctx, fanoutID)
	if err != nil {
		log.WarnContext(ctx, "fanout: could not read fan-out for progress", "fanout_id", fanoutID, "error", err)
		return
	}
	events.PublishJSON(pub, events.AdminTopic, events.EventFanoutProgress, events.FanoutProgressData{
		FanoutID: f.ID, Total: f.Total, Done: f.Done, Failed: f.Failed, Pending: f.Pending(),
		Finished: !f.FinishedAt.IsZero(), UserID: userID, Status: status,
	})
}

// Progress sends a fan-out's counters to the admin topic (PublishProgress
// with the engine's database, publisher and logger).
func (e *Engine) Progress(ctx context.Context, fanoutID string) {
	PublishProgress(ctx, e.db, e.pub, e.log, fanoutID, "", "")
}
