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

// JobKindKindeCall is the River job kind that makes an admin change at
// Kinde once its undo window has passed (a permission deletion, an RBAC
// edit), then hands the fan-out's users to refresh_claims. Jobs queued under
// the deletion's earlier name, delete_permission, were renamed by migration
// 0060.
const JobKindKindeCall = "kinde_call"

// PermissionDeleter deletes a permission at Kinde
// (DELETE /api/v1/permissions/{id}). *kinde.Client satisfies it.
type PermissionDeleter interface {
	DeletePermission(ctx context.Context, id string) error
}

// KindeChange is an admin change that a fan-out carries to Kinde: the job
// of the fan-out's kind (HandleKindeChanges) calls it once the undo window
// has passed. The engine does the rest the same way for every change:
// undo races, retries with backoff, the fan-out's phase and counters,
// settling its denials, and starting the refresh_claims jobs of its users
// in the transaction that records Kinde's answer.
type KindeChange interface {
	// ApplyAtKinde makes the change at Kinde. An error is a refusal, retried
	// with backoff; a change Kinde has already (an earlier attempt whose
	// answer was lost) counts as made. outcome says what Kinde did, in words.
	ApplyAtKinde(ctx context.Context, f *store.Fanout) (outcome string, err error)
	// KindeRefused records a refusal (final: the last attempt), outside any
	// transaction.
	KindeRefused(ctx context.Context, f *store.Fanout, reason string, final bool)
	// KindeDoneTx records what the change made at Kinde means locally (the
	// directory, the change's own record, the audit entry), inside the
	// transaction that completes the job.
	KindeDoneTx(ctx context.Context, tx *store.Tx, f *store.Fanout, outcome string, at time.Time) error
}

// KindeCallArgs is the job that makes a fan-out's Kinde call, then starts
// its refresh_claims jobs. One per fan-out.
type KindeCallArgs struct {
	FanoutID string `json:"fanout_id" river:"unique"`
}

// Kind implements river.JobArgs.
func (KindeCallArgs) Kind() string { return JobKindKindeCall }

// kindeCallMaxAttempts bounds a Kinde call's attempts: with the engine's
// backoff (RetryBase doubled, capped at RetryMax) the defaults retry for
// about an hour and a half before the fan-out is marked failed.
const kindeCallMaxAttempts = 25

// InsertOpts implements river.JobArgsWithInsertOpts.
func (KindeCallArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: river.QueueDefault, MaxAttempts: kindeCallMaxAttempts, UniqueOpts: river.UniqueOpts{
		ByArgs: true,
		ByState: []rivertype.JobState{
			rivertype.JobStateAvailable, rivertype.JobStatePending, rivertype.JobStateRunning,
			rivertype.JobStateRetryable, rivertype.JobStateScheduled,
		},
	}}
}

// HandleKindeChanges sets who makes the Kinde call of fan-outs of kind
// (store.Fanout.Kind). Call it before Start. Permission deletions
// (KindPermissionDeleted) are handled by the engine itself when its Kinde
// client can delete permissions.
func (e *Engine) HandleKindeChanges(kind string, c KindeChange) {
	if e.started {
		panic("fanout: HandleKindeChanges after Start")
	}
	e.changes[kind] = c
}

// ScheduleKindeCallTx inserts the job that makes the fan-out's Kinde call at
// due (the end of the undo window; now or earlier runs it at once), inside
// tx. The fan-out must be in phase waiting, with its denials (if any)
// recorded unsettled under its id, and of a kind with a KindeChange.
func (e *Engine) ScheduleKindeCallTx(ctx context.Context, tx *store.Tx, fanoutID string, due time.Time) error {
	opts := KindeCallArgs{}.InsertOpts()
	if due.After(time.Now()) {
		opts.ScheduledAt = due
	}
	if _, err := e.client.InsertTx(ctx, tx.Tx, KindeCallArgs{FanoutID: fanoutID}, &opts); err != nil {
		return fmt.Errorf("schedule kinde call: %w", err)
	}
	return nil
}

// kindeCallWorker works KindeCallArgs. Undo and this job race on the
// fan-out's phase: whichever moves it first wins, so Kinde never sees a
// change that was undone, and an Undo never answers "done" for a change
// Kinde is making.
type kindeCallWorker struct {
	river.WorkerDefaults[KindeCallArgs]
	engine    *Engine
	denialTTL time.Duration
	timeout   time.Duration
}

// Timeout bounds one attempt; the kinde client's own retries happen inside it.
func (w *kindeCallWorker) Timeout(*river.Job[KindeCallArgs]) time.Duration { return w.timeout }

// Work implements river.Worker.
func (w *kindeCallWorker) Work(ctx context.Context, job *river.Job[KindeCallArgs]) error {
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
	change := e.changes[f.Kind]
	if change == nil {
		return river.JobCancel(fmt.Errorf("fan-out %s: no Kinde call for kind %q", id, f.Kind))
	}
	ok, err := e.db.StartKindeCall(ctx, id)
	if err != nil {
		return err
	}
	if !ok {
		log.InfoContext(ctx, "fanout: kinde call not due any more", "phase", f.Phase)
		return nil // undone, or already done by an earlier attempt
	}
	e.Progress(ctx, id)

	outcome, err := change.ApplyAtKinde(kinde.WithPriority(ctx, kinde.PriorityFanout), f)
	// Kinde answered: the change happened before this. Read the clock now,
	// not after the bookkeeping's queries: a later time would also deny the
	// key to tokens granted after the change (a key created again at once).
	at := time.Now()
	if err != nil {
		return w.refused(ctx, log, job, f, change, err)
	}
	return w.done(ctx, log, job, f, change, outcome, at)
}

// refused records why Kinde refused: the page says it, and the job retries
// with backoff (the fan-out fails after the last attempt). The denial stays
// unsettled, so the key stays refused to everyone meanwhile.
func (w *kindeCallWorker) refused(ctx context.Context, log *slog.Logger, job *river.Job[KindeCallArgs], f *store.Fanout,
	change KindeChange, cause error) error {
	e := w.engine
	bctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), bookkeepingTimeout)
	defer cancel()
	final := job.Attempt >= job.MaxAttempts
	log.WarnContext(bctx, "fanout: kinde refused the change", "kind", f.Kind, "error", cause, "final", final)
	reason := ReadableError(cause)
	if _, err := e.db.KindeCallRefused(bctx, job.Args.FanoutID, reason, final); err != nil {
		log.WarnContext(bctx, "fanout: could not record the refusal", "error", err)
	}
	change.KindeRefused(bctx, f, reason, final)
	e.Progress(bctx, job.Args.FanoutID)
	return cause
}

// done settles the fan-out's denials (from now on they apply to sessions
// whose claims predate the change), records the change locally
// (KindeChange.KindeDoneTx) and starts the refresh_claims jobs, in one
// transaction with the job's completion. at is when Kinde answered.
func (w *kindeCallWorker) done(ctx context.Context, log *slog.Logger, job *river.Job[KindeCallArgs], f *store.Fanout,
	change KindeChange, outcome string, at time.Time) error {
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
	err = e.db.InTx(bctx, func(tx *store.Tx) error {
		ok, err := tx.KindeCallDone(bctx, f.ID, at)
		if err != nil || !ok {
			return err
		}
		if _, err := tx.SettleDenials(bctx, f.ID, at, at.Add(w.denialTTL)); err != nil {
			return err
		}
		if err := change.KindeDoneTx(bctx, tx, f, outcome, at); err != nil {
			return err
		}
		if err := e.EnqueueTx(bctx, tx, jobs); err != nil {
			return err
		}
		return store.CompleteJobTx(bctx, tx, job)
	})
	if err != nil {
		// Kinde made it; the retry finds it made and records this again.
		log.WarnContext(bctx, "fanout: could not record the kinde call; will retry", "error", err)
		return err
	}
	log.InfoContext(bctx, "fanout: change made at Kinde", "kind", f.Kind, "outcome", outcome, "users", len(jobs))
	events.NotifyTombstonesChanged(e.pub)
	e.Progress(bctx, f.ID)
	return nil
}

// permissionDeletion is the Kinde call of a permission deletion
// (KindPermissionDeleted): DELETE the permission, then mark it deleted in
// the id → key map and the directory.
type permissionDeletion struct{ kinde PermissionDeleter }

func (d permissionDeletion) ApplyAtKinde(ctx context.Context, f *store.Fanout) (string, error) {
	err := d.kinde.DeletePermission(ctx, f.PermissionID)
	if errors.Is(err, kinde.ErrUnknownID) {
		// Gone already (deleted in Kinde's dashboard meanwhile, or by an
		// attempt whose answer was lost): the change is made.
		return "Kinde had deleted " + f.PermissionKey + " already.", nil
	}
	if err != nil {
		return "", err
	}
	return "Kinde deleted " + f.PermissionKey + ".", nil
}

func (permissionDeletion) KindeRefused(context.Context, *store.Fanout, string, bool) {}

func (permissionDeletion) KindeDoneTx(ctx context.Context, tx *store.Tx, f *store.Fanout, _ string, _ time.Time) error {
	if err := tx.MarkPermissionDeleted(ctx, f.PermissionID, f.PermissionKey); err != nil {
		return err
	}
	// Kinde has deleted it: so does the local directory.
	if _, err := tx.DirDeletePermission(ctx, f.PermissionID); err != nil {
		return err
	}
	return tx.AddAudit(ctx, store.AuditEntry{ActorID: f.ActorID, Actor: f.ActorEmail,
		Action: "permission.delete", Target: f.PermissionID + " (" + f.PermissionKey + ")", Outcome: store.AuditOK,
		Detail: fmt.Sprintf("Deleted at Kinde; %d user(s) queued for a claims refresh (fan-out %s).", f.Total, f.ID),
	})
}
