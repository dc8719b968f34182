package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"permsync/auth"
	"permsync/events"
	"permsync/handlers"
	"permsync/logctx"
	"permsync/store"
)

// Server timeouts. WriteTimeout is 0 because SSE responses stream for as long
// as a page is open; handlers get a per-request deadline from the context
// timeout middleware instead.
const (
	readHeaderTimeout = 10 * time.Second
	readTimeout       = 30 * time.Second
	idleTimeout       = 120 * time.Second
	shutdownTimeout   = 10 * time.Second
	sweepInterval     = 10 * time.Minute
)

// App is permsync, wired: database, OIDC client, sessions, refresher and HTTP
// handler. Build it with New, serve it with Run or Serve, then Close it.
type App struct {
	cfg       Config
	log       *slog.Logger
	db        *store.DB
	handler   http.Handler
	refresher *auth.Refresher
	sessions  *auth.SessionStore
	live      *liveSync
	metrics   *metrics // nil when PERMSYNC_METRICS_ADDR=off
}

// New wires the app by hand: store → auth → handlers. The issuer must be
// reachable (its discovery document is read here).
func New(ctx context.Context, cfg Config, log *slog.Logger) (*App, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = logctx.Wrap(log) // *Context log calls carry the request id
	if cfg.PostLogoutRedirect == "" {
		cfg.PostLogoutRedirect = cfg.SiteURL + "/"
	}
	db, err := store.Open(ctx, store.Options{URL: cfg.DatabaseURL, DataDir: cfg.DataDir, Logger: log.With("component", "store")})
	if err != nil {
		return nil, err
	}
	a := &App{cfg: cfg, log: log, db: db}
	if err := a.wire(ctx); err != nil {
		db.Close()
		return nil, err
	}
	return a, nil
}

func (a *App) wire(ctx context.Context) error {
	cfg, log := a.cfg, a.log
	keys, err := auth.NewKeyring(cfg.Secrets)
	if err != nil {
		return err
	}
	hc := &http.Client{Timeout: 15 * time.Second}
	oidcClient, err := auth.NewOIDC(ctx, auth.Config{
		IssuerURL: cfg.IssuerURL, ClientID: cfg.ClientID, ClientSecret: cfg.ClientSecret, SiteURL: cfg.SiteURL,
		Audience: cfg.Audience, Scope: cfg.Scope, PostLoginRedirect: cfg.PostLoginRedirect,
		PostLogoutRedirect: cfg.PostLogoutRedirect, HTTPClient: hc, Logger: log.With("component", "oidc"),
	}, keys)
	if err != nil {
		return err
	}

	a.metrics, err = newMetrics(cfg, a.db, log)
	if err != nil {
		return err
	}

	// Live sync: events, the cached permission state and, when M2M
	// credentials exist, the Management API client (the refresher uses it to
	// clear Kinde's claim cache before a button refresh), River and the
	// admin service.
	live, err := newLiveSync(ctx, cfg, a.db, hc, a.metrics, log)
	if err != nil {
		return err
	}
	a.live = live
	var claims auth.ClaimsInvalidator
	if live.kc != nil {
		claims = live.kc
	}

	a.sessions = auth.NewSessionStore(a.db, keys, cfg.SiteURL, log.With("component", "sessions"))
	a.sessions.SetLimits(auth.SessionLimits{Idle: cfg.SessionIdleTimeout, MaxPerUser: cfg.MaxSessionsPerUser,
		// A session a limit ended: its open pages leave at once (each
		// stream checks whether its own session is the one gone).
		OnEnd: func(_ context.Context, userID, why string) {
			events.PublishJSON(live.pub, events.UserTopic(userID), events.EventSessionEnded, events.SessionEndedData{Reason: why})
		}})
	a.refresher = auth.NewRefresher(a.db, oidcClient, keys, claims, log.With("component", "refresher"),
		append(a.metrics.refreshOptions(), auth.WithClaimsRefreshInterval(cfg.ClaimsRefreshInterval))...)
	if live.admin != nil {
		live.admin.UseTokenRevoker(a.refresher) // revoking sessions revokes their refresh tokens at Kinde too
	}
	mw := auth.NewMiddleware(a.sessions, a.refresher, live.cache, log.With("component", "auth"))
	// The background refresher reads epochs from the database, not the cache:
	// it wakes on the same event that invalidates the cache, and may run
	// before the cache has received it.
	live.bg = auth.NewBackgroundRefresher(a.refresher, a.db, a.db, live.broker, 0,
		log.With("component", "background_refresh"))

	deps := handlers.Deps{
		Log: log, OIDC: oidcClient, Sessions: a.sessions, Refresher: a.refresher, Middleware: mw,
		PermState: live.cache, DB: a.db, SiteURL: cfg.SiteURL, TrustedProxies: cfg.TrustedProxies, AdminPermission: cfg.AdminPermission,
		Events: live.broker, SessionRows: a.db, Shutdown: live.shutdown, Metrics: a.metrics.handlerMetrics(),
	}
	if live.admin != nil {
		deps.WebhookDecoder, deps.WebhookReceiver, deps.AdminWebhooks = live.hooks, live.sync, live.sync
		deps.Admin = live.admin
	}
	e, err := handlers.NewServer(deps)
	if err != nil {
		live.cache.Close()
		return err
	}
	a.handler = e
	return nil
}

// Events is where the app publishes events. Code (and tests) that change
// epochs or tombstones behind the app's back must publish
// events.NotifyEpochChanged / NotifyTombstonesChanged here, or the cached
// permission state will not see the change until its next resync.
func (a *App) Events() events.Publisher { return a.live.pub }

// SyncDirectory runs the directory's full sync (the reconciliation) now and
// waits for it to finish; without Management API credentials there is
// nothing to sync.
func (a *App) SyncDirectory(ctx context.Context) error {
	if a.live.syncer == nil {
		return nil
	}
	return a.live.syncer.RunOnce(ctx)
}

// Handler is the app's HTTP handler.
func (a *App) Handler() http.Handler { return a.handler }

// DB is the app's database.
func (a *App) DB() *store.DB { return a.db }

// Refresher is the app's one session refresher (for background refresh and
// tests).
func (a *App) Refresher() *auth.Refresher { return a.refresher }

// Run listens on cfg.Addr and serves until ctx ends.
func (a *App) Run(ctx context.Context) error {
	ln, err := net.Listen("tcp", a.cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", a.cfg.Addr, err)
	}
	return a.Serve(ctx, ln)
}

// Serve serves on ln until ctx ends, then shuts down gracefully: new
// connections stop at once, requests in flight get shutdownTimeout to finish.
func (a *App) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{
		Handler:           a.handler,
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readTimeout,
		WriteTimeout:      0,
		IdleTimeout:       idleTimeout,
		ErrorLog:          slog.NewLogLogger(a.log.Handler(), slog.LevelWarn),
	}
	// Open event streams end as soon as shutdown starts.
	srv.RegisterOnShutdown(a.live.closeStreams)
	stopMetrics, err := a.serveMetrics()
	if err != nil {
		ln.Close()
		return err
	}
	defer stopMetrics()
	if err := a.live.start(ctx); err != nil {
		ln.Close()
		return fmt.Errorf("start background work: %w", err)
	}
	defer a.live.stop(context.WithoutCancel(ctx))
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	go a.sweep(ctx)
	a.log.Info("serving", "addr", ln.Addr().String(), "site_url", a.cfg.SiteURL)

	select {
	case err := <-errc:
		return fmt.Errorf("http server: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		srv.Close()
		return fmt.Errorf("shutdown: %w", err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	a.log.Info("stopped")
	return nil
}

// sweep deletes expired session rows now and then.
func (a *App) sweep(ctx context.Context) {
	t := time.NewTicker(sweepInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			now := time.Now()
			var idleBefore time.Time
			if a.cfg.SessionIdleTimeout > 0 {
				idleBefore = now.Add(-a.cfg.SessionIdleTimeout)
			}
			if n, err := a.db.DeleteExpiredSessions(ctx, now, idleBefore); err != nil {
				a.log.Warn("sweep expired sessions", "error", err)
			} else if n > 0 {
				a.log.Debug("swept expired sessions", "count", n)
			}
		}
	}
}

// Close releases the database.
func (a *App) Close() error { return a.db.Close() }
