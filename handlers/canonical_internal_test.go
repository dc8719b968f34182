package handlers

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/labstack/echo/v4"
)

func TestCanonicalHostRules(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		site, method, host, target string
		want                       string // Location, or "" when served
	}{
		{"http://localhost", "GET", "localhost:80", "/", ""},
		{"http://localhost", "GET", "127.0.0.1", "/a?b=c", "http://localhost/a?b=c"},
		{"http://localhost:8080", "GET", "127.0.0.1:8080", "/", "http://localhost:8080/"},
		{"http://localhost:8080", "HEAD", "127.0.0.1:8080", "/", "http://localhost:8080/"},
		{"http://localhost:8080", "POST", "127.0.0.1:8080", "/", ""},
		{"http://localhost:8080", "GET", "Localhost:8080", "/", ""},
		{"http://localhost:8080", "GET", "localhost:9090", "/", "http://localhost:8080/"},
		{"http://localhost:8080", "GET", "192.0.2.1:8080", "/", ""},
		{"http://[::1]:8080", "GET", "localhost:8080", "/x", "http://[::1]:8080/x"},
		// A public site URL: a proxy may rewrite Host, so never redirect.
		{"https://app.example.com", "GET", "127.0.0.1:8080", "/", ""},
		{"https://app.example.com", "GET", "other.example.com", "/", ""},
	} {
		e := echo.New()
		e.Use(canonicalHost(tt.site))
		e.Any("/*", func(c echo.Context) error { return c.NoContent(http.StatusNoContent) })
		req := httptest.NewRequest(tt.method, tt.target, nil)
		req.Host = tt.host
		rec := httptest.NewRecorder()
		e.ServeHTTP(rec, req)
		loc := rec.Header().Get("Location")
		if tt.want == "" && rec.Code != http.StatusNoContent {
			t.Errorf("site %s: %s %s (Host %s) = %d %q, want it served", tt.site, tt.method, tt.target, tt.host, rec.Code, loc)
		}
		if tt.want != "" && (rec.Code != http.StatusTemporaryRedirect || loc != tt.want) {
			t.Errorf("site %s: %s %s (Host %s) = %d %q, want 307 to %q", tt.site, tt.method, tt.target, tt.host, rec.Code, loc, tt.want)
		}
	}
}
