package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"permsync/auth"
	"permsync/fanout"
	"permsync/handlers"
	"permsync/kinde"
	"permsync/store"
)

// metrics is the app's Prometheus instrumentation, on its own registry
// (never the global one): the HTTP layer's metrics (webhook deliveries
// included), session refreshes, Kinde Management API calls, fan-out jobs,
// the Go runtime, the process and the database pool.
// A nil *metrics (PERMSYNC_METRICS_ADDR=off) records nothing.
type metrics struct {
	reg    *prometheus.Registry
	scrape http.Handler
	http   *handlers.Metrics

	refreshes       *prometheus.CounterVec
	refreshDuration *prometheus.HistogramVec

	kindeRequests    *prometheus.CounterVec
	kindeDuration    *prometheus.HistogramVec
	kindeRateLimited *prometheus.CounterVec
	kindeRetries     *prometheus.CounterVec

	fanoutItems   *prometheus.CounterVec
	fanoutRetries prometheus.Counter

	// addr is the metrics listener's address once it listens (own
	// listener only).
	mu   sync.Mutex
	addr string
}

// newMetrics builds the registry and every collector, or returns nil when
// metrics are off. With no PERMSYNC_METRICS_ADDR the HTTP layer serves GET
// /metrics on the main listener, to loopback clients only.
func newMetrics(cfg Config, db *store.DB, log *slog.Logger) (*metrics, error) {
	if cfg.MetricsAddr == MetricsOff {
		return nil, nil
	}
	reg := prometheus.NewRegistry()
	m := &metrics{
		reg: reg,
		scrape: promhttp.HandlerFor(reg, promhttp.HandlerOpts{
			ErrorLog:            slog.NewLogLogger(log.Handler(), slog.LevelWarn),
			ErrorHandling:       promhttp.ContinueOnError,
			Registry:            reg,
			MaxRequestsInFlight: 4,
		}),
		refreshes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "permsync_session_refreshes_total",
			Help: "Session refreshes, by reason (button, guard_expiry, guard_epoch, background) and outcome.",
		}, []string{"reason", "outcome"}),
		refreshDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "permsync_session_refresh_duration_seconds",
			Help:    "Time a session refresh took (lock, refresh_claims when asked, grant, save), by reason.",
			Buckets: []float64{.01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"reason"}),
		kindeRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "permsync_kinde_requests_total",
			Help: "Kinde Management API attempts, by method, endpoint pattern and status class (error: no response).",
		}, []string{"method", "endpoint", "status_class"}),
		kindeDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "permsync_kinde_request_duration_seconds",
			Help:    "Time one Kinde Management API attempt took, by method and endpoint pattern.",
			Buckets: []float64{.025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"method", "endpoint"}),
		kindeRateLimited: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "permsync_kinde_rate_limited_total",
			Help: "Kinde Management API attempts answered 429, by method and endpoint pattern.",
		}, []string{"method", "endpoint"}),
		kindeRetries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "permsync_kinde_retries_total",
			Help: "Kinde Management API requests sent again, by method, endpoint pattern and reason (rate_limited, server_error, network).",
		}, []string{"method", "endpoint", "reason"}),
		fanoutItems: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "permsync_fanout_items_total",
			Help: "Fan-out items (one user's refresh_claims) finished, by result (done, failed).",
		}, []string{"result"}),
		fanoutRetries: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "permsync_fanout_job_retries_total",
			Help: "Fan-out job attempts that failed and will be retried with backoff.",
		}),
	}
	var scrapeOnMain http.Handler
	if cfg.MetricsAddr == "" {
		scrapeOnMain = m.scrape
	}
	hm, err := handlers.NewMetrics(reg, scrapeOnMain)
	if err != nil {
		return nil, err
	}
	m.http = hm
	for _, c := range []prometheus.Collector{
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		collectors.NewDBStatsCollector(db.SQL(), "permsync"),
		m.refreshes, m.refreshDuration, m.kindeRequests, m.kindeDuration, m.kindeRateLimited, m.kindeRetries,
		m.fanoutItems, m.fanoutRetries,
	} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("metrics: %w", err)
		}
	}
	// Every reason × outcome exists from the start, so rates and alerts
	// see a zero rather than no series.
	for _, r := range []auth.Reason{auth.ReasonButton, auth.ReasonExpiring, auth.ReasonEpoch, auth.ReasonBackground} {
		for _, o := range []auth.RefreshOutcome{auth.OutcomeRefreshed, auth.OutcomeAlreadyRefreshed, auth.OutcomeEnded,
			auth.OutcomeKindeUnavailable, auth.OutcomeFailed} {
			m.refreshes.WithLabelValues(refreshReasonLabel(r), string(o))
		}
	}
	for _, r := range []string{store.FanoutItemDone, store.FanoutItemFailed} {
		m.fanoutItems.WithLabelValues(r)
	}
	return m, nil
}

// handlerMetrics is the HTTP layer's part (nil when metrics are off).
func (m *metrics) handlerMetrics() *handlers.Metrics {
	if m == nil {
		return nil
	}
	return m.http
}

// refreshOptions, kindeObserver and jobObserver hand m to auth, kinde and
// admin, or nothing when metrics are off (a nil *metrics in an interface
// would not be nil).
func (m *metrics) refreshOptions() []auth.RefresherOption {
	if m == nil {
		return nil
	}
	return []auth.RefresherOption{auth.WithRefreshObserver(refreshObserver{m})}
}

func (m *metrics) kindeObserver() kinde.Observer {
	if m == nil {
		return nil
	}
	return kindeObserver{m}
}

func (m *metrics) jobObserver() fanout.JobObserver {
	if m == nil {
		return nil
	}
	return jobObserver{m}
}

// refreshObserver adapts metrics to auth.RefreshObserver.
type refreshObserver struct{ m *metrics }

func (o refreshObserver) ObserveRefresh(reason auth.Reason, outcome auth.RefreshOutcome, took time.Duration) {
	r := refreshReasonLabel(reason)
	o.m.refreshes.WithLabelValues(r, string(outcome)).Inc()
	o.m.refreshDuration.WithLabelValues(r).Observe(took.Seconds())
}

// refreshReasonLabel names a refresh reason for metrics: the guard's two
// reasons say they come from the guard.
func refreshReasonLabel(r auth.Reason) string {
	switch r {
	case auth.ReasonButton:
		return "button"
	case auth.ReasonExpiring:
		return "guard_expiry"
	case auth.ReasonEpoch:
		return "guard_epoch"
	case auth.ReasonBackground:
		return "background"
	}
	return "other"
}

// kindeObserver adapts metrics to kinde.Observer.
type kindeObserver struct{ m *metrics }

func (o kindeObserver) ObserveRequest(method, endpoint string, status int, took time.Duration) {
	class := "error"
	if status > 0 {
		class = strconv.Itoa(status/100) + "xx"
	}
	o.m.kindeRequests.WithLabelValues(method, endpoint, class).Inc()
	o.m.kindeDuration.WithLabelValues(method, endpoint).Observe(took.Seconds())
	if status == http.StatusTooManyRequests {
		o.m.kindeRateLimited.WithLabelValues(method, endpoint).Inc()
	}
}

func (o kindeObserver) ObserveRetry(method, endpoint string, reason kinde.RetryReason) {
	o.m.kindeRetries.WithLabelValues(method, endpoint, string(reason)).Inc()
}

// jobObserver adapts metrics to fanout.JobObserver.
type jobObserver struct{ m *metrics }

func (o jobObserver) FanoutItemFinished(status string) { o.m.fanoutItems.WithLabelValues(status).Inc() }
func (o jobObserver) FanoutJobRetrying()               { o.m.fanoutRetries.Inc() }

// MetricsHandler serves the app's metrics in Prometheus' text format to
// anyone who can call it; nil when metrics are off. The app itself serves
// it at GET /metrics (loopback clients only) or on PERMSYNC_METRICS_ADDR.
func (a *App) MetricsHandler() http.Handler {
	if a.metrics == nil {
		return nil
	}
	return a.metrics.scrape
}

// MetricsAddr is the address of the metrics listener once Serve has opened
// it, or "" (metrics served on the main listener, off, or not listening yet).
func (a *App) MetricsAddr() string {
	if a.metrics == nil {
		return ""
	}
	a.metrics.mu.Lock()
	defer a.metrics.mu.Unlock()
	return a.metrics.addr
}

// serveMetrics opens PERMSYNC_METRICS_ADDR, when set, and serves GET
// /metrics there (and nothing else) until the returned stop is called.
func (a *App) serveMetrics() (stop func(), err error) {
	addr := a.cfg.MetricsAddr
	if a.metrics == nil || addr == "" {
		return func() {}, nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics: listen on %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", a.metrics.scrape)
	srv := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readTimeout,
		WriteTimeout:      readTimeout,
		IdleTimeout:       idleTimeout,
		ErrorLog:          slog.NewLogLogger(a.log.Handler(), slog.LevelWarn),
	}
	a.metrics.mu.Lock()
	a.metrics.addr = ln.Addr().String()
	a.metrics.mu.Unlock()
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			a.log.Error("metrics listener", "error", err)
		}
	}()
	a.log.Info("serving metrics", "addr", ln.Addr().String())
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			srv.Close()
		}
		<-done
	}, nil
}
