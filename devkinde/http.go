package devkinde

import (
	"encoding/json"
	"net/http"
	"strings"
	"time"
)

// routes builds the handler: every endpoint, wrapped in the request log.
func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()

	// OIDC / OAuth 2.0 (oidc.go).
	mux.HandleFunc("GET /.well-known/openid-configuration", s.handleDiscovery)
	mux.HandleFunc("GET /.well-known/jwks", s.handleJWKS)
	mux.HandleFunc("GET /.well-known/jwks.json", s.handleJWKS)
	mux.HandleFunc("GET /oauth2/auth", s.handleAuthorize)
	mux.HandleFunc("POST /auth/login", s.handleSignIn)
	mux.HandleFunc("POST /oauth2/token", s.handleToken)
	mux.HandleFunc("GET /oauth2/v2/user_profile", s.handleUserProfile)
	mux.HandleFunc("GET /oauth2/user_profile", s.handleUserProfile)
	mux.HandleFunc("POST /oauth2/revoke", s.handleRevoke)
	mux.HandleFunc("GET /logout", s.handleLogout)

	// Management API (mgmt_*.go).
	s.registerManagementAPI(mux)

	// Introspection for tests and demos; not part of Kinde.
	mux.HandleFunc("GET /_devkinde/requests", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, s.Requests())
	})
	mux.HandleFunc("DELETE /_devkinde/requests", func(w http.ResponseWriter, r *http.Request) {
		s.ResetRequests()
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("GET /_devkinde/deliveries", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, s.Deliveries())
	})

	return s.logRequests(mux)
}

// statusWriter remembers the status code written through it.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// logRequests records every request except /_devkinde/* in the request log
// and logs it at debug level. Query strings are never logged: they carry
// codes and tokens.
func (s *Server) logRequests(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := s.now()
		sw := &statusWriter{ResponseWriter: w}
		next.ServeHTTP(sw, r)
		if sw.status == 0 {
			sw.status = http.StatusOK
		}
		if strings.HasPrefix(r.URL.Path, "/_devkinde/") {
			return
		}
		s.recordRequest(RequestRecord{Method: r.Method, Path: r.URL.Path, Status: sw.status, Time: start.UTC()})
		s.log.Debug("devkinde request", "method", r.Method, "path", r.URL.Path, "status", sw.status,
			"duration", time.Since(start))
	})
}

// writeJSON writes v as a JSON response.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}
