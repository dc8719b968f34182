package fanout

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"permsync/store"
)

// JobKindMaintenance is the periodic housekeeping job's kind.
const JobKindMaintenance = "admin_maintenance"

// MaintenanceArgs is the periodic housekeeping job: it removes expired
// denials and fails fan-out items whose job River gave up on without the
// worker recording it (a process that died during the last attempt).
type MaintenanceArgs struct{}

// Kind implements river.JobArgs.
func (MaintenanceArgs) Kind() string { return JobKindMaintenance }

// InsertOpts makes the job unique while it is waiting, so restarts do not
// pile copies up.
func (MaintenanceArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{
		MaxAttempts: 1,
		UniqueOpts: river.UniqueOpts{ByState: []rivertype.JobState{
			rivertype.JobStateAvailable, rivertype.JobStatePending, rivertype.JobStateRunning,
			rivertype.JobStateScheduled,
		}},
	}
}

type maintenanceWorker struct {
	river.WorkerDefaults[MaintenanceArgs]
	engine     *Engine
	obs        JobObserver // nil: not observed
	staleAfter time.Duration
}

// maxReconcile bounds how many items one run looks at.
const maxReconcile = 200

// Work implements river.Worker.
func (w *maintenanceWorker) Work(ctx context.Context, _ *river.Job[MaintenanceArgs]) error {
	db, log := w.engine.db, w.engine.log
	if n, err := db.ExpireDenials(ctx, time.Now()); err != nil {
		log.WarnContext(ctx, "fanout: could not expire denials", "error", err)
	} else if n > 0 {
		log.InfoContext(ctx, "fanout: expired denials", "count", n)
	}
	if h := w.engine.webhooks; h != nil {
		h.PruneWebhooks(ctx)
	}
	client := river.ClientFromContext[*sql.Tx](ctx)
	items, err := db.StalePendingFanoutItems(ctx, time.Now().Add(-w.staleAfter), maxReconcile)
	if err != nil {
		return err
	}
	for _, it := range items {
		w.reconcile(ctx, client, it)
	}
	return nil
}

// reconcile fails a pending item whose job is finished without it, and
// touches the others so they are looked at again later.
func (w *maintenanceWorker) reconcile(ctx context.Context, client *river.Client[*sql.Tx], it store.FanoutItem) {
	db, log := w.engine.db, w.engine.log
	job, err := client.JobGet(ctx, it.JobID)
	var msg string
	switch {
	case errors.Is(err, river.ErrNotFound):
		msg = "The job for this user disappeared before it finished. Retry the fan-out."
	case err != nil:
		log.WarnContext(ctx, "fanout: could not read job", "job_id", it.JobID, "error", err)
		return
	case job.State == rivertype.JobStateDiscarded || job.State == rivertype.JobStateCancelled:
		msg = "The job for this user gave up before it recorded why. Retry the fan-out."
	case job.State == rivertype.JobStateCompleted:
		msg = "The job for this user completed without recording the refresh. Retry the fan-out."
	default:
		_ = db.TouchFanoutItem(ctx, it.FanoutID, it.UserID)
		return
	}
	changed, err := db.FailFanoutItem(ctx, it.FanoutID, it.UserID, it.Attempts, msg)
	if err != nil {
		log.WarnContext(ctx, "fanout: could not fail abandoned item", "fanout_id", it.FanoutID, "user_id", it.UserID, "error", err)
		return
	}
	if changed {
		itemFinished(w.obs, store.FanoutItemFailed)
		log.WarnContext(ctx, "fanout: fan-out item abandoned by its job", "fanout_id", it.FanoutID, "user_id", it.UserID, "job_id", it.JobID)
		PublishProgress(ctx, db, w.engine.pub, log, it.FanoutID, it.UserID, store.FanoutItemFailed)
	}
}
