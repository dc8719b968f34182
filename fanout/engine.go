package fanout

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

	"permsync/events"
	"permsync/store"
)

// Options tune the engine. Zero values take the defaults.
type Options struct {
	// MaxWorkers is how many fan-out jobs run at once (default 4). The
	// kinde client's shared rate limit sets the real pace; this only bounds
	// how many wait for it.
	MaxWorkers int
	// CallsPerJob is how many refresh_claims calls one job has in flight at
	// once (default 1; CallsPerJobForRate sizes it from the Kinde rate).
	CallsPerJob int
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
	// MaintenanceInterval is how often expired denials are removed and
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

// CallsPerJobForRate is a CallsPerJob that, with WorkersForRate workers,
// keeps a second's worth of refresh_claims calls in flight for a shared
// Kinde rate limit of rate calls per second (between 1 and 16 per job), so
// the limit, not Kinde's latency or a busy machine, sets the pace. Calls
// that wait for their turn are cheap: a goroutine each.
func CallsPerJobForRate(rate float64) int {
	return min(16, max(1, int(math.Ceil(rate/float64(WorkersForRate(rate))))))
}

func (o *Options) defaults() {
	if o.MaxWorkers <= 0 {
		o.MaxWorkers = 4
	}
	if o.CallsPerJob <= 0 {
		o.CallsPerJob = 1
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

// Deps are what the engine's workers need.
type Deps struct {
	Kinde ClaimsRefresher // required: the fan-out worker's refresh_claims
	// Deleter makes a deletion's Kinde call after its undo window
	// (ScheduleKindeCallTx); nil: Kinde itself, when it is a
	// PermissionDeleter.
	Deleter PermissionDeleter
	// DenialTTL is how long the denials of a change carried to Kinde
	// (a deletion, an RBAC edit) last once Kinde made it (default
	// DefaultTombstoneTTL).
	DenialTTL time.Duration
	Events    events.Publisher // required: claims-changed and fanout-progress
	// Observer, when set, is told how fan-out items end (metrics).
	Observer JobObserver
	Logger   *slog.Logger
}

// Engine runs permsync's durable jobs on River: refresh_claims jobs, one per
// chunk of a fan-out's users, the periodic maintenance, and the processing of
// received Kinde webhooks (through the WebhookHandler given to
// HandleWebhooks). Jobs live in the database (SQLite through riversqlite,
// Postgres through riverdatabasesql; River's tables are migrated by
// store.Open), so they survive a restart. Callers enqueue inside their own
// transaction, so a job exists exactly when the records it works on do.
type Engine struct {
	db       *store.DB
	pub      events.Publisher
	log      *slog.Logger
	client   *river.Client[*sql.Tx]
	webhooks WebhookHandler         // set by HandleWebhooks before Start; nil: none
	workers  int                    // Options.MaxWorkers: how many chunks a fan-out is cut into at least
	changes  map[string]KindeChange // by fan-out kind; set before Start
	started  bool
}

// New returns an engine on db. Call HandleWebhooks (optional), then Start;
// Stop at the end. The engine enqueues jobs before Start too.
func New(db *store.DB, deps Deps, opts Options) (*Engine, error) {
	if db == nil || deps.Kinde == nil || deps.Events == nil {
		return nil, errors.New("fanout: New: db, Kinde and Events are required")
	}
	opts.defaults()
	log := deps.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	e := &Engine{db: db, pub: deps.Events, log: log, workers: opts.MaxWorkers, changes: map[string]KindeChange{}}
	workers := river.NewWorkers()
	if err := river.AddWorkerSafely(workers, &refreshWorker{
		db: db, kinde: deps.Kinde, pub: deps.Events, obs: deps.Observer, log: log, timeout: opts.JobTimeout,
		budget: opts.JobTimeout / 2, calls: opts.CallsPerJob,
	}); err != nil {
		return nil, fmt.Errorf("fanout: register worker: %w", err)
	}
	if err := river.AddWorkerSafely(workers, &maintenanceWorker{
		engine: e, obs: deps.Observer, staleAfter: opts.RescueStuckJobsAfter + opts.MaintenanceInterval,
	}); err != nil {
		return nil, fmt.Errorf("fanout: register worker: %w", err)
	}
	if err := river.AddWorkerSafely(workers, &webhookWorker{engine: e}); err != nil {
		return nil, fmt.Errorf("fanout: register worker: %w", err)
	}
	deleter := deps.Deleter
	if deleter == nil {
		deleter, _ = deps.Kinde.(PermissionDeleter)
	}
	if deleter != nil {
		e.changes[KindPermissionDeleted] = permissionDeletion{kinde: deleter}
	}
	if deps.DenialTTL <= 0 {
		deps.DenialTTL = DefaultTombstoneTTL
	}
	if err := river.AddWorkerSafely(workers, &kindeCallWorker{engine: e, denialTTL: deps.DenialTTL,
		timeout: opts.JobTimeout}); err != nil {
		return nil, fmt.Errorf("fanout: register worker: %w", err)
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
		return nil, fmt.Errorf("fanout: river client: %w", err)
	}
	e.client = client
	return e, nil
}

// HandleWebhooks sets who processes received webhooks. Call it before
// Start; webhook jobs run only after Start.
func (e *Engine) HandleWebhooks(h WebhookHandler) {
	if e.started {
		panic("fanout: HandleWebhooks after Start")
	}
	e.webhooks = h
}

// Start starts working jobs until Stop.
func (e *Engine) Start(ctx context.Context) error {
	e.started = true
	return e.client.Start(ctx)
}

// Stop stops the engine gracefully: running jobs get up to grace to
// finish, then they are cancelled (and retried after the next start).
func (e *Engine) Stop(ctx context.Context, grace time.Duration) error {
	sctx, cancel := context.WithTimeout(ctx, grace)
	defer cancel()
	err := e.client.Stop(sctx)
	if err == nil || !errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	cctx, cancel2 := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel2()
	return e.client.StopAndCancel(cctx)
}

// StopNow stops at once, cancelling running jobs (tests simulate a crash
// with it).
func (e *Engine) StopNow(ctx context.Context) error { return e.client.StopAndCancel(ctx) }

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
