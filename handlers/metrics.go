package handlers

import (
	"errors"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"

	"permsync/kinde"
)

// Metrics instruments the HTTP layer: requests by method, route pattern and
// status class, their duration, the event streams open now, and Kinde
// webhook deliveries by outcome. Build it with NewMetrics on the app's
// registry; a nil *Metrics records nothing.
type Metrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	streams  prometheus.Gauge
	webhooks *prometheus.CounterVec
	// scrape serves GET /metrics on the main listener (loopback clients
	// only); nil when metrics have their own listener or are off.
	scrape http.Handler
}

// NewMetrics registers the HTTP metrics on reg. scrape, when non-nil, is
// served at GET /metrics to loopback clients only.
func NewMetrics(reg prometheus.Registerer, scrape http.Handler) (*Metrics, error) {
	m := &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "permsync_http_requests_total",
			Help: "HTTP requests served, by method, route pattern and status class.",
		}, []string{"method", "route", "status_class"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "permsync_http_request_duration_seconds",
			Help:    "Time to serve an HTTP request (event streams excluded), by method, route pattern and status class.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"method", "route", "status_class"}),
		streams: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "permsync_sse_streams_in_flight",
			Help: "Server-sent event streams (GET /events) open now.",
		}),
		webhooks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "permsync_webhook_deliveries_total",
			Help: "Kinde webhook deliveries, by outcome (accepted, duplicate, stale, rejected, error) and, for rejected ones, reason.",
		}, []string{"outcome", "reason"}),
		scrape: scrape,
	}
	for _, c := range []prometheus.Collector{m.requests, m.duration, m.streams, m.webhooks} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	for _, o := range []string{webhookAccepted, webhookDuplicate, webhookStale, webhookError} {
		m.webhooks.WithLabelValues(o, "") // present (at zero) before the first delivery
	}
	return m, nil
}

// Webhook delivery outcomes.
const (
	webhookAccepted  = "accepted"
	webhookDuplicate = "duplicate"
	webhookStale     = "stale"
	webhookRejected  = "rejected"
	webhookError     = "error" // could not record it; Kinde delivers again
)

// webhookDelivery counts one delivery. reason is set for rejected ones only.
func (m *Metrics) webhookDelivery(outcome, reason string) {
	if m != nil {
		m.webhooks.WithLabelValues(outcome, reason).Inc()
	}
}

// webhookRejectReason is a short, fixed label for a refused delivery.
func webhookRejectReason(status int, err error) string {
	switch {
	case status == http.StatusRequestEntityTooLarge || errors.Is(err, kinde.ErrTooLarge):
		return "too_large"
	case errors.Is(err, kinde.ErrKeySetUnavailable):
		return "key_set_unavailable"
	case errors.Is(err, kinde.ErrUnsupportedAlgorithm):
		return "unsupported_algorithm"
	case errors.Is(err, kinde.ErrUnknownKey):
		return "unknown_key"
	case errors.Is(err, kinde.ErrBadSignature):
		return "bad_signature"
	case errors.Is(err, kinde.ErrMultipleSignatures):
		return "multiple_signatures"
	case errors.Is(err, kinde.ErrMalformed):
		return "malformed"
	case errors.Is(err, errWebhookContentType):
		return "content_type"
	case errors.Is(err, errWebhookTimestamp):
		return "timestamp"
	}
	return "unreadable"
}

// streamOpened counts an event stream as open; the func it returns counts
// it closed (call it once).
func (m *Metrics) streamOpened() func() {
	if m == nil {
		return func() {}
	}
	m.streams.Inc()
	var once sync.Once
	return func() { once.Do(m.streams.Dec) }
}

// middleware records every request. It runs first, so it sees panics turned
// into errors by Recover and the status the central error handler chose.
// The route label is the matched route pattern (c.Path()), never the raw
// path; requests that matched no route are labelled "unmatched".
func (m *Metrics) middleware(routes map[string]bool) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			stream := isStream(c.Request())
			start := time.Now()
			err := next(c)
			if err != nil {
				c.Error(err) // commits the status; the error handler ignores it once more
			}
			method, route := methodLabel(c.Request().Method), c.Path()
			if !routes[route] {
				route = "unmatched"
			}
			class := "none" // nothing was written: the client went away first
			if res := c.Response(); res.Committed {
				class = strconv.Itoa(res.Status/100) + "xx"
			}
			m.requests.WithLabelValues(method, route, class).Inc()
			if !stream {
				m.duration.WithLabelValues(method, route, class).Observe(time.Since(start).Seconds())
			}
			return err
		}
	}
}

// methodLabel bounds the method label: clients may send any token.
func methodLabel(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions:
		return m
	}
	return "other"
}

// Scrape is GET /metrics on the main listener. Only clients on this machine
// may read it, and only directly: the client's address comes from the app's
// IP extractor (the socket's peer, or the client a trusted proxy names) and
// must be loopback, and a request carrying any proxy header (even empty) is
// refused even from a loopback address, since a proxy on this machine may
// be serving the public.
func (m *Metrics) Scrape(c echo.Context) error {
	if !loopbackClient(c) {
		return echo.NewHTTPError(http.StatusForbidden,
			"Metrics are only served to clients on this machine.")
	}
	m.scrape.ServeHTTP(c.Response(), c.Request())
	return nil
}

// loopbackClient reports a direct connection from this machine.
func loopbackClient(c echo.Context) bool {
	if forwarded(c.Request()) {
		return false
	}
	ip := net.ParseIP(c.RealIP())
	return ip != nil && ip.IsLoopback()
}

// isMetrics reports GET /metrics (no session, no CSRF, no canonical-host
// redirect: scrapers call it by address).
func isMetrics(c echo.Context) bool { return c.Request().URL.Path == "/metrics" }

// routeSet is the set of route patterns registered on e.
func routeSet(e *echo.Echo) map[string]bool {
	set := map[string]bool{}
	for _, r := range e.Routes() {
		set[r.Path] = true
	}
	return set
}

// hasPathPrefix reports whether p is prefix or below it.
func hasPathPrefix(p, prefix string) bool {
	return p == prefix || strings.HasPrefix(p, prefix+"/")
}
