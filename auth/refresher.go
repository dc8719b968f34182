package auth

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/sync/singleflight"

	"permsync/apperr"
	"permsync/store"
)

// Reason says why a refresh runs; it is logged and reported.
type Reason string

// Reasons for a refresh.
const (
	ReasonButton     Reason = "button"     // the user clicked "Refresh session"
	ReasonExpiring   Reason = "expiring"   // the access token is about to expire
	ReasonEpoch      Reason = "epoch"      // the user's claims epoch moved past the session's
	ReasonBackground Reason = "background" // a background job refreshes live sessions
)

// ErrSessionEnded means Kinde refused the refresh token (invalid_grant): the
// session was deleted and the user must sign in again.
var ErrSessionEnded = apperr.E(apperr.Unauthorized, "Your session has ended at Kinde. Please sign in again.")

// ErrKindeUnavailable means Kinde could not be reached or failed; the session
// is kept as it was.
var ErrKindeUnavailable = apperr.E(apperr.Unavailable,
	"Kinde could not be reached to refresh your session. You are still signed in; please try again in a moment.")

// ClaimsInvalidator invalidates Kinde's per-user claim cache
// (POST /api/v1/users/{id}/refresh_claims) so that the next refresh grant
// carries current claims. The kinde package's *Client implements it.
type ClaimsInvalidator interface {
	RefreshUserClaims(ctx context.Context, userID string) error
}

// RefreshRequest asks for one session to be refreshed.
type RefreshRequest struct {
	SessionID string
	// SeenGeneration is the generation the caller last saw. If the row has
	// moved past it by the time the lock is held, someone else already
	// refreshed and that result is returned without another grant. Zero
	// means "refresh whatever is there".
	SeenGeneration int64
	Reason         Reason
	// InvalidateClaims first calls refresh_claims at Kinde (when M2M
	// credentials are configured), so the grant cannot return cached claims.
	InvalidateClaims bool
}

// Change describes what a refresh changed.
type Change struct {
	Added, Removed []string  // permission keys
	OldExpiry      time.Time // access token expiry before
	NewExpiry      time.Time // and after
	TokenChanged   bool      // false when Kinde returned the cached, unexpired access token
	// Reissued is true when the first grant returned the same access token
	// although new claims were wanted, so permsync revoked that token and
	// ran the grant once more.
	Reissued          bool
	AlreadyRefreshed  bool // another request refreshed first; no grant was made for this one
	ClaimsInvalidated bool // refresh_claims succeeded before the grant
	ClaimsSkipped     bool // refresh_claims was wanted but is not configured or failed
	// ClaimsRecent: refresh_claims was wanted, but "Refresh session" already
	// called it for this user less than ClaimsEvery ago, so only the tokens
	// were refreshed.
	ClaimsRecent bool
	ClaimsEvery  time.Duration
	At           time.Time
}

// RefreshResult is a refreshed session and what changed.
type RefreshResult struct {
	Session *Session
	Change  Change
}

// Refresher is the one code path that refreshes a session's tokens, used by
// the "Refresh session" button, by the request guard, and by background
// refresh. Refresh tokens rotate, so two refreshes of one session must never
// race: that would spend the same refresh token twice and log the user out.
//
// Serialisation is two-layered. In process, a singleflight per session id
// makes concurrent callers share one grant. Across processes (Postgres, N
// replicas) the row is locked with SELECT … FOR UPDATE in a transaction held
// across the token call, and re-read under the lock. On SQLite no transaction
// is held across the HTTP call: the pool has a single connection, so that
// would stall every other request of the app for the length of a network
// call; SQLite means a single instance, where the in-process singleflight is
// already exclusive. Both paths finish with a compare-and-swap on the row's
// generation as a last guard.
type Refresher struct {
	db      RefreshStore
	oidc    *OIDC
	keys    *Keyring
	claims  ClaimsInvalidator
	obs     RefreshObserver // nil: not observed
	log     *slog.Logger
	group   singleflight.Group
	timeout time.Duration
	now     func() time.Time
	// claimsEvery is the shortest interval between two refresh_claims calls
	// for one user made by "Refresh session" (InvalidateClaims).
	claimsEvery time.Duration
}

// DefaultClaimsRefreshInterval is how often "Refresh session" may call
// refresh_claims for one user; clicks in between refresh tokens only.
const DefaultClaimsRefreshInterval = 30 * time.Second

// WithClaimsRefreshInterval sets how often "Refresh session" may call
// refresh_claims for one user (DefaultClaimsRefreshInterval when not given;
// zero or less: every click).
func WithClaimsRefreshInterval(d time.Duration) RefresherOption {
	return func(rf *Refresher) { rf.claimsEvery = max(d, 0) }
}

// RefreshStore is what the refresher needs of the database. *store.DB
// satisfies it; RefreshSession holds the row as each dialect allows.
type RefreshStore interface {
	RefreshSession(ctx context.Context, id string,
		fn func(row *store.Session, save func(context.Context, *store.Session) error) error) error
	GetSession(ctx context.Context, id string) (*store.Session, error)
	DeleteSession(ctx context.Context, id string) error
	UserEpoch(ctx context.Context, userID string) (int64, error)
	ReserveButtonClaimsRefresh(ctx context.Context, userID string, now time.Time, interval time.Duration) (bool, error)
	MarkClaimsCleared(ctx context.Context, userID string, at time.Time) error
	ClaimsClearedAt(ctx context.Context, userID string) (time.Time, error)
}

// NewRefresher builds the refresher. claims may be nil (no M2M credentials).
func NewRefresher(db RefreshStore, o *OIDC, keys *Keyring, claims ClaimsInvalidator, log *slog.Logger,
	opts ...RefresherOption) *Refresher {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	rf := &Refresher{db: db, oidc: o, keys: keys, claims: claims, log: log, timeout: 30 * time.Second, now: time.Now,
		claimsEvery: DefaultClaimsRefreshInterval}
	for _, opt := range opts {
		opt(rf)
	}
	return rf
}

// CanInvalidateClaims reports whether refresh_claims is configured.
func (rf *Refresher) CanInvalidateClaims() bool { return rf.claims != nil }

// Refresh refreshes one session. It returns ErrSessionEnded when Kinde
// refused the refresh token (the session is deleted) and ErrKindeUnavailable
// on network or server errors (the session is kept).
func (rf *Refresher) Refresh(ctx context.Context, req RefreshRequest) (*RefreshResult, error) {
	v, err, _ := rf.group.Do(req.SessionID, func() (any, error) {
		// The grant must finish even if the first caller goes away: the
		// others share it, and a half-done rotation loses the new token.
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), rf.timeout)
		defer cancel()
		start := time.Now()
		res, err := rf.refresh(fctx, req)
		rf.observe(req.Reason, res, err, time.Since(start))
		return res, err
	})
	if err != nil {
		return nil, err
	}
	// Copy: callers sharing one flight each attach their own request state.
	res := *v.(*RefreshResult)
	sess := *res.Session
	res.Session = &sess
	return &res, nil
}

// errEnded carries invalid_grant out of a transaction so the row can be
// deleted after the rollback.
var errEnded = errors.New("refresh token refused")

func (rf *Refresher) refresh(ctx context.Context, req RefreshRequest) (*RefreshResult, error) {
	var (
		res *RefreshResult
		err error
	)
	err = rf.db.RefreshSession(ctx, req.SessionID, func(row *store.Session, save func(context.Context, *store.Session) error) error {
		var err error
		res, err = rf.grantAndSave(ctx, row, req, save)
		return err
	})
	switch {
	case err == nil:
		return res, nil
	case errors.Is(err, store.ErrNotFound):
		return nil, ErrSessionEnded
	case errors.Is(err, errEnded):
		if derr := rf.db.DeleteSession(ctx, req.SessionID); derr != nil {
			rf.log.Error("delete ended session", "error", derr)
		}
		return nil, ErrSessionEnded
	case errors.Is(err, store.ErrSessionChanged):
		// Only reachable if something outside this process refreshed
		// between our read and write; report what is there now.
		row, gerr := rf.db.GetSession(ctx, req.SessionID)
		if gerr != nil {
			return nil, ErrSessionEnded
		}
		return &RefreshResult{Session: fromRow(row), Change: Change{AlreadyRefreshed: true,
			OldExpiry: row.AccessExpiresAt, NewExpiry: row.AccessExpiresAt, At: rf.now()}}, nil
	default:
		return nil, err
	}
}

// grantAndSave runs the grant for a locked (or, on SQLite, freshly read) row
// and saves the result with save.
func (rf *Refresher) grantAndSave(ctx context.Context, row *store.Session, req RefreshRequest,
	save func(context.Context, *store.Session) error) (*RefreshResult, error) {
	now := rf.now()
	if req.SeenGeneration != 0 && row.Generation != req.SeenGeneration {
		rf.log.Debug("session already refreshed", "session_gen", row.Generation, "reason", string(req.Reason))
		return &RefreshResult{Session: fromRow(row), Change: Change{AlreadyRefreshed: true,
			OldExpiry: row.AccessExpiresAt, NewExpiry: row.AccessExpiresAt, At: now}}, nil
	}
	var toks Tokens
	if err := rf.keys.openJSON(row.Tokens, tokensAAD(row.ID), &toks); err != nil {
		return nil, fmt.Errorf("open session tokens: %w", err)
	}
	if toks.Refresh == "" {
		return nil, fmt.Errorf("no refresh token (is offline in KINDE_SCOPE?): %w", errEnded)
	}
	epoch, err := rf.db.UserEpoch(ctx, row.UserID)
	if err != nil {
		return nil, err
	}
	change := Change{OldExpiry: row.AccessExpiresAt, At: now}
	if req.InvalidateClaims {
		rf.invalidateClaims(ctx, row.UserID, &change)
	}
	// Read after any refresh_claims above and before the grant: the grant's
	// claims are at least as fresh as the latest clearing of the user's
	// claim cache, and as the claims the session had.
	cleared, err := rf.db.ClaimsClearedAt(ctx, row.UserID)
	if err != nil {
		return nil, err
	}

	tok, err := rf.oidc.refreshGrant(ctx, toks.Refresh)
	if err != nil {
		return nil, rf.classify(err, row, req)
	}
	prev := &Grant{Email: row.Email, Name: row.Name, Tokens: toks}
	g, err := rf.oidc.verify(ctx, tok, "", prev)
	if err != nil {
		return nil, fmt.Errorf("verify refreshed tokens: %w", err)
	}
	if g.Tokens.Access == toks.Access && wantsNewClaims(req, change) {
		g, change.Reissued = rf.reissue(ctx, g, row, req)
	}
	sealed, err := rf.keys.sealJSON(g.Tokens, tokensAAD(row.ID))
	if err != nil {
		return nil, fmt.Errorf("seal tokens: %w", err)
	}
	change.Added, change.Removed = diffKeys(row.Permissions, g.Permissions)
	change.NewExpiry = g.AccessExpiresAt
	change.TokenChanged = g.Tokens.Access != toks.Access

	updated := *row
	updated.OrgCode, updated.Email, updated.Name = firstNonEmpty(g.OrgCode, row.OrgCode), g.Email, g.Name
	updated.Tokens, updated.Permissions, updated.Roles = sealed, g.Permissions, g.Roles
	updated.ClaimsEpoch = max(epoch, row.ClaimsEpoch)
	if change.TokenChanged { // the same access token carries the same, older claims
		updated.ClaimsAt = laterOf(row.ClaimsAt, cleared)
	}
	updated.AccessIssuedAt, updated.AccessExpiresAt = g.AccessIssuedAt, g.AccessExpiresAt
	updated.RefreshExpiresAt, updated.RefreshedAt = g.RefreshExpiresAt, now
	updated.ExpiresAt = sessionExpiry(g, now)
	if err := save(ctx, &updated); err != nil {
		return nil, err
	}
	rf.log.Info("session refreshed", "user_id", row.UserID, "reason", string(req.Reason),
		"token_changed", change.TokenChanged, "reissued", change.Reissued, "added", len(change.Added), "removed", len(change.Removed),
		"claims_invalidated", change.ClaimsInvalidated)
	return &RefreshResult{Session: fromRow(&updated), Change: change}, nil
}

// invalidateClaims calls refresh_claims for the user before a grant, at most
// once per claimsEvery for the clicks of all their tabs and sessions (on
// every replica), and records in change what happened.
func (rf *Refresher) invalidateClaims(ctx context.Context, userID string, change *Change) {
	if rf.claims == nil {
		change.ClaimsSkipped = true
		return
	}
	start := rf.now()
	ok, err := rf.db.ReserveButtonClaimsRefresh(ctx, userID, start, rf.claimsEvery)
	switch {
	case err != nil:
		rf.log.Warn("could not check the refresh_claims interval; refreshing tokens only", "user_id", userID, "error", err)
		change.ClaimsSkipped = true
		return
	case !ok:
		change.ClaimsRecent, change.ClaimsEvery = true, rf.claimsEvery
		return
	}
	if err := rf.claims.RefreshUserClaims(ctx, userID); err != nil {
		rf.log.Warn("refresh_claims failed; refreshing anyway", "user_id", userID, "error", err)
		change.ClaimsSkipped = true
		return
	}
	change.ClaimsInvalidated = true
	if err := rf.db.MarkClaimsCleared(ctx, userID, start); err != nil {
		rf.log.Warn("could not record the claims refresh", "user_id", userID, "error", err)
	}
}

func laterOf(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// wantsNewClaims reports whether a refresh is meant to pick up claims that
// changed at Kinde: its claim cache was just cleared (refresh_claims, now or
// by a click less than ClaimsEvery ago), or the user's claims epoch moved (a
// fan-out or a webhook).
func wantsNewClaims(req RefreshRequest, c Change) bool {
	return c.ClaimsInvalidated || c.ClaimsRecent || req.Reason == ReasonEpoch || req.Reason == ReasonBackground
}

// reissue handles a refresh that returned the same, unexpired access token
// although new claims were wanted. Kinde documents that it returns an
// existing access token while it is unexpired, and only revocation, logout
// and expiry force a new one; whether refresh_claims does is not documented.
// So the token is revoked and the grant runs once more, with the refresh
// token the first grant rotated to. Any failure keeps the first grant's
// result: its refresh token is the live one now.
func (rf *Refresher) reissue(ctx context.Context, g *Grant, row *store.Session, req RefreshRequest) (*Grant, bool) {
	log := rf.log.With("user_id", row.UserID, "reason", string(req.Reason))
	if err := rf.oidc.Revoke(ctx, g.Tokens.Access, "access_token"); err != nil {
		log.Warn("refresh returned the cached access token and revoking it failed", "error", err)
		return g, false
	}
	tok, err := rf.oidc.refreshGrant(ctx, g.Tokens.Refresh)
	if err != nil {
		log.Warn("second refresh after revoking the cached access token failed", "error", err)
		return g, false
	}
	g2, err := rf.oidc.verify(ctx, tok, "", g)
	if err != nil {
		log.Warn("second refresh after revoking the cached access token did not verify", "error", err)
		return g, false
	}
	log.Info("refresh returned the cached access token; revoked it and refreshed again",
		"token_changed", g2.Tokens.Access != g.Tokens.Access)
	return g2, true
}

// classify maps a grant failure: invalid_grant ends the session, anything
// network-shaped or 5xx keeps it.
func (rf *Refresher) classify(err error, row *store.Session, req RefreshRequest) error {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		status := 0
		if re.Response != nil {
			status = re.Response.StatusCode
		}
		if re.ErrorCode == "invalid_grant" {
			rf.log.Info("refresh token refused; ending session", "user_id", row.UserID, "reason", string(req.Reason))
			return errEnded
		}
		if status >= 500 || status == 429 {
			rf.log.Warn("kinde token endpoint failed", "status", status, "reason", string(req.Reason))
			return apperr.Wrap(err, apperr.Unavailable, ErrKindeUnavailable.Message)
		}
		rf.log.Error("refresh grant rejected", "status", status, "error_code", re.ErrorCode)
		return apperr.Wrap(err, apperr.Internal, "Kinde rejected the refresh request. Please try again or sign in again.")
	}
	var ne net.Error
	if errors.As(err, &ne) || errors.Is(err, context.DeadlineExceeded) {
		rf.log.Warn("kinde unreachable for refresh", "error", err, "reason", string(req.Reason))
		return apperr.Wrap(err, apperr.Unavailable, ErrKindeUnavailable.Message)
	}
	rf.log.Warn("refresh grant failed", "error", err, "reason", string(req.Reason))
	return apperr.Wrap(err, apperr.Unavailable, ErrKindeUnavailable.Message)
}

// RevokeTokens revokes at Kinde the refresh token of each of the sessions
// (rows read from the store), so none can be refreshed again, whatever else
// happens to the rows. It tries every one and returns the first error.
func (rf *Refresher) RevokeTokens(ctx context.Context, rows []store.Session) error {
	var first error
	for i := range rows {
		s := fromRow(&rows[i])
		var t Tokens
		if err := rf.keys.openJSON(s.Tokens, tokensAAD(s.ID), &t); err != nil {
			rf.log.WarnContext(ctx, "revoke: session tokens unreadable", "error", err)
			continue // sealed under a key we no longer hold: nothing to revoke with
		}
		if err := rf.oidc.Revoke(ctx, t.Refresh, "refresh_token"); err != nil && first == nil {
			first = err
		}
	}
	return first
}
