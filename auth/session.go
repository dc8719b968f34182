package auth

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/gob"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/gorilla/securecookie"
	"github.com/gorilla/sessions"

	"permsync/store"
)

// SessionCookie is the name of the session cookie on a plain-http local
// site. It holds only a signed random 256-bit id; everything else lives in
// the sessions table. With Secure cookies the name is HostCookie(SessionCookie).
const SessionCookie = "permsync_session"

// flashCookie carries a message to a visitor who has no session (for example
// "your session has ended").
const flashCookie = "permsync_flash"

// HostCookie is name with the __Host- prefix when secure: a browser then
// takes the cookie only from this very origin over https, with Path=/ and
// no Domain, so a page on a sibling subdomain cannot set or overwrite it
// (cookie tossing).
func HostCookie(name string, secure bool) string {
	if secure {
		return "__Host-" + name
	}
	return name
}

// Session is a signed-in user's server-side session, as one request sees it:
// the stored row (ids, the token's permissions and roles, the claims epoch,
// expiries, the sealed tokens, and the permission state read with it) plus
// what one request adds. Use Can or Effective for decisions: they also
// subtract the denials that apply.
type Session struct {
	store.Session

	// Web is the gorilla/sessions view of the same row (flash messages and
	// other small values). It is nil on sessions not loaded from a request.
	Web *sessions.Session

	effective map[string]struct{} // Permissions minus the denials that apply; nil until computed
}

// Can reports whether the session's effective permissions include key.
func (s *Session) Can(key string) bool {
	if s == nil {
		return false
	}
	if s.effective == nil {
		return slices.Contains(s.Permissions, key)
	}
	_, ok := s.effective[key]
	return ok
}

// Effective returns the effective permission keys, sorted.
func (s *Session) Effective() []string {
	if s == nil {
		return nil
	}
	if s.effective == nil {
		return slices.Clone(s.Permissions)
	}
	out := make([]string, 0, len(s.effective))
	for _, k := range s.Permissions {
		if _, ok := s.effective[k]; ok {
			out = append(out, k)
		}
	}
	return out
}

// Revoked returns the token permissions that denials currently take away.
func (s *Session) Revoked() []string {
	if s == nil || s.effective == nil {
		return nil
	}
	var out []string
	for _, k := range s.Permissions {
		if _, ok := s.effective[k]; !ok {
			out = append(out, k)
		}
	}
	return out
}

// applyDenials computes the effective permissions.
func (s *Session) applyDenials(d *Denials) {
	v := d.view(s.UserID, s.OrgCode, s.ClaimsAt)
	s.effective = make(map[string]struct{}, len(s.Permissions))
	for _, k := range s.Permissions {
		if !v.denies(k) {
			s.effective[k] = struct{}{}
		}
	}
}

func fromRow(row *store.Session) *Session {
	return &Session{Session: *row}
}

// SessionDB is the part of the store the session store needs.
type SessionDB interface {
	CreateSession(ctx context.Context, s *store.Session) error
	GetSession(ctx context.Context, id string) (*store.Session, error)
	SaveSessionValues(ctx context.Context, id string, values []byte) error
	TouchSession(ctx context.Context, id string, t time.Time) error
	DeleteSession(ctx context.Context, id string) error
}

// SessionStore is a gorilla/sessions Store over the sessions table. The cookie
// (SessionCookie) carries only the signed random id: HttpOnly, SameSite=Lax,
// Path=/, Secure unless the site is plain-http localhost. Rows are created
// only by Start (a completed sign-in); Save persists the values of an
// existing row, encrypted, and a MaxAge < 0 deletes the row.
type SessionStore struct {
	db     SessionDB
	keys   *Keyring
	secure bool
	log    *slog.Logger
	now    func() time.Time
	ids    cookieIDs

	idle    time.Duration                                 // a session unused this long ends; 0: never
	maxUser int                                           // sessions per user; 0: no cap
	onEnd   func(ctx context.Context, userID, why string) // told when a limit ends a session; may be nil
}

// Defaults of PERMSYNC_SESSION_IDLE_TIMEOUT and PERMSYNC_MAX_SESSIONS_PER_USER.
const (
	DefaultIdleTimeout        = 8 * time.Hour
	DefaultMaxSessionsPerUser = 10
)

// SessionLimits bound sessions: Idle ends a session unused that long (it is
// gone on its next request), MaxPerUser ends a user's oldest sessions when a
// sign-in would exceed it. OnEnd is told of each session a limit ended, so
// its open pages can be sent away at once. Zero values: no limit.
type SessionLimits struct {
	Idle       time.Duration
	MaxPerUser int
	OnEnd      func(ctx context.Context, userID, why string)
}

// userSessionLister lists a user's live sessions, newest first (*store.DB).
type userSessionLister interface {
	UserSessions(ctx context.Context, userID string) ([]store.Session, error)
}

// SetLimits sets the session limits; call it before serving.
func (st *SessionStore) SetLimits(l SessionLimits) {
	st.idle, st.maxUser, st.onEnd = max(l.Idle, 0), max(l.MaxPerUser, 0), l.OnEnd
}

var _ sessions.Store = (*SessionStore)(nil)

// NewSessionStore builds the store. siteURL decides the Secure flag.
func NewSessionStore(db SessionDB, keys *Keyring, siteURL string, log *slog.Logger) *SessionStore {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	gob.Register(Flash{}) // flashes are stored in the gob-encoded values map
	return &SessionStore{db: db, keys: keys, secure: secureCookies(siteURL), log: log, now: time.Now,
		ids: cookieIDs{m: map[string]cookieID{}}}
}

// Secure reports whether cookies are marked Secure.
func (st *SessionStore) Secure() bool { return st.secure }

// CookieName is the session cookie's name: SessionCookie, __Host- prefixed
// when cookies are Secure.
func (st *SessionStore) CookieName() string { return HostCookie(SessionCookie, st.secure) }

func (st *SessionStore) flashName() string { return HostCookie(flashCookie, st.secure) }

// Keyring returns the keys the store signs and seals with (the CSRF tokens
// use them too).
func (st *SessionStore) Keyring() *Keyring { return st.keys }

// HashID turns a cookie's random id into the row id.
func HashID(cookieID string) string {
	sum := sha256.Sum256([]byte(cookieID))
	return hex.EncodeToString(sum[:])
}

// Get returns the request's session, loading it once per request.
func (st *SessionStore) Get(r *http.Request, name string) (*sessions.Session, error) {
	return sessions.GetRegistry(r).Get(st, name)
}

// New loads the session named by the request's cookie, or returns a new,
// empty one (IsNew) when there is no valid cookie or no live row.
func (st *SessionStore) New(r *http.Request, name string) (*sessions.Session, error) {
	s, err := st.Load(r)
	if err != nil || s == nil {
		web := sessions.NewSession(st, name)
		web.Options = st.cookieOptions(0)
		web.IsNew = true
		return web, err
	}
	return s.Web, nil
}

// Save persists the values of a session that has a row. A session with
// Options.MaxAge < 0 is deleted, row and cookie. A new session without a row
// is not persisted: rows come only from a completed sign-in.
func (st *SessionStore) Save(r *http.Request, w http.ResponseWriter, web *sessions.Session) error {
	if web.Options != nil && web.Options.MaxAge < 0 {
		if web.ID != "" {
			if err := st.db.DeleteSession(r.Context(), HashID(web.ID)); err != nil {
				return err
			}
		}
		st.clearCookie(w)
		return nil
	}
	if web.ID == "" {
		return nil
	}
	id := HashID(web.ID)
	blob, err := st.sealValues(id, web.Values)
	if err != nil {
		return err
	}
	return st.db.SaveSessionValues(r.Context(), id, blob)
}

// Load reads the session named by the request's cookie. It returns nil and no
// error when there is no cookie, the signature does not verify, or the row is
// gone or expired.
func (st *SessionStore) Load(r *http.Request) (*Session, error) {
	c, err := r.Cookie(st.CookieName())
	if err != nil || c.Value == "" {
		return nil, nil
	}
	raw, id, ok := st.decodeCookie(c.Value)
	if !ok {
		return nil, nil
	}
	row, err := st.db.GetSession(r.Context(), id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("load session: %w", err)
	}
	if st.idle > 0 && st.now().Sub(row.LastSeenAt) > st.idle {
		// Unused for too long: the session ends here, and the request is
		// signed out.
		if err := st.db.DeleteSession(r.Context(), row.ID); err != nil {
			return nil, fmt.Errorf("end idle session: %w", err)
		}
		st.log.InfoContext(r.Context(), "session ended: idle", "user_id", row.UserID, "idle_for", st.now().Sub(row.LastSeenAt).Round(time.Second))
		return nil, nil
	}
	s := fromRow(row)
	web := sessions.NewSession(st, SessionCookie)
	web.ID = raw
	web.IsNew = false
	web.Options = st.cookieOptions(time.Until(row.ExpiresAt))
	if len(row.WebValues) > 0 {
		if err := st.openValues(row.ID, row.WebValues, &web.Values); err != nil {
			st.log.Warn("session values unreadable; starting empty", "error", err)
		}
	}
	s.Web = web
	if st.now().Sub(row.LastSeenAt) > time.Minute {
		if err := st.db.TouchSession(r.Context(), row.ID, st.now()); err != nil {
			st.log.Warn("touch session", "error", err)
		}
	}
	return s, nil
}

// decodeCookie verifies a session cookie's value and returns the random id
// it carries and the row id. A value verified once is remembered (the
// session cookie has no timestamp limit, so its verdict never changes while
// the keys stay the same); the row read that follows still decides whether
// the session is alive.
func (st *SessionStore) decodeCookie(value string) (raw, id string, ok bool) {
	if e, ok := st.ids.get(value); ok {
		return e.raw, e.id, true
	}
	if err := securecookie.DecodeMulti(SessionCookie, value, &raw, st.keys.cookie...); err != nil {
		st.log.Debug("session cookie rejected", "error", err)
		return "", "", false
	}
	id = HashID(raw)
	st.ids.put(value, cookieID{raw: raw, id: id})
	return raw, id, true
}

// cookieIDs remembers verified session cookie values (bounded: it starts
// over when full).
type cookieIDs struct {
	mu sync.RWMutex
	m  map[string]cookieID
}

type cookieID struct{ raw, id string }

const maxCookieIDs = 4096

func (c *cookieIDs) get(value string) (cookieID, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	e, ok := c.m[value]
	return e, ok
}

func (c *cookieIDs) put(value string, e cookieID) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) >= maxCookieIDs {
		c.m = make(map[string]cookieID)
	}
	c.m[value] = e
}

// Start creates a brand-new session row for a completed sign-in and sets its
// cookie. Any session the browser already had is deleted first: a sign-in
// never reuses an id (no session fixation).
func (st *SessionStore) Start(ctx context.Context, w http.ResponseWriter, r *http.Request, g *Grant, epoch int64) (*Session, error) {
	if old, _ := st.Load(r); old != nil {
		if err := st.db.DeleteSession(ctx, old.ID); err != nil {
			st.log.Warn("delete previous session", "error", err)
		}
	}
	raw := randomToken()
	id := HashID(raw)
	sealed, err := st.keys.sealJSON(g.Tokens, tokensAAD(id))
	if err != nil {
		return nil, fmt.Errorf("seal tokens: %w", err)
	}
	now := st.now()
	row := &store.Session{
		ID: id, UserID: g.UserID, OrgCode: g.OrgCode, Email: g.Email, Name: g.Name,
		Tokens: sealed, Permissions: g.Permissions, Roles: g.Roles, ClaimsEpoch: epoch, ClaimsAt: g.ClaimsAt,
		AccessIssuedAt: g.AccessIssuedAt, AccessExpiresAt: g.AccessExpiresAt, RefreshExpiresAt: g.RefreshExpiresAt,
		CreatedAt: now, LastSeenAt: now, ExpiresAt: sessionExpiry(g, now), UserAgent: trimUA(r.UserAgent()),
	}
	if err := st.db.CreateSession(ctx, row); err != nil {
		return nil, err
	}
	st.capUserSessions(ctx, g.UserID)
	enc, err := securecookie.EncodeMulti(SessionCookie, raw, st.keys.cookie...)
	if err != nil {
		return nil, fmt.Errorf("encode session cookie: %w", err)
	}
	http.SetCookie(w, sessions.NewCookie(st.CookieName(), enc, st.cookieOptions(time.Until(row.ExpiresAt))))
	s := fromRow(row)
	s.Web = sessions.NewSession(st, SessionCookie)
	s.Web.ID, s.Web.IsNew, s.Web.Options = raw, false, st.cookieOptions(time.Until(row.ExpiresAt))
	return s, nil
}

// capUserSessions ends the user's oldest sessions beyond the per-user cap
// (the one just created is the newest, so it stays).
func (st *SessionStore) capUserSessions(ctx context.Context, userID string) {
	lister, ok := st.db.(userSessionLister)
	if st.maxUser <= 0 || !ok {
		return
	}
	rows, err := lister.UserSessions(ctx, userID)
	if err != nil {
		st.log.WarnContext(ctx, "session cap: list sessions", "error", err)
		return
	}
	ended := 0
	for i := st.maxUser; i < len(rows); i++ {
		if err := st.db.DeleteSession(ctx, rows[i].ID); err != nil {
			st.log.WarnContext(ctx, "session cap: end oldest session", "error", err)
			continue
		}
		ended++
	}
	if ended > 0 {
		st.log.InfoContext(ctx, "sessions ended: per-user cap", "user_id", userID, "ended", ended, "cap", st.maxUser)
		if st.onEnd != nil {
			st.onEnd(ctx, userID, "You signed in elsewhere, and this older session was ended.")
		}
	}
}

// End deletes the session row and clears the cookie.
func (st *SessionStore) End(ctx context.Context, w http.ResponseWriter, s *Session) error {
	st.clearCookie(w)
	if s == nil {
		return nil
	}
	return st.db.DeleteSession(ctx, s.ID)
}

// Tokens decrypts the session's tokens.
func (st *SessionStore) Tokens(s *Session) (Tokens, error) {
	var t Tokens
	if err := st.keys.openJSON(s.Tokens, tokensAAD(s.ID), &t); err != nil {
		return Tokens{}, fmt.Errorf("open session tokens: %w", err)
	}
	return t, nil
}

// sessionExpiry is when the row dies: with the refresh token, or a day after
// the access token when there is no refresh token.
func sessionExpiry(g *Grant, now time.Time) time.Time {
	if g.Tokens.Refresh == "" {
		return g.AccessExpiresAt
	}
	if g.RefreshExpiresAt.After(now) {
		return g.RefreshExpiresAt
	}
	return now.Add(defaultRefreshTTL)
}

func tokensAAD(id string) string { return "tokens:" + id }
func valuesAAD(id string) string { return "values:" + id }

func (st *SessionStore) sealValues(id string, values map[any]any) ([]byte, error) {
	var buf bytes.Buffer
	if err := gob.NewEncoder(&buf).Encode(values); err != nil {
		return nil, fmt.Errorf("encode session values: %w", err)
	}
	return st.keys.Seal(buf.Bytes(), []byte(valuesAAD(id)))
}

func (st *SessionStore) openValues(id string, sealed []byte, into *map[any]any) error {
	b, err := st.keys.Open(sealed, []byte(valuesAAD(id)))
	if err != nil {
		return err
	}
	return gob.NewDecoder(bytes.NewReader(b)).Decode(into)
}

func (st *SessionStore) cookieOptions(ttl time.Duration) *sessions.Options {
	maxAge := int(ttl.Seconds())
	if maxAge < 0 {
		maxAge = 0
	}
	return &sessions.Options{Path: "/", MaxAge: maxAge, HttpOnly: true, Secure: st.secure, SameSite: http.SameSiteLaxMode}
}

func (st *SessionStore) clearCookie(w http.ResponseWriter) {
	opts := st.cookieOptions(0)
	opts.MaxAge = -1
	http.SetCookie(w, sessions.NewCookie(st.CookieName(), "", opts))
}

func trimUA(ua string) string {
	if len(ua) > 256 {
		return ua[:256]
	}
	return ua
}

// Flash is a one-shot message shown on the next page.
type Flash struct {
	Kind    string // "success", "info", "warning" or "error"
	Message string
	Change  *Change // what a refresh changed, when the message is about one
}

// AddFlash queues a message for the next page: in the session when there is
// one, else in a short-lived encrypted cookie.
func (st *SessionStore) AddFlash(w http.ResponseWriter, r *http.Request, s *Session, f Flash) error {
	if s != nil && s.Web != nil {
		s.Web.AddFlash(f)
		return s.Web.Save(r, w)
	}
	enc, err := securecookie.EncodeMulti(flashCookie, f, st.keys.flash...)
	if err != nil {
		return fmt.Errorf("encode flash: %w", err)
	}
	http.SetCookie(w, &http.Cookie{Name: st.flashName(), Value: enc, Path: "/", MaxAge: 300, HttpOnly: true,
		Secure: st.secure, SameSite: http.SameSiteLaxMode})
	return nil
}

// TakeFlashes returns and clears the queued messages.
func (st *SessionStore) TakeFlashes(w http.ResponseWriter, r *http.Request, s *Session) []Flash {
	var out []Flash
	if c, err := r.Cookie(st.flashName()); err == nil {
		var f Flash
		if securecookie.DecodeMulti(flashCookie, c.Value, &f, st.keys.flash...) == nil {
			out = append(out, f)
		}
		http.SetCookie(w, &http.Cookie{Name: st.flashName(), Path: "/", MaxAge: -1, HttpOnly: true,
			Secure: st.secure, SameSite: http.SameSiteLaxMode})
	}
	if s != nil && s.Web != nil {
		fs := s.Web.Flashes()
		for _, v := range fs {
			if f, ok := v.(Flash); ok {
				out = append(out, f)
			}
		}
		if len(fs) > 0 {
			if err := s.Web.Save(r, w); err != nil {
				st.log.Warn("save session after flashes", "error", err)
			}
		}
	}
	return out
}
