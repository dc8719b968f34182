// Package handlers is permsync's HTTP layer, and the only package besides
// auth's middleware that knows Echo: the middleware stack, the central error
// handler, rendering, every route (routes.go) and one file per feature.
package handlers

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"

	"permsync/auth"
	"permsync/htmx"
	"permsync/logctx"
)

// Pinger is the database as the readiness probe sees it.
type Pinger interface {
	Ping(ctx context.Context) error
}

// Deps are everything the HTTP layer needs, built by app.New.
type Deps struct {
	Log        *slog.Logger
	OIDC       *auth.OIDC
	Sessions   *auth.SessionStore
	Refresher  *auth.Refresher
	Middleware *auth.Middleware
	PermState  auth.PermissionState
	DB         Pinger

	// SiteURL is the app's public URL; https turns on HSTS.
	SiteURL string
	// TrustedProxies are the proxies whose X-Forwarded-For names the client
	// (PERMSYNC_TRUSTED_PROXIES); none: the socket's peer is the client.
	TrustedProxies []netip.Prefix
	// AdminPermission gates /admin.
	AdminPermission string
	// RequestTimeout bounds non-streaming requests; 0 means 30 s.
	RequestTimeout time.Duration
	// BodyLimit caps request bodies, e.g. "1M"; "" means 1M.
	BodyLimit string

	// Live sync (docs/ARCHITECTURE.md).

	// Events is the SSE broker GET /events subscribes to.
	Events eventSubscriber
	// SessionRows lets a stream check that its session still exists.
	SessionRows sessionGetter
	// Shutdown is closed when the server begins to shut down; open event
	// streams end then.
	Shutdown <-chan struct{}
	// Heartbeat is the SSE heartbeat interval; 0 means DefaultHeartbeat.
	Heartbeat time.Duration
	// MaxStreamsPerSession and MaxStreamsPerUser cap concurrent event
	// streams (429 past them); 0 means DefaultMaxStreamsPerSession and
	// DefaultMaxStreamsPerUser.
	MaxStreamsPerSession int
	MaxStreamsPerUser    int
	// WebhookDecoder and WebhookReceiver serve POST /webhooks/kinde; when
	// either is nil (no M2M credentials) the route is not served.
	WebhookDecoder  webhookDecoder
	WebhookReceiver webhookReceiver
	// AdminWebhooks serves GET /admin/webhooks; nil hides it.
	AdminWebhooks webhookLister

	// Admin is the RBAC admin service behind /admin (*admin.Service); nil
	// when there are no Management API credentials, and then every admin
	// page explains what to configure.
	Admin adminService

	// Metrics instruments requests and serves GET /metrics (see
	// NewMetrics); nil records nothing and serves no /metrics.
	Metrics *Metrics

	csrf *csrfGuard // built by NewServer (csrf.go)
}

// NewServer builds the Echo instance: middleware in order metrics → Recover
// → RequestID → request log → security headers → canonical host → body
// limit → context timeout (not for SSE) → session → CSRF, the central error
// handler, and the routes.
func NewServer(d Deps) (*echo.Echo, error) {
	if d.Log == nil {
		d.Log = slog.New(slog.DiscardHandler)
	}
	d.Log = logctx.Wrap(d.Log)
	if d.RequestTimeout == 0 {
		d.RequestTimeout = 30 * time.Second
	}
	if d.BodyLimit == "" {
		d.BodyLimit = "1M"
	}
	if d.Heartbeat == 0 {
		d.Heartbeat = DefaultHeartbeat
	}
	if d.MaxStreamsPerSession == 0 {
		d.MaxStreamsPerSession = DefaultMaxStreamsPerSession
	}
	if d.MaxStreamsPerUser == 0 {
		d.MaxStreamsPerUser = DefaultMaxStreamsPerUser
	}
	version, err := assetVersion()
	if err != nil {
		return nil, fmt.Errorf("static assets: %w", err)
	}
	rd := &renderer{assetVersion: version, adminPerm: d.AdminPermission}
	eh, err := newErrorHandler(d.Log, rd)
	if err != nil {
		return nil, err
	}

	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.IPExtractor = clientIPExtractor(d.TrustedProxies) // c.RealIP() never believes a header it should not
	e.HTTPErrorHandler = eh.handle

	routes := map[string]bool{} // route patterns, filled once the routes exist
	if d.Metrics != nil {
		e.Use(d.Metrics.middleware(routes))
	}
	e.Use(middleware.RecoverWithConfig(middleware.RecoverConfig{
		DisablePrintStack: true,
		LogErrorFunc: func(c echo.Context, err error, stack []byte) error {
			d.Log.ErrorContext(c.Request().Context(), "panic", "path", c.Request().URL.Path, "error", err,
				"stack", string(stack))
			return err
		},
	}))
	e.Use(middleware.RequestID())
	e.Use(requestIDInContext)
	e.Use(requestLogger(d.Log))
	e.Use(securityHeaders(d.SiteURL, d.OIDC.IssuerOrigin()))
	e.Use(canonicalHost(d.SiteURL))
	// Webhooks enforce their own, larger cap (MaxWebhookBytes) and answer
	// with a plain reason that Kinde's delivery log shows.
	e.Use(middleware.BodyLimitWithConfig(middleware.BodyLimitConfig{Limit: d.BodyLimit, Skipper: isWebhook}))
	e.Use(middleware.ContextTimeoutWithConfig(middleware.ContextTimeoutConfig{
		Skipper: func(c echo.Context) bool { return isStream(c.Request()) },
		Timeout: d.RequestTimeout,
	}))
	e.Use(skipFor(d.Middleware.LoadSession, isProbeOrStatic))
	d.csrf = newCSRFGuard(d.Sessions.Keyring(), d.SiteURL, d.Sessions.Secure(), d.Log)
	e.Use(d.csrf.middleware)

	e.Use(signedInByDefault(routes))

	addRoutes(e, d, rd)
	maps.Copy(routes, routeSet(e))
	return e, nil
}

const csrfKey = "csrf"

// requestLogger logs one line per request: request_id, method, path, status,
// latency. Never the query string (it carries codes and states) or tokens.
func requestLogger(log *slog.Logger) echo.MiddlewareFunc {
	return middleware.RequestLoggerWithConfig(middleware.RequestLoggerConfig{
		LogStatus: true, LogMethod: true, LogURIPath: true, LogLatency: true, LogRequestID: true, LogError: true,
		HandleError: true, // the error handler sets the status before we log it
		LogValuesFunc: func(c echo.Context, v middleware.RequestLoggerValues) error {
			level := slog.LevelInfo
			if strings.HasPrefix(v.URIPath, "/static/") || v.URIPath == "/healthz" || v.URIPath == "/readyz" ||
				v.URIPath == "/metrics" {
				level = slog.LevelDebug
			}
			log.LogAttrs(c.Request().Context(), level, "request", slog.String("method", v.Method),
				slog.String("path", v.URIPath), slog.Int("status", v.Status),
				slog.Duration("latency", v.Latency))
			return nil
		},
	})
}

// securityHeaders sets the CSP (no inline script, no framing, forms only to
// us and the issuer, which POST /logout redirects to), nosniff, the referrer
// policy, HSTS on https, and no-store for pages (they show personal data).
func securityHeaders(siteURL, issuerOrigin string) echo.MiddlewareFunc {
	formAction := "'self'"
	if issuerOrigin != "" {
		formAction += " " + issuerOrigin
	}
	csp := strings.Join([]string{
		"default-src 'self'",
		"script-src 'self'",
		"style-src 'self'",
		"img-src 'self' data:",
		"connect-src 'self'",
		"font-src 'self'",
		"object-src 'none'",
		"frame-ancestors 'none'",
		"base-uri 'none'",
		"form-action " + formAction,
	}, "; ")
	hsts := strings.HasPrefix(siteURL, "https://")
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			h := c.Response().Header()
			h.Set("Content-Security-Policy", csp)
			h.Set("X-Content-Type-Options", "nosniff")
			h.Set("Referrer-Policy", "strict-origin-when-cross-origin")
			h.Set("X-Frame-Options", "DENY")
			h.Set("Cross-Origin-Opener-Policy", "same-origin")
			if hsts {
				h.Set("Strict-Transport-Security", "max-age=63072000; includeSubDomains")
			}
			if !strings.HasPrefix(c.Request().URL.Path, "/static/") {
				h.Set("Cache-Control", "no-store")
			}
			return next(c)
		}
	}
}

// skipFor runs mw except when skip says not to.
func skipFor(mw echo.MiddlewareFunc, skip func(echo.Context) bool) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		wrapped := mw(next)
		return func(c echo.Context) error {
			if skip(c) {
				return next(c)
			}
			return wrapped(c)
		}
	}
}

func isProbeOrStatic(c echo.Context) bool {
	p := c.Request().URL.Path
	return p == "/healthz" || p == "/readyz" || p == "/metrics" || strings.HasPrefix(p, "/static/")
}

func isWebhook(c echo.Context) bool { return strings.HasPrefix(c.Request().URL.Path, "/webhooks/") }

// isStream reports the one long-lived response, the page's event stream
// (GET /events), which must not get the per-request timeout. Nothing the
// client sends (an Accept header, a longer path) lifts it elsewhere.
func isStream(r *http.Request) bool {
	return r.URL.Path == "/events"
}

func requestID(c echo.Context) string { return c.Response().Header().Get(echo.HeaderXRequestID) }

// requestIDInContext puts the request id into the request's context, so
// every *Context log call for the request carries request_id (logctx).
func requestIDInContext(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		r := c.Request()
		c.SetRequest(r.WithContext(logctx.With(r.Context(), slog.String("request_id", requestID(c)))))
		return next(c)
	}
}

func isHTMX(c echo.Context) bool { return htmx.IsRequest(c.Request()) }

// errNoSession is what a handler behind RequireUser returns if the session is
// somehow missing: a wiring mistake, not a user error.
var errNoSession = errors.New("handler reached without a session")
