package handlers

import (
	"github.com/labstack/echo/v4"

	"permsync/auth"
)

// publicRoutes are the only routes served without a session, as registered
// ("METHOD pattern"), each with the reason. Every other registered route
// requires one (signedInByDefault); a route is added here only when a
// signed-out visitor must reach it. TestEveryRouteIsPublicOrSignedIn walks
// the registered routes.
var publicRoutes = map[string]string{
	"GET /healthz":         "liveness probe",
	"GET /readyz":          "readiness probe",
	"GET /metrics":         "Prometheus scrape, loopback only (handlers/metrics.go)",
	"GET /static/*":        "CSS, scripts and images of every page, the sign-in page's too",
	"GET /":                "the landing page offers sign-in",
	"GET /login":           "starts sign-in",
	"GET /register":        "starts sign-up",
	"GET /callback":        "finishes sign-in",
	"POST /webhooks/kinde": "Kinde's deliveries; the JWS signature authenticates the sender",
	"GET /events":          "a signed-out stream gets session-ended (an EventSource cannot follow a redirect)",
}

// IsPublic reports whether the route (method and registered pattern) is
// served without a session.
func IsPublic(method, pattern string) bool { return publicRoutes[method+" "+pattern] != "" }

// signedInByDefault requires a session (auth.RequireUser) on every
// registered route that is not public. Paths no route matches pass through,
// so they stay 404s instead of becoming sign-in redirects. registered is
// the set of route patterns, filled once the routes exist.
func signedInByDefault(registered map[string]bool) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		gated := auth.RequireUser(next)
		return func(c echo.Context) error {
			if !registered[c.Path()] || IsPublic(c.Request().Method, c.Path()) {
				return next(c)
			}
			return gated(c)
		}
	}
}
