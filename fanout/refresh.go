package fanout

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
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

// RefreshArgs is the River job that refreshes one user's claims for one
// fan-out. Jobs are unique per (fan-out, user, round) while waiting,
// running or retrying: one live job per user and fan-out. A retry moves
// failed users to a new round, so their new jobs never collide with the
// old ones still being finalised. A job whose item is not pending in its
// round does nothing, so a user is never counted twice.
type RefreshArgs struct {
	FanoutID string `json:"fanout_id" river:"unique"`
	UserID   string `json:"user_id" river:"unique"`
	// Round is the item's retry round: 0 at first, one more per retry of
	// the fan-out. A job of an older round does nothing.
	Round int `json:"round,omitempty" river:"unique"`
}

// Kind implements river.JobArgs.
func (RefreshArgs) Kind() string { return JobKindRefreshClaims }

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

// refreshWorker works RefreshArgs: refresh_claims at Kinde, then, in one
// transaction, bump the user's epoch, mark the item done, count it and
// complete the job; then publish the events.
type refreshWorker struct {
	river.WorkerDefaults[RefreshArgs]
	db      *store.DB
	kinde   ClaimsRefresher
	pub     events.Publisher
	obs     JobObserver // nil: not observed
	log     *slog.Logger
	timeout time.Duration
}

// Timeout bounds one attempt; the kinde client's own retries happen inside it.
func (w *refreshWorker) Timeout(*river.Job[RefreshArgs]) time.Duration { return w.timeout }

// bookkeepingTimeout bounds the database work after Kinde answered, which
// runs even if the job's context was cancelled meanwhile.
const bookkeepingTimeout = 30 * time.Second

// Work implements river.Worker.
func (w *refreshWorker) Work(ctx context.Context, job *river.Job[RefreshArgs]) error {
	args := job.Args
	log := w.log.With("fanout_id", args.FanoutID, "user_id", args.UserID, "job_id", job.ID, "attempt", job.Attempt)
	item, err := w.db.FanoutItem(ctx, args.FanoutID, args.UserID)
	if errors.Is(err, store.ErrNotFound) {
		log.WarnContext(ctx, "fanout: fan-out item gone; cancelling job")
		return river.JobCancel(fmt.Errorf("fan-out item %s/%s not found", args.FanoutID, args.UserID))
	}
	if err != nil {
		return err
	}
	if item.Status != store.FanoutItemPending || item.Round != args.Round {
		// Already counted, or superseded by a retry: nothing left to do, and
		// Kinde is not called again.
		return nil
	}
	fo, err := w.db.Fanout(ctx, args.FanoutID)
	if err != nil {
		return err
	}

	ctx = kinde.WithPriority(ctx, kinde.PriorityFanout)
	start := time.Now() // tokens granted after this call succeeds carry claims at least this fresh
	if err := w.kinde.RefreshUserClaims(ctx, args.UserID); err != nil {
		return w.attemptFailed(ctx, log, job, err)
	}

	bctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), bookkeepingTimeout)
	defer cancel()
	var epoch int64
	var counted bool
	err = w.db.InTx(bctx, func(tx *store.Tx) error {
		// Before the epoch bump is visible: the refresh it triggers dates
		// the session's claims from this (store.Session.ClaimsAt).
		if err := tx.MarkClaimsCleared(bctx, args.UserID, start); err != nil {
			return err
		}
		var err error
		if counted, err = tx.CompleteFanoutItem(bctx, args.FanoutID, args.UserID, job.Attempt); err != nil {
			return err
		}
		if counted {
			if epoch, err = tx.BumpUserEpoch(bctx, args.UserID, fo.Reason); err != nil {
				return err
			}
		}
		return store.CompleteJobTx(bctx, tx, job)
	})
	if err != nil {
		// Kinde's cache was invalidated but nothing was recorded: the retry
		// calls refresh_claims again, which is harmless.
		log.WarnContext(bctx, "fanout: could not record refreshed claims; will retry", "error", err)
		return err
	}
	if !counted {
		return nil
	}
	log.DebugContext(bctx, "fanout: claims refreshed", "epoch", epoch)
	itemFinished(w.obs, store.FanoutItemDone)
	events.NotifyEpochChanged(w.pub, args.UserID) // caches and background refresh first
	events.PublishJSON(w.pub, events.UserTopic(args.UserID), events.EventClaimsChanged, events.ClaimsChangedData{
		Stage: events.StageRefreshed, Reason: fo.Reason, PermissionKey: fo.PermissionKey, FanoutID: fo.ID, Epoch: epoch,
	})
	PublishProgress(bctx, w.db, w.pub, w.log, args.FanoutID, args.UserID, store.FanoutItemDone)
	return nil
}

// attemptFailed records a failed attempt. Permanent errors (the user is gone,
// the request is refused) fail the item at once and cancel the job; others
// are retried by River with backoff, and the last attempt fails the item.
func (w *refreshWorker) attemptFailed(ctx context.Context, log *slog.Logger, job *river.Job[RefreshArgs], cause error) error {
	args := job.Args
	bctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), bookkeepingTimeout)
	defer cancel()
	msg := ReadableError(cause)
	permanent := IsPermanent(cause)
	if !permanent && job.Attempt < job.MaxAttempts {
		log.InfoContext(bctx, "fanout: refresh_claims failed; will retry", "error", cause)
		if err := w.db.NoteFanoutAttempt(bctx, args.FanoutID, args.UserID, job.Attempt, msg+" Retrying."); err != nil {
			log.WarnContext(bctx, "fanout: could not record attempt", "error", err)
		}
		jobRetrying(w.obs)
		return cause
	}
	log.WarnContext(bctx, "fanout: refresh_claims failed for good", "error", cause, "permanent", permanent)
	changed, err := w.db.FailFanoutItem(bctx, args.FanoutID, args.UserID, job.Attempt, msg)
	if err != nil {
		log.ErrorContext(bctx, "fanout: could not mark fan-out item failed", "error", err)
		return cause
	}
	if changed {
		itemFinished(w.obs, store.FanoutItemFailed)
		PublishProgress(bctx, w.db, w.pub, w.log, args.FanoutID, args.UserID, store.FanoutItemFailed)
	}
	if permanent {
		return river.JobCancel(cause)
	}
	return cause
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
