package fanout

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"permsync/events"
	"permsync/kinde"
	"permsync/store"
)

// JobKindRefreshClaims is the River job kind of a fan-out item.
const JobKindRefreshClaims = "refresh_claims"

// ClaimsRefresher invalidates one user's claim cache at Kinde
// (POST /users/{id}/refresh_claims). *kinde.Client satisfies it.
type ClaimsRefresher interface {
	RefreshUserClaims(ctx context.Context, userID string) error
}

// RefreshArgs is the River job that refreshes the claims of a chunk of one
// fan-out's users (UserIDs; a job enqueued before chunks existed names one
// user in UserID). Jobs are unique per (fan-out, users, round) while
// waiting, running or retrying, and a user is in one chunk per round. A
// retry moves failed users to a new round, so their new jobs never collide
// with the old ones still being finalised. A job skips users whose item is
// not pending in its round, so a user is never counted twice.
type RefreshArgs struct {
	FanoutID string   `json:"fanout_id" river:"unique"`
	UserID   string   `json:"user_id,omitempty" river:"unique"`
	UserIDs  []string `json:"user_ids,omitempty" river:"unique"`
	// Round is the items' retry round: 0 at first, one more per retry of
	// the fan-out. A job of an older round does nothing.
	Round int `json:"round,omitempty" river:"unique"`
}

// Kind implements river.JobArgs.
func (RefreshArgs) Kind() string { return JobKindRefreshClaims }

// users are the users the job refreshes.
func (a RefreshArgs) users() []string {
	if len(a.UserIDs) == 0 && a.UserID != "" {
		return []string{a.UserID}
	}
	return a.UserIDs
}

// InsertOpts implements river.JobArgsWithInsertOpts.
func (RefreshArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: river.QueueDefault, UniqueOpts: river.UniqueOpts{
		ByArgs: true,
		ByState: []rivertype.JobState{
			rivertype.JobStateAvailable, rivertype.JobStatePending, rivertype.JobStateRunning,
			rivertype.JobStateRetryable, rivertype.JobStateScheduled,
		},
	}}
}

// refreshWorker works RefreshArgs: refresh_claims at Kinde for each of the
// job's users still pending, up to calls at a time (the kinde client's
// shared limit sets the pace), and, as the answers come in, records them in
// batches: one transaction marks the users' claims cleared, moves their
// items to done, counts them and bumps their epochs, then the events are
// published. The job works for at most budget, then snoozes (River makes
// it available again at once without counting an attempt) and the next run
// takes up the users still pending, so a slow chunk never outlives its
// timeout or River's rescue of stuck jobs.
type refreshWorker struct {
	river.WorkerDefaults[RefreshArgs]
	db      *store.DB
	kinde   ClaimsRefresher
	pub     events.Publisher
	obs     JobObserver // nil: not observed
	log     *slog.Logger
	timeout time.Duration
	budget  time.Duration // when to stop starting calls: half the timeout
	calls   int           // refresh_claims calls in flight per job
}

// Timeout bounds one run of a job; the kinde client's own retries happen
// inside it.
func (w *refreshWorker) Timeout(*river.Job[RefreshArgs]) time.Duration { return w.timeout }

// bookkeepingTimeout bounds the database work after Kinde answered, which
// runs even if the job's context was cancelled meanwhile.
const bookkeepingTimeout = 30 * time.Second

// maxRecordBatch bounds how many answers one bookkeeping transaction records.
const maxRecordBatch = 200

// refreshOutcome is Kinde's answer for one user.
type refreshOutcome struct {
	userID string
	start  time.Time // when the call started
	err    error
}

// Work implements river.Worker.
func (w *refreshWorker) Work(ctx context.Context, job *river.Job[RefreshArgs]) error {
	args := job.Args
	log := w.log.With("fanout_id", args.FanoutID, "job_id", job.ID, "attempt", job.Attempt)
	users := args.users()
	pending, err := w.db.PendingFanoutUsers(ctx, args.FanoutID, args.Round, users)
	if err != nil {
		return err
	}
	if len(pending) == 0 {
		// Already counted, or superseded by a retry: nothing left to do, and
		// Kinde is not called again.
		return nil
	}
	fo, err := w.db.Fanout(ctx, args.FanoutID)
	if errors.Is(err, store.ErrNotFound) {
		log.WarnContext(ctx, "fanout: fan-out gone; cancelling job")
		return river.JobCancel(fmt.Errorf("fan-out %s not found", args.FanoutID))
	}
	if err != nil {
		return err
	}

	// On the last attempt every user is tried and whoever still fails is
	// failed; before it, the first failure that may pass stops new calls
	// (Kinde is struggling: the whole chunk backs off and retries).
	final := job.Attempt >= job.MaxAttempts
	deadline := time.Now().Add(w.budget)
	kctx := kinde.WithPriority(ctx, kinde.PriorityFanout)
	var stop atomic.Bool
	next := make(chan string)
	go func() {
		defer close(next)
		for _, id := range pending {
			if stop.Load() || time.Now().After(deadline) {
				return
			}
			select {
			case next <- id:
			case <-ctx.Done():
				return
			}
		}
	}()
	results := make(chan refreshOutcome, len(pending))
	var wg sync.WaitGroup
	for range min(max(w.calls, 1), len(pending)) {
		wg.Go(func() {
			for id := range next {
				start := time.Now()
				err := w.kinde.RefreshUserClaims(kctx, id)
				if err != nil && !final && !IsPermanent(err) {
					stop.Store(true)
				}
				results <- refreshOutcome{userID: id, start: start, err: err}
			}
		})
	}
	go func() {
		wg.Wait()
		close(results)
	}()

	// Record answers as they come: whatever arrived while the previous batch
	// was being written goes into the next one.
	var retry, recordErr error
	finished := 0
	for o := range results {
		batch := []refreshOutcome{o}
	more:
		for len(batch) < maxRecordBatch {
			select {
			case o, ok := <-results:
				if !ok {
					break more
				}
				batch = append(batch, o)
			default:
				break more
			}
		}
		n, transient, err := w.record(ctx, log, job, fo, batch, final)
		finished += n
		if err != nil {
			recordErr = err
		}
		if transient != nil && retry == nil {
			retry = transient
		}
	}
	switch {
	case recordErr != nil:
		// Kinde's caches were invalidated but not everything was recorded:
		// the retry calls refresh_claims again for those users, which is
		// harmless.
		log.WarnContext(ctx, "fanout: could not record refreshed claims; will retry", "error", recordErr)
		return recordErr
	case retry != nil:
		jobRetrying(w.obs)
		return retry
	case finished < len(pending) && ctx.Err() != nil:
		return ctx.Err()
	case finished < len(pending):
		log.DebugContext(ctx, "fanout: chunk continues in a new run", "finished", finished, "left", len(pending)-finished)
		return river.JobSnooze(0)
	}
	return nil
}

// record writes a batch of Kinde's answers and publishes what changed. It
// returns how many users it finished (done or failed for good) and, when
// some failed in a way a retry may fix, that error.
func (w *refreshWorker) record(ctx context.Context, log *slog.Logger, job *river.Job[RefreshArgs], fo *store.Fanout,
	batch []refreshOutcome, final bool) (int, error, error) {
	bctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), bookkeepingTimeout)
	defer cancel()
	args := job.Args
	var ok []store.Refreshed
	var transient error
	finished := 0
	lastUser, lastStatus := "", ""
	for _, o := range batch {
		if o.err == nil {
			ok = append(ok, store.Refreshed{UserID: o.userID, At: o.start})
			continue
		}
		msg := ReadableError(o.err)
		if !final && !IsPermanent(o.err) {
			log.InfoContext(bctx, "fanout: refresh_claims failed; will retry", "user_id", o.userID, "error", o.err)
			if err := w.db.NoteFanoutAttempt(bctx, args.FanoutID, o.userID, job.Attempt, msg+" Retrying."); err != nil {
				log.WarnContext(bctx, "fanout: could not record attempt", "error", err)
			}
			if transient == nil {
				transient = o.err
			}
			continue
		}
		log.WarnContext(bctx, "fanout: refresh_claims failed for good", "user_id", o.userID, "error", o.err,
			"permanent", IsPermanent(o.err))
		changed, err := w.db.FailFanoutItem(bctx, args.FanoutID, o.userID, job.Attempt, msg)
		if err != nil {
			// The item stays pending: the job's next run tries again.
			log.ErrorContext(bctx, "fanout: could not mark fan-out item failed", "user_id", o.userID, "error", err)
			return finished, transient, err
		}
		finished++
		if changed {
			itemFinished(w.obs, store.FanoutItemFailed)
			lastUser, lastStatus = o.userID, store.FanoutItemFailed
		}
	}
	if len(ok) > 0 {
		var epochs map[string]int64
		err := w.db.InTx(bctx, func(tx *store.Tx) error {
			var err error
			epochs, err = tx.CompleteFanoutItems(bctx, args.FanoutID, args.Round, job.Attempt, fo.Reason, ok)
			return err
		})
		if err != nil {
			return finished, transient, err
		}
		finished += len(ok)
		for _, r := range ok {
			epoch, counted := epochs[r.UserID]
			if !counted {
				continue
			}
			log.DebugContext(bctx, "fanout: claims refreshed", "user_id", r.UserID, "epoch", epoch)
			itemFinished(w.obs, store.FanoutItemDone)
			events.NotifyEpochChanged(w.pub, r.UserID) // caches and background refresh first
			events.PublishJSON(w.pub, events.UserTopic(r.UserID), events.EventClaimsChanged, events.ClaimsChangedData{
				Stage: events.StageRefreshed, Reason: fo.Reason, PermissionKey: fo.PermissionKey, FanoutID: fo.ID,
				Epoch: epoch,
			})
			lastUser, lastStatus = r.UserID, store.FanoutItemDone
		}
	}
	if lastUser != "" {
		if finished > 1 {
			lastUser, lastStatus = "", "" // a batch: the page re-reads the list
		}
		PublishProgress(bctx, w.db, w.pub, w.log, args.FanoutID, lastUser, lastStatus)
	}
	return finished, transient, nil
}

// IsPermanent reports whether retrying cannot help: the user does not exist
// (404), the request is malformed (400), or Kinde refuses our credentials or
// scopes (401/403), which an admin must fix before retrying the fan-out.
func IsPermanent(err error) bool {
	switch kinde.StatusCode(err) {
	case http.StatusBadRequest, http.StatusUnauthorized, http.StatusForbidden, http.StatusNotFound:
		return true
	}
	return false
}

// ReadableError describes a failed Kinde call for the admin pages.
// It never includes tokens: the kinde client's errors carry only the
// method, path, status and Kinde's own message.
func ReadableError(err error) string {
	switch status := kinde.StatusCode(err); {
	case kinde.IsUnknownID(err):
		// Kinde's spec answers 400 for an unknown user on refresh_claims
		// (its only input is the user id); 404 is handled the same way.
		return fmt.Sprintf("User not found at Kinde (%d): %s", status, apiMessage(err))
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		return fmt.Sprintf("Kinde refused refresh_claims (%d): check that the M2M application has the update:user_refresh_claims scope.", status)
	case status == http.StatusTooManyRequests:
		return "Kinde kept rate limiting (429)."
	case status >= 500:
		return fmt.Sprintf("Kinde failed with %d.", status)
	case status != 0:
		return fmt.Sprintf("Kinde answered %d: %s", status, apiMessage(err))
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return "Interrupted before Kinde answered."
	default:
		return "Kinde could not be reached."
	}
}

// apiMessage is Kinde's message from an *kinde.APIError in err's chain.
func apiMessage(err error) string {
	if e, ok := errors.AsType[*kinde.APIError](err); ok && e.Message != "" {
		return e.Message
	}
	return "no details"
}
