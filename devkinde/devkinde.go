// Package devkinde is a Kinde-compatible identity provider for development,
// demos and tests. It speaks HTTP exactly where Kinde does: OIDC discovery,
// JWKS, the authorization-code flow with PKCE, refresh-token rotation,
// client credentials, the Management API under /api/v1 and signed webhooks.
//
// It mirrors Kinde's documented behaviour, including the parts that hurt:
// claims are cached per user and org, a refresh grant returns the cached
// claims (and even the same unexpired access token), and the cache is not
// invalidated when a permission is removed from a role or deleted. permsync
// exists to fix exactly that, so its tests must be able to see it here.
//
// The app never imports devkinde outside cmd and tests; it reaches it over
// HTTP the way it reaches Kinde. See README.md in this folder for what is
// faithful, what is simplified, and the seed file schema.
package devkinde

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Config configures a Server. The zero value is usable: default seed, random
// loopback port, Kinde's default lifetimes, no persistence.
type Config struct {
	Addr             string        // listen address; "" means 127.0.0.1:0
	PublicURL        string        // optional issuer URL; default http://<listener addr>
	DataDir          string        // optional; keys and state saved here and reloaded on start
	Seed             *Seed         // nil → DefaultSeed()
	AccessTokenTTL   time.Duration // 0 → client's value (default 24h)
	IDTokenTTL       time.Duration // 0 → client's value (default 1h)
	RefreshTokenTTL  time.Duration // 0 → client's value (default 15 days)
	RefreshOverlap   time.Duration // 0 → 10s; old refresh token still valid this long after rotation
	RateLimit        float64       // Management API requests per second; 0 = unlimited (429 + RateLimit-Reset past it)
	FaultRate        float64       // fraction of Management API requests answered 500 (0..1)
	WebhookRetryBase time.Duration // 0 → 1s; backoff base for webhook redelivery
	// Quirks picks Kinde's unsettled behaviours (quirks.go); nil means
	// CautiousQuirks().
	Quirks *Quirks
	// CustomDomainAddr is where the custom-domain listener listens when
	// Quirks.CustomDomain is on; "" means 127.0.0.1:0.
	CustomDomainAddr string
	// CustomDomainURL is the custom domain's issuer URL; "" means
	// http://<its listener address>.
	CustomDomainURL string
	Logger          *slog.Logger
}

// Defaults that mirror Kinde.
const (
	defaultAccessTTL      = 24 * time.Hour
	defaultIDTTL          = time.Hour
	defaultRefreshTTL     = 15 * 24 * time.Hour
	defaultRefreshOverlap = 10 * time.Second
	defaultRetryBase      = time.Second
	authCodeTTL           = 2 * time.Minute
	authRequestTTL        = 15 * time.Minute
)

// RequestRecord is one request devkinde served, as listed by
// GET /_devkinde/requests.
type RequestRecord struct {
	Method string    `json:"method"`
	Path   string    `json:"path"`
	Status int       `json:"status"`
	Time   time.Time `json:"time"`
}

// maxRequestRecords bounds the request log.
const maxRequestRecords = 10000

// Server is a running (or runnable) devkinde instance. All methods are safe
// for concurrent use.
type Server struct {
	cfg     Config
	log     *slog.Logger
	key     *signingKey
	handler http.Handler
	now     func() time.Time

	mu            sync.Mutex
	st            *state
	codes         map[string]*authCode    // by code hash; in memory only
	authRequests  map[string]*authRequest // pending sign-in pages; in memory only
	pendingEvents []*event

	issuerMu sync.RWMutex
	issuer   string // fixed issuer; "" → derived from each request's Host

	reqMu    sync.Mutex
	requests []RequestRecord

	limMu     sync.Mutex
	limiter   *rate.Limiter // nil = unlimited
	faultRate float64

	hooks  *deliverer
	quirks Quirks
	// m2mNotBefore: M2M tokens issued before this Unix second are refused
	// (InvalidateM2MTokens); guarded by mu.
	m2mNotBefore int64

	srvMu     sync.Mutex
	httpSrv   *http.Server
	customSrv *http.Server // the custom-domain listener (Quirks.CustomDomain)
	customURL string
	ln        net.Listener
	closed    bool
}

// New builds a server from cfg, loading state and keys from cfg.DataDir when
// present. It does not listen; call Start, or mount Handler yourself (then set
// PublicURL, or the issuer is taken from each request's Host).
func New(cfg Config) (*Server, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.RefreshOverlap <= 0 {
		cfg.RefreshOverlap = defaultRefreshOverlap
	}
	if cfg.WebhookRetryBase <= 0 {
		cfg.WebhookRetryBase = defaultRetryBase
	}
	if cfg.FaultRate < 0 || cfg.FaultRate > 1 {
		return nil, fmt.Errorf("devkinde: fault rate %v is outside 0..1", cfg.FaultRate)
	}
	if cfg.RateLimit < 0 {
		return nil, fmt.Errorf("devkinde: negative rate limit %v", cfg.RateLimit)
	}
	s := &Server{
		cfg:          cfg,
		log:          cfg.Logger,
		now:          time.Now,
		codes:        map[string]*authCode{},
		authRequests: map[string]*authRequest{},
		issuer:       strings.TrimSuffix(cfg.PublicURL, "/"),
		quirks:       CautiousQuirks(),
	}
	if cfg.Quirks != nil {
		s.quirks = *cfg.Quirks
	}
	if cfg.DataDir != "" {
		if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
			return nil, fmt.Errorf("devkinde: data dir: %w", err)
		}
	}
	key, err := loadOrCreateKey(cfg.DataDir)
	if err != nil {
		return nil, fmt.Errorf("devkinde: signing key: %w", err)
	}
	s.key = key
	if err := s.loadInitialState(); err != nil {
		return nil, err
	}
	s.SetRateLimit(cfg.RateLimit)
	s.SetFaultRate(cfg.FaultRate)
	s.hooks = newDeliverer(s)
	s.handler = s.routes()
	return s, nil
}

func (s *Server) loadInitialState() error {
	if s.cfg.DataDir != "" {
		st, err := loadState(s.cfg.DataDir)
		if err != nil {
			return fmt.Errorf("devkinde: load state: %w", err)
		}
		if st != nil {
			for _, c := range st.Clients {
				if v, ok := legacySecrets[c.Secret]; ok {
					c.Secret = v
				}
			}
			s.st = st
			s.log.Info("devkinde state loaded", "dir", s.cfg.DataDir)
			return nil
		}
	}
	sd := s.cfg.Seed
	if sd == nil {
		sd = DefaultSeed()
	}
	if err := sd.normalize(); err != nil {
		return fmt.Errorf("devkinde: seed: %w", err)
	}
	st, err := stateFromSeed(sd, s.now())
	if err != nil {
		return fmt.Errorf("devkinde: seed: %w", err)
	}
	s.st = st
	s.mu.Lock()
	defer s.mu.Unlock()
	s.persistLocked()
	return nil
}

// Start listens on cfg.Addr ("" → 127.0.0.1:0) and serves in the background.
// Unless PublicURL is set, the issuer URL becomes http://<listener address>
// (an unspecified host such as ":7070" is shown as localhost).
func (s *Server) Start() error {
	s.srvMu.Lock()
	defer s.srvMu.Unlock()
	if s.closed {
		return errors.New("devkinde: server closed")
	}
	if s.httpSrv != nil {
		return errors.New("devkinde: already started")
	}
	addr := s.cfg.Addr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("devkinde: listen: %w", err)
	}
	s.ln = ln
	s.issuerMu.Lock()
	if s.issuer == "" {
		s.issuer = "http://" + displayAddr(ln.Addr())
	}
	s.issuerMu.Unlock()
	s.httpSrv = s.serve(ln, s.handler)
	if s.quirks.CustomDomain {
		addr := s.cfg.CustomDomainAddr
		if addr == "" {
			addr = "127.0.0.1:0"
		}
		cln, err := net.Listen("tcp", addr)
		if err != nil {
			_ = s.httpSrv.Close()
			s.httpSrv = nil
			return fmt.Errorf("devkinde: custom domain listen: %w", err)
		}
		s.customURL = strings.TrimSuffix(s.cfg.CustomDomainURL, "/")
		if s.customURL == "" {
			s.customURL = "http://" + displayAddr(cln.Addr())
		}
		s.customSrv = s.serve(cln, s.CustomDomainHandler(s.customURL))
		s.log.Info("devkinde custom domain listening", "url", s.customURL)
	}
	s.log.Info("devkinde listening", "url", s.URL(), "quirks", s.quirks.String())
	return nil
}

// serve serves h on ln in the background.
func (s *Server) serve(ln net.Listener, h http.Handler) *http.Server {
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("devkinde serve", "error", err)
		}
	}()
	return srv
}

// CustomDomainURL returns the custom domain's issuer URL once started with
// Quirks.CustomDomain, else "".
func (s *Server) CustomDomainURL() string {
	s.srvMu.Lock()
	defer s.srvMu.Unlock()
	return s.customURL
}

// Quirks returns the quirks this server runs with.
func (s *Server) Quirks() Quirks { return s.quirks }

// displayAddr turns a listener address into host:port usable in a URL.
func displayAddr(a net.Addr) string {
	host, port, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "localhost"
	}
	return net.JoinHostPort(host, port)
}

// URL returns the issuer URL without a trailing slash: PublicURL if set,
// otherwise the listener's URL once started ("" before that).
func (s *Server) URL() string {
	s.issuerMu.RLock()
	defer s.issuerMu.RUnlock()
	return s.issuer
}

// issuerFor returns the issuer for a request: the fixed one, or one derived
// from the request when devkinde is mounted without Start or PublicURL.
func (s *Server) issuerFor(r *http.Request) string {
	if u, ok := r.Context().Value(hostKey{}).(string); ok {
		return u // the custom-domain listener
	}
	if u := s.URL(); u != "" {
		return u
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

// Handler returns the HTTP handler serving every devkinde endpoint.
func (s *Server) Handler() http.Handler { return s.handler }

// Close stops the listener (if started) and webhook deliveries, and waits for
// in-flight deliveries to end. State is already saved after every change.
func (s *Server) Close() error {
	s.srvMu.Lock()
	if s.closed {
		s.srvMu.Unlock()
		return nil
	}
	s.closed = true
	srv, custom := s.httpSrv, s.customSrv
	s.srvMu.Unlock()
	s.hooks.close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var errs []error
	for _, srv := range []*http.Server{custom, srv} {
		if srv == nil {
			continue
		}
		if err := srv.Shutdown(ctx); err != nil {
			errs = append(errs, srv.Close())
		}
	}
	return errors.Join(errs...)
}

// AllowRedirect adds urls to the client's allowed callback URLs AND allowed
// logout redirect URLs. Unknown clients are ignored (and logged).
func (s *Server) AllowRedirect(clientID string, urls ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.st.Clients[clientID]
	if c == nil {
		s.log.Warn("devkinde AllowRedirect: unknown client", "client_id", clientID)
		return
	}
	for _, u := range urls {
		addUnique(&c.RedirectURIs, u)
		addUnique(&c.LogoutURIs, u)
	}
	s.persistLocked()
}

// InvalidateM2MTokens makes every M2M token issued so far invalid, as when
// Kinde rotates keys or an application's secret: the Management API answers
// them "Invalid credentials" (403 under Quirks.Forbidden403, else 401) and
// clients must fetch a new token.
func (s *Server) InvalidateM2MTokens() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.m2mNotBefore = s.now().Unix()
}

// SetRolesClaim turns the roles claim ("Roles (array)" in Kinde's token
// customization, off by default) on or off for a client.
func (s *Server) SetRolesClaim(clientID string, on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c := s.st.Clients[clientID]; c != nil {
		c.RolesClaim = on
		s.persistLocked()
	}
}

// SetRateLimit changes the Management API rate limit (requests per second;
// 0 = unlimited). Past it, requests get 429 with RateLimit-Reset.
func (s *Server) SetRateLimit(rps float64) {
	s.limMu.Lock()
	defer s.limMu.Unlock()
	if rps <= 0 {
		s.limiter = nil
		return
	}
	burst := max(1, int(rps))
	s.limiter = rate.NewLimiter(rate.Limit(rps), burst)
}

// SetFaultRate sets the fraction (0..1, clamped) of Management API requests
// answered with a 500.
func (s *Server) SetFaultRate(f float64) {
	s.limMu.Lock()
	defer s.limMu.Unlock()
	s.faultRate = min(max(f, 0), 1)
}

// Requests returns the request log, oldest first (same data as
// GET /_devkinde/requests).
func (s *Server) Requests() []RequestRecord {
	s.reqMu.Lock()
	defer s.reqMu.Unlock()
	return slices.Clone(s.requests)
}

// ResetRequests clears the request log.
func (s *Server) ResetRequests() {
	s.reqMu.Lock()
	defer s.reqMu.Unlock()
	s.requests = nil
}

func (s *Server) recordRequest(rec RequestRecord) {
	s.reqMu.Lock()
	defer s.reqMu.Unlock()
	s.requests = keepLast(append(s.requests, rec), maxRequestRecords)
}

// update runs fn on the state under the lock. On success the state is saved
// and the events fn emitted are recorded and handed to webhook delivery
// (after the lock is released, so delivery never blocks the caller).
func (s *Server) update(fn func(st *state, now time.Time) error) error {
	s.mu.Lock()
	now := s.now()
	err := fn(s.st, now)
	evs := s.pendingEvents
	s.pendingEvents = nil
	var jobs []*deliveryJob
	var ce committedError
	if err == nil || errors.As(err, &ce) {
		s.st.Events = append(s.st.Events, evs...)
		jobs = s.planDeliveriesLocked(evs)
		s.persistLocked()
	}
	s.mu.Unlock()
	s.hooks.enqueue(jobs)
	return err
}

// committedError is an error returned from an update function whose state
// changes must be kept anyway (a revocation, a failed sign-in counter).
type committedError struct{ error }

func (e committedError) Unwrap() error { return e.error }

// keep marks err as a committedError.
func keep(err error) error { return committedError{err} }

// view runs fn on the state under the lock, read-only.
func (s *Server) view(fn func(st *state)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	fn(s.st)
}

// persistLocked saves the state when a data folder is configured.
func (s *Server) persistLocked() {
	s.st.prune(s.now())
	if s.cfg.DataDir == "" {
		return
	}
	if err := s.st.save(s.cfg.DataDir); err != nil {
		s.log.Error("devkinde save state", "error", err)
	}
}

// lifetimes returns the access, ID and refresh token lifetimes for a client:
// Config overrides first, then the client's own, then Kinde's defaults.
func (s *Server) lifetimes(c *client) (access, id, refresh time.Duration) {
	pick := func(override time.Duration, secs int, def time.Duration) time.Duration {
		switch {
		case override > 0:
			return override
		case secs > 0:
			return time.Duration(secs) * time.Second
		default:
			return def
		}
	}
	return pick(s.cfg.AccessTokenTTL, c.AccessTTL, defaultAccessTTL),
		pick(s.cfg.IDTokenTTL, c.IDTTL, defaultIDTTL),
		pick(s.cfg.RefreshTokenTTL, c.RefreshTTL, defaultRefreshTTL)
}
