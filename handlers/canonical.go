package handlers

import (
	"net"
	"net/http"
	"net/url"
	"strings"

	"github.com/labstack/echo/v4"
)

// canonicalHost sends browsers that reached a local permsync under another
// loopback name (http://127.0.0.1:8080 when the site URL is
// http://localhost:8080, or the other way round) to the same path on the
// site URL. Cookies are per host, so a sign-in started on one name and
// called back on the other would fail its state check.
//
// It acts only when both the site URL and the request's host are loopback
// names or addresses: in production a proxy in front may rewrite Host, and
// redirecting then would loop. Only GET and HEAD are redirected (307 keeps
// the method); probes, /metrics and webhooks are served under any host.
func canonicalHost(siteURL string) echo.MiddlewareFunc {
	u, err := url.Parse(siteURL)
	if err != nil || u.Host == "" || !isLoopbackHost(u.Hostname()) {
		return func(next echo.HandlerFunc) echo.HandlerFunc { return next }
	}
	site := strings.TrimRight(siteURL, "/")
	want := normalHost(u.Host, u.Scheme)
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			r := c.Request()
			if r.Method != http.MethodGet && r.Method != http.MethodHead {
				return next(c)
			}
			p := r.URL.Path
			if p == "/healthz" || p == "/readyz" || p == "/metrics" || hasPathPrefix(p, "/webhooks") {
				return next(c)
			}
			host := normalHost(r.Host, u.Scheme)
			if host == want || !isLoopbackHost(hostOnly(r.Host)) {
				return next(c)
			}
			return c.Redirect(http.StatusTemporaryRedirect, site+r.URL.RequestURI())
		}
	}
}

// normalHost lowercases host[:port] and drops the scheme's default port.
func normalHost(host, scheme string) string {
	host = strings.ToLower(host)
	h, port, err := net.SplitHostPort(host)
	if err != nil || !((scheme == "http" && port == "80") || (scheme == "https" && port == "443")) {
		return host
	}
	if strings.Contains(h, ":") {
		return "[" + h + "]"
	}
	return h
}

// hostOnly strips the port (and IPv6 brackets) from a Host header.
func hostOnly(host string) string {
	if h, _, err := net.SplitHostPort(host); err == nil {
		return h
	}
	return strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
}

// isLoopbackHost reports localhost or a loopback address.
func isLoopbackHost(h string) bool {
	if strings.EqualFold(h, "localhost") {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}
