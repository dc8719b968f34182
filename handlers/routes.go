package handlers

import (
	"github.com/labstack/echo/v4"

	"permsync/auth"
)

// Permission keys of the demo resources.
const (
	permReadReports   = "read:reports"
	permExportReports = "export:reports"
)

// addRoutes registers every route permsync serves, grouped by access:
// public, signed in, admin. Add a route here and nowhere else. Every route
// requires a session unless handlers/access.go lists it as public.
func addRoutes(e *echo.Echo, d Deps, rd *renderer) {
	health := &Health{db: d.DB}
	login := &Auth{flow: d.OIDC, sessions: d.Sessions, epochs: d.PermState, csrf: d.csrf, log: d.Log}
	dash := &Dashboard{rd: rd, sessions: d.Sessions, refresher: d.Refresher, mw: d.Middleware, log: d.Log}
	reports := &Reports{rd: rd}

	// Public (each listed in publicRoutes, handlers/access.go).
	e.GET("/healthz", health.Healthz)
	e.GET("/readyz", health.Readyz)
	// Prometheus metrics, for clients on this machine only, unless they
	// have their own listener (PERMSYNC_METRICS_ADDR) or are off.
	if d.Metrics != nil && d.Metrics.scrape != nil {
		e.GET("/metrics", d.Metrics.Scrape)
	}
	e.GET("/static/*", staticHandler(rd.assetVersion))
	e.GET("/", dash.Landing)
	e.GET("/login", login.Login)
	e.GET("/register", login.Register)
	e.GET("/callback", login.Callback)
	// Kinde webhooks: CSRF is skipped for /webhooks/; the JWS signature
	// authenticates the sender.
	if d.WebhookDecoder != nil && d.WebhookReceiver != nil {
		hooks := &Webhooks{dec: d.WebhookDecoder, rcv: d.WebhookReceiver, metrics: d.Metrics, log: d.Log}
		e.POST("/webhooks/kinde", hooks.Receive)
	}
	// The page's event stream. Public and not behind the guard: a
	// signed-out stream gets session-ended (an EventSource cannot follow a
	// redirect to the sign-in page), and nothing here refreshes sessions.
	if d.Events != nil {
		live := &Events{sub: d.Events, sessions: d.SessionRows, denials: d.PermState,
			adminPerm: d.AdminPermission, heartbeat: d.Heartbeat, done: d.Shutdown,
			limits: newStreamLimits(d.MaxStreamsPerSession, d.MaxStreamsPerUser), metrics: d.Metrics, log: d.Log}
		e.GET("/events", live.Stream)
	}

	// Signed in (signedInByDefault), without the guard: these two end or
	// refresh the session themselves, so the guard refreshing first would
	// only double the work.
	e.POST("/logout", login.Logout)
	e.POST("/session/refresh", dash.Refresh)

	// Signed-in pages, guarded: the session is refreshed before anything
	// renders when its token is about to expire or its claims epoch is
	// behind; then the page's gates run; then a live update (live.go) is
	// answered with the page's live parts, and anything else reaches the
	// handler. A gate that refuses a live update puts the 403 in place.
	page := func(parts liveParts, gates ...echo.MiddlewareFunc) []echo.MiddlewareFunc {
		mw := append([]echo.MiddlewareFunc{d.Middleware.Guard}, gates...)
		return append(mw, rd.livePage(parts))
	}
	e.GET("/dashboard", dash.Show, page(dash.liveParts)...)
	e.GET("/reports", reports.List, page(reports.liveParts, auth.RequirePermission(permReadReports))...)
	e.GET("/reports/export", reports.Export, page(nil, auth.RequirePermission(permExportReports))...)

	// Admin: the permission named by PERMSYNC_ADMIN_PERMISSION (and every
	// admin.Service method checks it again). Without an admin service (no
	// Management API credentials) each admin page says what to configure.
	adminGate := page(nil, auth.RequirePermission(d.AdminPermission))
	if d.Admin == nil {
		adminGate = append(adminGate, adminUnconfigured)
	} else {
		adminGate = append(adminGate, adminFreshness(d.Admin))
	}
	adm := e.Group("/admin", adminGate...)
	ab := adminBase{rd: rd, flashes: d.Sessions, log: d.Log}
	overview := &AdminOverview{adminBase: ab, svc: d.Admin}
	perms := &AdminPermissions{adminBase: ab, svc: d.Admin}
	roles := &AdminRoles{adminBase: ab, svc: d.Admin}
	users := &AdminUsers{adminBase: ab, svc: d.Admin}
	fanouts := &AdminFanouts{adminBase: ab, svc: d.Admin}
	rbac := &AdminRBAC{adminBase: ab, svc: d.Admin}
	adm.GET("", overview.Show)
	adm.GET("/permissions", perms.List)
	adm.GET("/permissions/:id", perms.Show)
	adm.POST("/permissions/:id/delete", perms.Delete)
	adm.GET("/roles", roles.List)
	adm.GET("/users", users.List)
	adm.GET("/users/:id", users.Show)
	adm.POST("/users/:id/refresh-claims", users.RefreshClaims)
	adm.GET("/users/:id/sessions/revoke", users.ConfirmRevoke)
	adm.POST("/users/:id/sessions/revoke", users.RevokeSessions)
	adm.GET("/fanouts", fanouts.List)
	adm.GET("/fanouts/:id", fanouts.Show)
	adm.POST("/fanouts/:id/retry", fanouts.Retry)
	adm.POST("/fanouts/:id/undo", fanouts.Undo)
	adm.GET("/rbac", rbac.Overview)
	adm.GET("/roles/:id", rbac.Role)
	adm.GET("/users/:id/access", rbac.Access)
	adm.GET("/edits/preview", rbac.Preview)
	adm.POST("/edits", rbac.Confirm)
	adm.GET("/edits/:id", rbac.Edit)
	adm.POST("/edits/:id/undo", rbac.Undo)
	if d.AdminWebhooks != nil {
		hooksPage := &AdminWebhooks{rd: rd, list: d.AdminWebhooks, authz: d.Admin}
		adm.GET("/webhooks", hooksPage.List)
	}
}
