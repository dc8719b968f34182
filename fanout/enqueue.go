package fanout

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"

	"github.com/riverqueue/river"

	"permsync/events"
	"permsync/store"
)

// Fan-out kinds.
const (
	KindPermissionDeleted = "permission_deleted" // an admin deleted a permission
	KindUserRefresh       = "user_refresh"       // an admin refreshed one user's claims
	KindWebhook           = "webhook"            // a Kinde webhook started it
	KindRBACEdit          = "rbac_edit"          // an admin changed a role, a member or a permission
)

// NewID returns a random fan-out id, "fo_" and 16 hex digits.
func NewID() string {
	var b [8]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	return "fo_" + hex.EncodeToString(b[:])
}

// StartTx records a fan-out with one item per user and enqueues the jobs of
// those not recorded done already (StartNeededTx's covered users), inside tx.
func (e *Engine) StartTx(ctx context.Context, tx *store.Tx, f *store.Fanout, items []store.FanoutItem) error {
	if err := tx.CreateFanout(ctx, f, items); err != nil {
		return err
	}
	jobs := make([]RefreshArgs, 0, len(items))
	for _, it := range items {
		if it.Status != store.FanoutItemDone { // recorded done already: no call
			jobs = append(jobs, RefreshArgs{FanoutID: f.ID, UserID: it.UserID})
		}
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

// maxChunk is the most users one refresh_claims job works.
const maxChunk = 50

// EnqueueTx inserts the refresh_claims jobs for the given users, inside tx:
// one job per chunk of users of the same fan-out and round, with enough
// chunks to keep every worker busy (at most maxChunk users each; a small
// fan-out gets a job per user). Each item records its job's id. Jobs are
// unique per (fan-out, users, round).
func (e *Engine) EnqueueTx(ctx context.Context, tx *store.Tx, jobs []RefreshArgs) error {
	if len(jobs) == 0 {
		return nil
	}
	type key struct {
		fanoutID string
		round    int
	}
	var order []key
	users := map[key][]string{}
	for _, j := range jobs {
		k := key{j.FanoutID, j.Round}
		if _, ok := users[k]; !ok {
			order = append(order, k)
		}
		users[k] = append(users[k], j.users()...)
	}
	var params []river.InsertManyParams
	for _, k := range order {
		ids := users[k]
		size := min(maxChunk, max(1, (len(ids)+e.workers-1)/e.workers))
		for chunk := range slices.Chunk(ids, size) {
			params = append(params, river.InsertManyParams{
				Args: RefreshArgs{FanoutID: k.fanoutID, UserIDs: chunk, Round: k.round}})
		}
	}
	res, err := e.client.InsertManyTx(ctx, tx.Tx, params)
	if err != nil {
		return fmt.Errorf("enqueue fan-out jobs: %w", err)
	}
	jobIDs := map[string]map[string]int64{} // fan-out -> user -> job
	for i, r := range res {
		if r == nil || r.Job == nil {
			continue
		}
		args := params[i].Args.(RefreshArgs)
		if r.UniqueSkippedAsDuplicate {
			// The same chunk is queued already: its job works these items.
			var dup RefreshArgs
			if err := json.Unmarshal(r.Job.EncodedArgs, &dup); err != nil {
				return fmt.Errorf("enqueue fan-out jobs: decode args: %w", err)
			}
			args = dup
		}
		if jobIDs[args.FanoutID] == nil {
			jobIDs[args.FanoutID] = map[string]int64{}
		}
		for _, u := range args.users() {
			jobIDs[args.FanoutID][u] = r.Job.ID
		}
	}
	for _, k := range order {
		if ids := jobIDs[k.fanoutID]; ids != nil {
			if err := tx.SetFanoutItemJobs(ctx, k.fanoutID, ids); err != nil {
				return err
			}
			delete(jobIDs, k.fanoutID)
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
