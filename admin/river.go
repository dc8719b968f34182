package admin

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"permsync/store"
)

// RiverOptions tune the job client. Zero values take the defaults.
type RiverOptions struct {
	// MaxWorkers is how many fan-out jobs run at once (default 4). The
	// kinde client's shared rate limit sets the real pace; this only bounds
	// how many wait for it.
	MaxWorkers int
	// FetchPollInterval is how often idle workers look for new jobs (default
	// 1s; jobs inserted by this process are picked up at once anyway).
	FetchPollInterval time.Duration
	// MaxAttempts per job before its user is marked failed (default 12).
	MaxAttempts int
	// RetryBase and RetryMax shape the backoff between attempts: RetryBase
	// doubled per attempt with jitter, capped at RetryMax (defaults 1s, 5m).
	RetryBase, RetryMax time.Duration
	// JobTimeout bounds one attempt, the kinde client's own retries included
	// (default 2m).
	JobTimeout time.Duration
	// RescueStuckJobsAfter is when a job left running by a crashed process is
	// retried (default 10m; at least JobTimeout).
	RescueStuckJobsAfter time.Duration
	// MaintenanceInterval is how often expired tombstones are removed and
	// abandoned fan-out items are reconciled (default 1m).
	MaintenanceInterval time.Duration
	// ID names this client; it must be unique per database among running
	// clients. "" lets River pick one.
	ID string
}

// WorkersForRate is a MaxWorkers that lets fan-out jobs keep up with a shared
// Kinde rate limit of rate calls per second. River fetches at most
// MaxWorkers jobs per fetch cooldown (100 ms), so a fixed 4 workers caps a
// fan-out near 40 users/s whatever the limit; this allows about twice the
// rate, between the default 4 and 32.
func WorkersForRate(rate float64) int {
	return min(32, max(4, int(math.Ceil(rate/5))))
}

func (o *RiverOptions) defaults() {
	if o.MaxWorkers <= 0 {
		o.MaxWorkers = 4
	}
	if o.FetchPollInterval <= 0 {
		o.FetchPollInterval = time.Second
	}
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = 12
	}
	if o.RetryBase <= 0 {
		o.RetryBase = time.Second
	}
	if o.RetryMax <= 0 {
		o.RetryMax = 5 * time.Minute
	}
	if o.JobTimeout <= 0 {
		o.JobTimeout = 2 * time.Minute
	}
	if o.RescueStuckJobsAfter <= 0 {
		o.RescueStuckJobsAfter = 10 * time.Minute
	}
	o.RescueStuckJobsAfter = max(o.RescueStuckJobsAfter, o.JobTimeout)
	if o.MaintenanceInterval <= 0 {
		o.MaintenanceInterval = time.Minute
	}
}

// NewRiverClient returns the River client that runs fan-out jobs on db
// (SQLite through riversqlite, Postgres through riverdatabasesql; River's
// tables are migrated by store.Open). Jobs live in the database, so they
// survive a restart. The client also inserts jobs: pass it to NewService.
// Start it with Start(ctx) and stop it with StopRiver.
func NewRiverClient(db *store.DB, deps JobDeps, opts RiverOptions) (*river.Client[*sql.Tx], error) {
	if db == nil || deps.Kinde == nil || deps.Events == nil {
		return nil, errors.New("admin: NewRiverClient: db, Kinde and Events are required")
	}
	opts.defaults()
	log := deps.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	workers := river.NewWorkers()
	if err := river.AddWorkerSafely(workers, &refreshWorker{
		db: db, kinde: deps.Kinde, pub: deps.Events, obs: deps.Observer, log: log, timeout: opts.JobTimeout,
	}); err != nil {
		return nil, fmt.Errorf("admin: register worker: %w", err)
	}
	if err := river.AddWorkerSafely(workers, &maintenanceWorker{
		db: db, pub: deps.Events, obs: deps.Observer, log: log, staleAfter: opts.RescueStuckJobsAfter + opts.MaintenanceInterval,
	}); err != nil {
		return nil, fmt.Errorf("admin: register worker: %w", err)
	}
	if deps.Webhooks != nil {
		if err := river.AddWorkerSafely(workers, newWebhookWorker(db, deps.Webhooks, log)); err != nil {
			return nil, fmt.Errorf("admin: register worker: %w", err)
		}
	}
	cooldown := min(100*time.Millisecond, opts.FetchPollInterval)
	client, err := river.NewClient(db.RiverDriver(), &river.Config{
		ID:                   opts.ID,
		Logger:               log.With("subsystem", "river"),
		Queues:               map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: opts.MaxWorkers}},
		Workers:              workers,
		MaxAttempts:          opts.MaxAttempts,
		RetryPolicy:          &backoffPolicy{base: opts.RetryBase, max: opts.RetryMax},
		JobTimeout:           opts.JobTimeout,
		RescueStuckJobsAfter: opts.RescueStuckJobsAfter,
		FetchCooldown:        cooldown,
		FetchPollInterval:    opts.FetchPollInterval,
		PeriodicJobs: []*river.PeriodicJob{
			river.NewPeriodicJob(river.PeriodicInterval(opts.MaintenanceInterval),
				func() (river.JobArgs, *river.InsertOpts) { return MaintenanceArgs{}, nil },
				&river.PeriodicJobOpts{ID: JobKindMaintenance, RunOnStart: true}),
		},
	})
	if err != nil {
		return nil, fmt.Errorf("admin: river client: %w", err)
	}
	return client, nil
}

// StopRiver stops the client gracefully: running jobs get up to grace to
// finish, then they are cancelled (and retried after the next start).
func StopRiver(ctx context.Context, c *river.Client[*sql.Tx], grace time.Duration) error {
	sctx, cancel := context.WithTimeout(ctx, grace)
	defer cancel()
	err := c.Stop(sctx)
	if err == nil || !errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	cctx, cancel2 := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel2()
	return c.StopAndCancel(cctx)
}

// backoffPolicy retries after base·2^(attempt-1), capped at max, with the
// upper half jittered so that a fan-out's failures do not retry in step.
type backoffPolicy struct{ base, max time.Duration }

// NextRetry implements river.ClientRetryPolicy.
func (p *backoffPolicy) NextRetry(job *rivertype.JobRow) time.Time {
	d := p.base << min(max(job.Attempt-1, 0), 30)
	if d <= 0 || d > p.max {
		d = p.max
	}
	d = d/2 + rand.N(d/2+1)
	return time.Now().Add(d)
}
