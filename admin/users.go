package admin

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"permsync/apperr"
	"permsync/directory"
	"permsync/events"
	"permsync/fanout"
	"permsync/kinde"
	"permsync/store"
)

// UserSummary is one row of the users page.
type UserSummary struct {
	ID    string
	Email string
	Name  string
	Orgs  []string // organization codes
	Roles []string // role keys
	// Permissions are the user's effective permission keys at Kinde (through
	// roles and direct grants) minus live tombstones, sorted.
	Permissions  []string
	LiveSessions int
	ClaimsEpoch  int64
	// LastClaimsRefresh is when permsync last invalidated Kinde's claim cache
	// for the user (their epoch changed); zero if never.
	LastClaimsRefresh time.Time
	// LastSessionRefresh is the latest token refresh among their live
	// sessions; zero if none refreshed yet.
	LastSessionRefresh time.Time
}

// UserList is the users page: one page of the directory's users.
type UserList struct {
	Query   string
	Users   []UserSummary
	Total   int // users in the directory
	Matched int // users matching the search
	Offset  int
	Limit   int
	AsOf    time.Time // the directory's last completed sync
}

// UserQuery picks a page of users: a search over email, name and id, and
// where the page starts.
type UserQuery struct {
	Search string
	Offset int
	Limit  int // ≤ 0 means directory.DefaultPageSize
}

// UserPermission is one permission a user holds, and why.
type UserPermission struct {
	Key        string
	Name       string
	OrgCode    string
	Reasons    []Reason
	Tombstoned bool // deleted recently; sessions no longer honour it
}

// SessionInfo is one of the user's live permsync sessions. It never carries
// the session id or tokens.
type SessionInfo struct {
	OrgCode         string
	CreatedAt       time.Time
	LastSeenAt      time.Time
	RefreshedAt     time.Time // zero until the first refresh
	AccessExpiresAt time.Time
	ExpiresAt       time.Time
	ClaimsEpoch     int64
	// Stale is true when the session was built before the user's current
	// epoch: it will refresh on its next request.
	Stale       bool
	Permissions []string // what its access token carries
	UserAgent   string
}

// UserDetail is the user page.
type UserDetail struct {
	UserSummary
	Grants   []UserPermission // from the directory, with reasons
	Sessions []SessionInfo
}

// Users returns the first page of users.
func (s *Service) Users(ctx context.Context, a Actor, query string) (*UserList, error) {
	return s.UsersPage(ctx, a, UserQuery{Search: query})
}

// UsersPage lists a page of the directory's users with their organizations,
// roles, effective permissions, live sessions and last refreshes.
func (s *Service) UsersPage(ctx context.Context, a Actor, q UserQuery) (*UserList, error) {
	if err := s.authorize(ctx, a); err != nil {
		return nil, err
	}
	search := newSearch(q.Search)
	pg, err := s.dir.Users(ctx, search.query, q.Offset, q.Limit)
	if err != nil {
		return nil, errInternal(err)
	}
	st, _, err := s.directoryStatus(ctx)
	if err != nil {
		return nil, err
	}
	out := &UserList{Query: search.query, Total: pg.Total, Matched: pg.Matched, Offset: pg.Offset, Limit: pg.Limit,
		AsOf: st.CompletedAt}
	ids := make([]string, len(pg.Users))
	for i, u := range pg.Users {
		ids[i] = u.ID
	}
	epochs, err := s.db.UserEpochs(ctx, ids)
	if err != nil {
		return nil, errInternal(err)
	}
	tombs, err := s.db.LiveDeniedKeys(ctx, time.Now())
	if err != nil {
		return nil, errInternal(err)
	}
	held, err := s.dir.HeldKeys(ctx, ids)
	if err != nil {
		return nil, errInternal(err)
	}
	for _, u := range pg.Users {
		sum := UserSummary{ID: u.ID, Email: u.Email, Name: u.Name}
		for _, m := range u.Memberships {
			sum.Orgs = append(sum.Orgs, m.OrgCode)
			for _, k := range m.RoleKeys {
				if !slices.Contains(sum.Roles, k) {
					sum.Roles = append(sum.Roles, k)
				}
			}
		}
		slices.Sort(sum.Roles)
		for _, k := range held[u.ID] {
			if !slices.Contains(tombs, k) {
				sum.Permissions = append(sum.Permissions, k)
			}
		}
		slices.Sort(sum.Permissions)
		if e, ok := epochs[u.ID]; ok {
			sum.ClaimsEpoch, sum.LastClaimsRefresh = e.Epoch, e.ChangedAt
		}
		if err := s.lastClaimsRefresh(ctx, &sum); err != nil {
			return nil, err
		}
		if err := s.addSessionCounts(ctx, &sum); err != nil {
			return nil, err
		}
		out.Users = append(out.Users, sum)
	}
	return out, nil
}

// addSessionCounts fills in the user's live sessions and last refresh.
func (s *Service) addSessionCounts(ctx context.Context, sum *UserSummary) error {
	sessions, err := s.sessions.UserSessions(ctx, sum.ID)
	if err != nil {
		return errInternal(err)
	}
	sum.LiveSessions = len(sessions)
	for _, ss := range sessions {
		if ss.RefreshedAt.After(sum.LastSessionRefresh) {
			sum.LastSessionRefresh = ss.RefreshedAt
		}
	}
	return nil
}

// UserDetail returns one user from the directory: their roles and
// permissions with reasons in each organization, and their live sessions.
// A user the directory does not know (yet) but who has permsync sessions is
// shown with those. It returns apperr.NotFound for anyone else.
func (s *Service) UserDetail(ctx context.Context, a Actor, userID string) (*UserDetail, error) {
	userID, err := s.authorizeUser(ctx, a, userID)
	if err != nil {
		return nil, err
	}
	sessions, err := s.sessions.UserSessions(ctx, userID)
	if err != nil {
		return nil, errInternal(err)
	}
	out := &UserDetail{UserSummary: UserSummary{ID: userID}}
	du, err := s.dir.User(ctx, userID)
	switch {
	case errors.Is(err, directory.ErrUnknown) && len(sessions) == 0:
		return nil, apperr.E(apperr.NotFound, "User not found in the directory.")
	case errors.Is(err, directory.ErrUnknown):
		out.Email, out.Name = sessions[0].Email, sessions[0].Name
	case err != nil:
		return nil, errInternal(err)
	default:
		out.Email, out.Name = du.Email, du.Name
	}
	ms, err := s.dir.Memberships(ctx, userID)
	if err != nil {
		return nil, errInternal(err)
	}
	for _, m := range ms {
		out.Orgs = append(out.Orgs, m.OrgCode)
		for _, k := range m.RoleKeys {
			if !slices.Contains(out.Roles, k) {
				out.Roles = append(out.Roles, k)
			}
		}
	}
	slices.Sort(out.Roles)
	tombs, err := s.db.LiveDeniedKeys(ctx, time.Now())
	if err != nil {
		return nil, errInternal(err)
	}
	grants, err := s.dir.UserGrants(ctx, userID, "")
	if err != nil {
		return nil, errInternal(err)
	}
	for _, g := range grants {
		up := UserPermission{Key: g.Key, Name: g.Name, OrgCode: g.OrgCode, Tombstoned: slices.Contains(tombs, g.Key),
			Reasons: directory.Reasons(g.Via)}
		fanout.SortReasons(up.Reasons)
		out.Grants = append(out.Grants, up)
		if !up.Tombstoned && !slices.Contains(out.Permissions, g.Key) {
			out.Permissions = append(out.Permissions, g.Key)
		}
	}
	slices.Sort(out.Permissions)

	epochs, err := s.db.UserEpochs(ctx, []string{userID})
	if err != nil {
		return nil, errInternal(err)
	}
	e := epochs[userID]
	out.ClaimsEpoch, out.LastClaimsRefresh = e.Epoch, e.ChangedAt
	if err := s.lastClaimsRefresh(ctx, &out.UserSummary); err != nil {
		return nil, err
	}
	out.LiveSessions = len(sessions)
	for _, ss := range sessions {
		out.Sessions = append(out.Sessions, SessionInfo{
			OrgCode: ss.OrgCode, CreatedAt: ss.CreatedAt, LastSeenAt: ss.LastSeenAt, RefreshedAt: ss.RefreshedAt,
			AccessExpiresAt: ss.AccessExpiresAt, ExpiresAt: ss.ExpiresAt, ClaimsEpoch: ss.ClaimsEpoch,
			Stale: ss.ClaimsEpoch < e.Epoch, Permissions: slices.Clone(ss.Permissions), UserAgent: ss.UserAgent,
		})
		if ss.RefreshedAt.After(out.LastSessionRefresh) {
			out.LastSessionRefresh = ss.RefreshedAt
		}
	}
	return out, nil
}

// authorizeUser checks the actor like authorize and returns userID in
// Kinde's form, or apperr.NotFound when there is none.
func (s *Service) authorizeUser(ctx context.Context, a Actor, userID string) (string, error) {
	if err := s.authorize(ctx, a); err != nil {
		return "", err
	}
	if userID = kinde.NormalizeUserID(userID); userID == "" {
		return "", apperr.E(apperr.NotFound, "User not found.")
	}
	return userID, nil
}

// RefreshUserClaims starts a single-user fan-out: refresh_claims at Kinde,
// then the epoch bump that makes their sessions refresh. It returns
// apperr.NotFound for a user Kinde does not know.
func (s *Service) RefreshUserClaims(ctx context.Context, a Actor, userID string) (*FanoutStarted, error) {
	userID, err := s.authorizeUser(ctx, a, userID)
	if err != nil {
		return nil, err
	}
	ku, err := s.kinde.User(ctx, userID)
	if err != nil {
		s.audit(ctx, a, "user.refresh_claims", userID, store.AuditFailed, "Kinde did not find the user: "+fanout.ReadableError(err))
		return nil, kindeError(err, "User")
	}
	f := &store.Fanout{ID: fanout.NewID(), Kind: FanoutUserRefresh, ActorID: a.UserID, ActorEmail: a.Email,
		Reason: "An admin refreshed your claims."}
	items := []store.FanoutItem{{UserID: userID, Email: ku.Email}}
	err = s.db.InTx(ctx, func(tx *store.Tx) error {
		if err := s.fanouts.StartTx(ctx, tx, f, items); err != nil {
			return err
		}
		return tx.AddAudit(ctx, store.AuditEntry{
			ActorID: a.UserID, Actor: a.name(), Action: "user.refresh_claims", Target: userID + " (" + ku.Email + ")",
			Outcome: store.AuditOK, Detail: "Claims refresh queued (fan-out " + f.ID + ").",
		})
	})
	if err != nil {
		s.audit(ctx, a, "user.refresh_claims", userID, store.AuditFailed, "Could not queue the refresh.")
		return nil, errInternal(err)
	}
	s.publishProgress(ctx, f.ID, "", "")
	return &FanoutStarted{FanoutID: f.ID, Total: 1}, nil
}

// RevokeResult is what RevokeUserSessions did.
type RevokeResult struct {
	LocalSessions      int  // permsync sessions deleted
	KindeSessionsEnded bool // Kinde's DELETE /users/{id}/sessions succeeded
}

// RevokeUserSessions signs a user out everywhere, in the order that makes
// it stick: first Kinde ends the user's sessions and refresh tokens (and
// the refresh token of each permsync session is revoked), so nothing can
// sign them straight back in; then permsync's sessions are deleted; then
// their open pages are told (session-ended, by an admin). If Kinde fails,
// the local sessions are still deleted: the result says so and the error
// is apperr.Unavailable, since the user's Kinde session may sign them in
// again.
func (s *Service) RevokeUserSessions(ctx context.Context, a Actor, userID string) (*RevokeResult, error) {
	userID, err := s.authorizeUser(ctx, a, userID)
	if err != nil {
		return nil, err
	}
	kindeErr := s.kinde.DeleteUserSessions(ctx, userID)
	if s.tokens != nil {
		rows, err := s.sessions.UserSessions(ctx, userID)
		if err != nil {
			return nil, errInternal(err)
		}
		if err := s.tokens.RevokeTokens(ctx, rows); err != nil {
			s.log.WarnContext(ctx, "revoke sessions: a refresh token could not be revoked", "user_id", userID, "error", err)
		}
	}
	n, err := s.sessions.DeleteUserSessions(ctx, userID)
	if err != nil {
		s.audit(ctx, a, "user.revoke_sessions", userID, store.AuditFailed, "Could not delete the local sessions.")
		return nil, errInternal(err)
	}
	res := &RevokeResult{LocalSessions: int(n), KindeSessionsEnded: kindeErr == nil}
	events.PublishJSON(s.pub, events.UserTopic(userID), events.EventSessionEnded,
		events.SessionEndedData{Reason: "An admin signed you out.", By: events.EndedByAdmin})
	if kindeErr != nil {
		s.audit(ctx, a, "user.revoke_sessions", userID, store.AuditPartial,
			fmt.Sprintf("Deleted %d local session(s); Kinde's sessions were not ended: %s", n, fanout.ReadableError(kindeErr)))
		return res, apperr.Wrap(kindeErr, apperr.Unavailable, fmt.Sprintf(
			"Ended %d permsync session(s), but Kinde's sessions could not be ended, so the user may be signed in again without a password: %s",
			n, apperr.MessageOf(kindeError(kindeErr, "User"))))
	}
	s.audit(ctx, a, "user.revoke_sessions", userID, store.AuditOK,
		fmt.Sprintf("Ended the user's Kinde sessions, then deleted %d local session(s).", n))
	return res, nil
}

// TokenRevoker revokes the refresh tokens of sessions at Kinde
// (*auth.Refresher).
type TokenRevoker interface {
	RevokeTokens(ctx context.Context, rows []store.Session) error
}

// UseTokenRevoker makes RevokeUserSessions revoke each session's refresh
// token at Kinde as well. The app calls it once, before serving.
func (s *Service) UseTokenRevoker(r TokenRevoker) { s.tokens = r }

// lastClaimsRefresh moves the user's last claims refresh to the last time
// Kinde's claim cache for them was cleared, if that is later (a "Refresh
// session" the user clicked themselves counts).
func (s *Service) lastClaimsRefresh(ctx context.Context, u *UserSummary) error {
	at, err := s.db.ClaimsClearedAt(ctx, u.ID)
	if err != nil {
		return errInternal(err)
	}
	if at.After(u.LastClaimsRefresh) {
		u.LastClaimsRefresh = at
	}
	return nil
}
