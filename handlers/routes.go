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

// addRoutes registers every route permsync serves (DESIGN §5), grouped by
// access: public, signed in, admin. Add a route here and nowhere else.
func addRoutes(e *echo.Echo, d Deps, rd *renderer) {
	health := &Health{db: d.DB}
	login := &Auth{flow: d.OIDC, sessions: d.Sessions, epochs: d.PermState, log: d.Log}
	dash := &Dashboard{rd: rd, sessions: d.Sessions, refresher: d.Refresher, mw: d.Middleware, log: d.Log}
	reports := &Reports{rd: rd}
	admin := &Admin{rd: rd}

	// Public.
	e.GET("/healthz", health.Healthz)
	e.GET("/readyz", health.Readyz)
	e.GET("/static/*", staticHandler(rd.assetVersion))
	e.GET("/", dash.Landing)
	e.GET("/login", login.Login)
	e.GET("/register", login.Register)
	e.GET("/callback", login.Callback)
	// POST /webhooks/kinde is added by the webhook feature (CSRF is skipped
	// for /webhooks/; the JWS signature authenticates it).

	// Signed in, without the guard: these two end or refresh the session
	// themselves, so the guard refreshing first would only double the work.
	// (Middleware is listed per route: an Echo group with an empty prefix
	// would also catch unknown paths and turn 404s into sign-in redirects.)
	signedIn := []echo.MiddlewareFunc{auth.RequireUser}
	e.POST("/logout", login.Logout, signedIn...)
	e.POST("/session/refresh", dash.Refresh, signedIn...)

	// Signed in, guarded: the session is refreshed before anything renders
	// when its token is about to expire or its claims epoch is behind.
	guarded := func(extra ...echo.MiddlewareFunc) []echo.MiddlewareFunc {
		return append([]echo.MiddlewareFunc{auth.RequireUser, d.Middleware.Guard}, extra...)
	}
	e.GET("/dashboard", dash.Show, guarded()...)
	e.GET("/reports", reports.List, guarded(auth.RequirePermission(permReadReports))...)
	e.GET("/reports/export", reports.Export, guarded(auth.RequirePermission(permExportReports))...)
	// GET /events (SSE) is added by the live-sync feature: guarded() too.

	// Admin: the permission named by PERMSYNC_ADMIN_PERMISSION.
	adm := e.Group("/admin", guarded(auth.RequirePermission(d.AdminPermission))...)
	adm.GET("", admin.Overview)
}
