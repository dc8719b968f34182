package fanout

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"permsync/events"
	"permsync/kinde"
	"permsync/store"
)

// JobKindDeletePermission is the River job kind that deletes a permission at
// Kinde once a deletion's undo window has passed.
const JobKindDeletePermission = "delete_permission"

// PermissionDeleter deletes a permission at Kinde
// (DELETE /api/v1/permissions/{id}). *kinde.Client satisfies it.
type PermissionDeleter interface {
	DeletePermission(ctx context.Context, id string) error
}

// DeleteArgs is the job that makes a deletion's Kinde call, then starts its
// refresh_claims jobs. One per fan-out.
type DeleteArgs struct {
	FanoutID string `json:"fanout_id" river:"unique"`
}

// Kind implements river.JobArgs.
func (DeleteArgs) Kind() string { return JobKindDeletePermission }

// deleteMaxAttempts bounds the Kinde delete's attempts: with the engine's
// backoff (RetryBase doubled, capped at RetryMax) the defaults retry for
// about an hour and a half before the fan-out is marked failed.
const deleteMaxAttempts = 25

// InsertOpts implements river.JobArgsWithInsertOpts.
func (DeleteArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: river.QueueDefault, MaxAttempts: deleteMaxAttempts, UniqueOpts: river.UniqueOpts{
		ByArgs: true,
		ByState: []rivertype.JobState{
			rivertype.JobStateAvailable, rivertype.JobStatePending, rivertype.JobStateRunning,
			rivertype.JobStateRetryable, rivertype.JobStateScheduled,
		},
	}}
}

// ScheduleDeleteTx inserts the job that deletes the fan-out's permission at
// Kinde at due (the end of the undo window; now or earlier runs it at once),
// inside tx. The fan-out must be in phase waiting, with its denial recorded
// unsettled under its id.
func (e *Engine) ScheduleDeleteTx(ctx context.Context, tx *store.Tx, fanoutID string, due time.Time) error {
	opts := DeleteArgs{}.InsertOpts()
	if due.After(time.Now()) {
		opts.ScheduledAt = due
	}
	if _, err := e.client.InsertTx(ctx, tx.Tx, DeleteArgs{FanoutID: fanoutID}, &opts); err != nil {
		return fmt.Errorf("schedule kinde delete: %w", err)
	}
	return nil
}

// deleteWorker works DeleteArgs. Undo and this job race on the fan-out's
// phase: whichever moves it first wins, so Kinde never sees a DELETE for a
// deletion that was undone, and an Undo never answers "done" for a
// permission Kinde is deleting.
type deleteWorker struct {
	river.WorkerDefaults[DeleteArgs]
	engine    *Engine
	kinde     PermissionDeleter
	denialTTL time.Duration
	timeout   time.Duration
}

// Timeout bounds one attempt; the kinde client's own retries happen inside it.
func (w *deleteWorker) Timeout(*river.Job[DeleteArgs]) time.Duration { return w.timeout }

// Work implements river.Worker.
func (w *deleteWorker) Work(ctx context.Context, job *river.Job[DeleteArgs]) error {
	e := w.engine
	id := job.Args.FanoutID
	log := e.log.With("fanout_id", id, "job_id", job.ID, "attempt", job.Attempt)
	f, err := e.db.Fanout(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return river.JobCancel(fmt.Errorf("fan-out %s not found", id))
	}
	if err != nil {
		return err
	}
	ok, err := e.db.StartKindeCall(ctx, id)
	if err != nil {
		return err
	}
	if !ok {
		log.InfoContext(ctx, "fanout: kinde delete not due any more", "phase", f.Phase)
		return nil // undone, or already done by an earlier attempt
	}
	e.Progress(ctx, id)

	ctx = kinde.WithPriority(ctx, kinde.PriorityFanout)
	err = w.kinde.DeletePermission(ctx, f.PermissionID)
	if errors.Is(err, kinde.ErrUnknownID) {
		// Gone already (deleted in Kinde's dashboard meanwhile, or by an
		// attempt whose answer was lost): the change is made.
		log.InfoContext(ctx, "fanout: permission already gone at Kinde", "permission_id", f.PermissionID)
		err = nil
	}
	if err != nil {
		return w.refused(ctx, log, job, err)
	}
	return w.done(ctx, log, job, f)
}

// refused records why Kinde refused: the page says it, and the job retries
// with backoff (the fan-out fails after the last attempt). The denial stays
// unsettled, so the key stays refused to everyone meanwhile.
func (w *deleteWorker) refused(ctx context.Context, log *slog.Logger, job *river.Job[DeleteArgs], cause error) error {
	e := w.engine
	bctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), bookkeepingTimeout)
	defer cancel()
	final := job.Attempt >= job.MaxAttempts
	log.WarnContext(bctx, "fanout: kinde refused the permission delete", "error", cause, "final", final)
	if _, err := e.db.KindeCallRefused(bctx, job.Args.FanoutID, ReadableError(cause), final); err != nil {
		log.WarnContext(bctx, "fanout: could not record the refusal", "error", err)
	}
	e.Progress(bctx, job.Args.FanoutID)
	return cause
}

// done settles the denial (from now on it applies to sessions whose claims
// predate the delete), marks the permission deleted and starts the
// refresh_claims jobs, in one transaction with the job's completion.
func (w *deleteWorker) done(ctx context.Context, log *slog.Logger, job *river.Job[DeleteArgs], f *store.Fanout) error {
	e := w.engine
	bctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), bookkeepingTimeout)
	defer cancel()
	items, err := e.db.PendingFanoutItems(bctx, f.ID)
	if err != nil {
		return err
	}
	jobs := make([]RefreshArgs, len(items))
	for i, it := range items {
		jobs[i] = RefreshArgs{FanoutID: f.ID, UserID: it.UserID, Round: it.Round}
	}
	at := time.Now() // Kinde answered: the delete happened before this
	err = e.db.InTx(bctx, func(tx *store.Tx) error {
		ok, err := tx.KindeCallDone(bctx, f.ID, at)
		if err != nil || !ok {
			return err
		}
		if _, err := tx.SettleDenials(bctx, f.ID, at, at.Add(w.denialTTL)); err != nil {
			return err
		}
		if err := tx.MarkPermissionDeleted(bctx, f.PermissionID, f.PermissionKey); err != nil {
			return err
		}
		// Kinde has deleted it: so does the local directory.
		if _, err := tx.DirDeletePermission(bctx, f.PermissionID); err != nil {
			return err
		}
		if err := e.EnqueueTx(bctx, tx, jobs); err != nil {
			return err
		}
		if err := tx.AddAudit(bctx, store.AuditEntry{ActorID: f.ActorID, Actor: f.ActorEmail,
			Action: "permission.delete", Target: f.PermissionID + " (" + f.PermissionKey + ")", Outcome: store.AuditOK,
			Detail: fmt.Sprintf("Deleted at Kinde; %d user(s) queued for a claims refresh (fan-out %s).", len(jobs), f.ID),
		}); err != nil {
			return err
		}
		return store.CompleteJobTx(bctx, tx, job)
	})
	if err != nil {
		// Kinde deleted it; the retry finds it gone and records this again.
		log.WarnContext(bctx, "fanout: could not record the kinde delete; will retry", "error", err)
		return err
	}
	log.InfoContext(bctx, "fanout: permission deleted at Kinde", "permission_key", f.PermissionKey, "users", len(jobs))
	events.NotifyTombstonesChanged(e.pub)
	e.Progress(bctx, f.ID)
	return nil
}
