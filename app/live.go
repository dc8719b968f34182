package app

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"permsync/admin"
	"permsync/auth"
	"permsync/directory"
	"permsync/events"
	"permsync/fanout"
	"permsync/kinde"
	"permsync/kindesync"
	"permsync/store"
)

// startupKindeTimeout bounds each Kinde call made at start (permission key
// sync, webhook registration); both are non-fatal.
const startupKindeTimeout = 10 * time.Second

// riverGrace is how long running jobs get to finish at shutdown.
const riverGrace = 5 * time.Second

// liveSync is the machinery that keeps permissions true while the app runs
// (docs/ARCHITECTURE.md): the event broker (and, on Postgres, its bridge to the other
// replicas), the cached permission state, background refresh and, with M2M
// credentials, the Management API client, the fan-out engine, the admin
// service and Kinde sync, which receives and processes Kinde webhooks.
type liveSync struct {
	log    *slog.Logger
	broker *events.Broker
	pub    events.Publisher // broker, or the Postgres bridge in front of it
	bridge *events.PGBridge // nil on SQLite
	cache  *auth.PermCache
	bg     *auth.BackgroundRefresher
	kc     *kinde.Client          // nil without M2M credentials
	jobs   *fanout.Engine         // nil without M2M credentials
	admin  *admin.Service         // nil without M2M credentials
	sync   *kindesync.Syncer      // nil without M2M credentials
	hooks  *kinde.WebhookVerifier // nil without M2M credentials
	dir    *directory.Directory   // the local copy of Kinde's RBAC state
	syncer *directory.Syncer      // nil without M2M credentials
	site   string                 // the app's public URL
	issuer string

	shutdown     chan struct{} // closed when the HTTP server starts shutting down
	shutdownOnce sync.Once
	cancel       context.CancelFunc
	wg           sync.WaitGroup
}

// newLiveSync builds the broker, the permission cache (loading it) and, with
// M2M credentials, the Kinde client, fan-out engine, admin service and
// Kinde sync.
func newLiveSync(ctx context.Context, cfg Config, db *store.DB, hc *http.Client, m *metrics,
	log *slog.Logger) (*liveSync, error) {
	l := &liveSync{log: log, broker: events.NewBroker(), site: cfg.SiteURL, issuer: cfg.IssuerURL,
		shutdown: make(chan struct{})}
	l.pub = l.broker
	if db.Shared() {
		b, err := events.NewPGBridge(ctx, l.broker, db.SQL(), cfg.DatabaseURL, log.With("component", "events"))
		if err != nil {
			return nil, err
		}
		l.bridge, l.pub = b, b
	}
	cache, err := auth.NewPermCache(ctx, db, l.broker, log.With("component", "permcache"))
	if err != nil {
		return nil, err
	}
	l.cache = cache
	l.dir = directory.New(db, log.With("component", "directory"))
	if cfg.M2MClientID == "" || cfg.M2MClientSecret == "" {
		return l, nil
	}
	l.kc = kinde.New(kinde.Config{
		// The Management API, its audience and M2M tokens live on the Kinde
		// domain, never on a custom sign-in domain.
		IssuerURL: cfg.KindeDomain, ClientID: cfg.M2MClientID, ClientSecret: cfg.M2MClientSecret,
		Rate: cfg.KindeRate, Logger: log.With("component", "kinde"), Observer: m.kindeObserver(),
	})
	fail := func(err error) (*liveSync, error) {
		cache.Close()
		return nil, err
	}
	l.jobs, err = fanout.New(db, fanout.Deps{Kinde: l.kc, Events: l.pub, Observer: m.jobObserver(),
		Logger: log.With("component", "jobs")}, fanout.Options{
		MaxWorkers: fanout.WorkersForRate(cfg.KindeRate), CallsPerJob: fanout.CallsPerJobForRate(cfg.KindeRate), JobTimeout: cfg.JobTimeout, RescueStuckJobsAfter: cfg.JobRescueAfter,
	})
	if err != nil {
		return fail(err)
	}
	l.admin, err = admin.NewService(db, l.kc, db, l.pub, l.jobs, admin.Options{
		AdminPermission: cfg.AdminPermission, Webhooks: kindesync.Stats{DB: db}, Directory: l.dir,
		UndoWindow: cfg.UndoWindow,
		Logger:     log.With("component", "admin"),
	})
	if err != nil {
		return fail(err)
	}
	l.sync, err = kindesync.New(db, l.kc, db, l.pub, l.jobs, l.dir, l.admin.PermissionKeys(), kindesync.Options{
		Logger: log.With("component", "kindesync"),
	})
	if err != nil {
		return fail(err)
	}
	l.jobs.HandleWebhooks(l.sync)
	l.jobs.HandleKindeChanges(admin.FanoutRBACEdit, l.admin.EditChanges())
	l.hooks = kinde.NewWebhookVerifier(cfg.KindeDomain, hc)
	// The directory's sync enforces what it finds taken away the way a
	// webhook would have: kindesync is its Enforcer.
	l.syncer = directory.NewSyncer(db, l.kc, l.sync, directory.SyncOptions{
		Interval: cfg.ReconcileInterval, Logger: log.With("component", "directory"),
	})
	return l, nil
}

// start runs the background parts until stop: the cache's drain loop,
// background refresh, the Postgres bridge and River. With M2M credentials it
// also records permission keys and registers the webhook endpoint at Kinde;
// both are best effort.
func (l *liveSync) start(ctx context.Context) error {
	rctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	l.cancel = cancel
	l.wg.Go(func() { l.cache.Run(rctx) })
	if l.bg != nil {
		l.wg.Go(func() { l.bg.Run(rctx) })
	}
	if l.bridge != nil {
		l.wg.Go(func() { l.bridge.Run(rctx) })
	}
	if l.jobs == nil {
		l.log.Info("no M2M credentials: Kinde webhooks and the admin fan-out are off")
		return nil
	}
	if err := l.jobs.Start(rctx); err != nil {
		cancel()
		return err
	}
	kctx, kcancel := context.WithTimeout(ctx, startupKindeTimeout)
	defer kcancel()
	if err := l.sync.SyncPermissionKeys(kctx); err != nil {
		l.log.Warn("could not record Kinde's permission keys at start; webhooks for permissions deleted before the next listing may not resolve",
			"error", err)
	}
	l.registerWebhook(kctx)
	// The directory's full sync runs in the background from the start, then
	// again every PERMSYNC_RECONCILE_INTERVAL; the app serves meanwhile.
	l.wg.Go(func() { l.syncer.Run(rctx) })
	return nil
}

// registerWebhook makes sure Kinde sends webhooks to this app. It registers
// only endpoints Kinde can use or that are ours to test (https, or an issuer
// on this machine such as devkinde); otherwise it logs how to do it.
func (l *liveSync) registerWebhook(ctx context.Context) {
	endpoint := strings.TrimRight(l.site, "/") + "/webhooks/kinde"
	if !strings.HasPrefix(endpoint, "https://") && !isLoopback(l.issuer) {
		kindesync.LogWebhookHelp(l.log, endpoint, errors.New("the site URL is not https; Kinde only delivers to https endpoints"))
		return
	}
	created, err := kindesync.EnsureWebhook(ctx, l.kc, endpoint)
	switch {
	case err != nil:
		kindesync.LogWebhookHelp(l.log, endpoint, err)
	case created:
		l.log.Info("registered the webhook endpoint at Kinde", "endpoint", endpoint)
	default:
		l.log.Info("webhook endpoint already registered at Kinde", "endpoint", endpoint)
	}
}

// isLoopback reports a URL (of any scheme) on this machine.
func isLoopback(rawURL string) bool {
	u, err := url.Parse(rawURL)
	return err == nil && isLoopbackHost(u.Hostname())
}

// closeStreams ends every open event stream (the HTTP server calls it when
// it starts shutting down; streams would otherwise hold Shutdown up).
func (l *liveSync) closeStreams() {
	l.shutdownOnce.Do(func() { close(l.shutdown) })
}

// stop stops the fan-out engine (running jobs get riverGrace) and the
// background loops.
func (l *liveSync) stop(ctx context.Context) {
	l.closeStreams()
	if l.jobs != nil && l.cancel != nil {
		if err := l.jobs.Stop(ctx, riverGrace); err != nil {
			l.log.Warn("stop jobs", "error", err)
		}
	}
	if l.cancel != nil {
		l.cancel()
	}
	l.wg.Wait()
	l.cache.Close()
}
