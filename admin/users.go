package admin

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"permsync/apperr"
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
	// roles and direct grants) minus keys denied to everyone, sorted.
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

// UserList is the users page.
type UserList struct {
	Query string
	Users []UserSummary
	Total int // members before the search
	AsOf  time.Time
}

// UserPermission is one permission a user holds, and why.
type UserPermission struct {
	Key        string
	Name       string
	OrgCode    string
	Reasons    []Reason
	Tombstoned bool // deleted recently: denied to everyone (sessions with older claims no longer honour it)
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
	Grants   []UserPermission // fresh from Kinde, with reasons
	Sessions []SessionInfo
}

// Users lists organization members with their roles, effective
// permissions, live sessions and last refreshes. query filters by email,
// name, id or role key (case-insensitive substring).
func (s *Service) Users(ctx context.Context, a Actor, query string) (*UserList, error) {
	d, err := s.authorizedDirectory(ctx, a)
	if err != nil {
		return nil, err
	}
	q := newSearch(query)
	out := &UserList{Query: q.query, Total: len(d.users), AsOf: d.builtAt}
	var matched []*dirUser
	for _, u := range d.users {
		if q.matches(u.email, u.name, u.id, strings.Join(u.roles, "\x00")) {
			matched = append(matched, u)
		}
	}
	ids := make([]string, len(matched))
	for i, u := range matched {
		ids[i] = u.id
	}
	epochs, err := s.db.UserEpochs(ctx, ids)
	if err != nil {
		return nil, errInternal(err)
	}
	tombs, err := s.db.LiveDeniedKeys(ctx, time.Now())
	if err != nil {
		return nil, errInternal(err)
	}
	for _, u := range matched {
		sum := UserSummary{ID: u.id, Email: u.email, Name: u.name, Orgs: slices.Clone(u.orgs), Roles: slices.Clone(u.roles)}
		for _, k := range sortedKeys(u.perms) {
			if !slices.Contains(tombs, k) {
				sum.Permissions = append(sum.Permissions, k)
			}
		}
		if e, ok := epochs[u.id]; ok {
			sum.ClaimsEpoch, sum.LastClaimsRefresh = e.Epoch, e.ChangedAt
		}
		if err := s.lastClaimsRefresh(ctx, &sum); err != nil {
			return nil, err
		}
		sessions, err := s.sessions.UserSessions(ctx, u.id)
		if err != nil {
			return nil, errInternal(err)
		}
		sum.LiveSessions = len(sessions)
		for _, ss := range sessions {
			if ss.RefreshedAt.After(sum.LastSessionRefresh) {
				sum.LastSessionRefresh = ss.RefreshedAt
			}
		}
		out.Users = append(out.Users, sum)
	}
	return out, nil
}

// UserDetail returns one user, fresh from Kinde: their roles and permissions
// with reasons in each organization, and their live sessions. It returns
// apperr.NotFound for an unknown user.
func (s *Service) UserDetail(ctx context.Context, a Actor, userID string) (*UserDetail, error) {
	userID, err := s.authorizeUser(ctx, a, userID)
	if err != nil {
		return nil, err
	}
	ku, err := s.kinde.User(ctx, userID)
	if err != nil {
		return nil, kindeError(err, "User")
	}
	out := &UserDetail{UserSummary: UserSummary{ID: ku.ID, Email: ku.Email,
		Name: strings.TrimSpace(ku.FirstName + " " + ku.LastName)}}

	orgs, err := s.userOrgs(ctx, userID)
	if err != nil {
		return nil, err
	}
	tombs, err := s.db.LiveDeniedKeys(ctx, time.Now())
	if err != nil {
		return nil, errInternal(err)
	}
	effective := map[string]bool{}
	for _, org := range orgs {
		roles, err := s.kinde.OrganizationUserRoles(ctx, org, userID)
		if kinde.IsUnknownID(err) {
			continue // not a member of this organization
		}
		if err != nil {
			return nil, kindeError(err, "")
		}
		out.Orgs = append(out.Orgs, org)
		for _, r := range roles {
			if !slices.Contains(out.Roles, r.Key) {
				out.Roles = append(out.Roles, r.Key)
			}
		}
		perms, err := s.kinde.OrganizationUserPermissions(ctx, org, userID)
		if err != nil && !kinde.IsUnknownID(err) {
			return nil, kindeError(err, "")
		}
		for _, p := range perms {
			g := UserPermission{Key: p.Key, Name: p.Name, OrgCode: org, Tombstoned: slices.Contains(tombs, p.Key)}
			if len(p.Roles) == 0 {
				g.Reasons = []Reason{{Kind: ReasonDirect}}
			}
			for _, r := range p.Roles {
				g.Reasons = fanout.AddReason(g.Reasons, Reason{Kind: ReasonRole, RoleKey: r.Key})
			}
			fanout.SortReasons(g.Reasons)
			out.Grants = append(out.Grants, g)
			if !g.Tombstoned {
				effective[p.Key] = true
			}
		}
	}
	slices.Sort(out.Roles)
	slices.SortFunc(out.Grants, func(a, b UserPermission) int {
		if c := strings.Compare(a.Key, b.Key); c != 0 {
			return c
		}
		return strings.Compare(a.OrgCode, b.OrgCode)
	})
	out.Permissions = sortedKeys(effective)

	epochs, err := s.db.UserEpochs(ctx, []string{userID})
	if err != nil {
		return nil, errInternal(err)
	}
	e := epochs[userID]
	out.ClaimsEpoch, out.LastClaimsRefresh = e.Epoch, e.ChangedAt
	if err := s.lastClaimsRefresh(ctx, &out.UserSummary); err != nil {
		return nil, err
	}
	sessions, err := s.sessions.UserSessions(ctx, userID)
	if err != nil {
		return nil, errInternal(err)
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

// userOrgs returns the organizations the cached snapshot places the user
// in, or every organization if the snapshot does not know them.
func (s *Service) userOrgs(ctx context.Context, userID string) ([]string, error) {
	s.dirMu.Lock()
	d := s.dir
	s.dirMu.Unlock()
	if d != nil {
		if u := d.userByID[userID]; u != nil {
			return slices.Clone(u.orgs), nil
		}
	}
	orgs, err := s.organizations(ctx)
	if err != nil {
		return nil, kindeError(err, "")
	}
	return orgs, nil
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

// RevokeUserSessions signs a user out everywhere: it deletes their permsync
// sessions (their open pages get session-ended), then ends their Kinde
// sessions so they must sign in again. If Kinde fails, the local sessions
// are still gone: the result says so and the error is apperr.Unavailable.
func (s *Service) RevokeUserSessions(ctx context.Context, a Actor, userID string) (*RevokeResult, error) {
	userID, err := s.authorizeUser(ctx, a, userID)
	if err != nil {
		return nil, err
	}
	n, err := s.sessions.DeleteUserSessions(ctx, userID)
	if err != nil {
		s.audit(ctx, a, "user.revoke_sessions", userID, store.AuditFailed, "Could not delete the local sessions.")
		return nil, errInternal(err)
	}
	res := &RevokeResult{LocalSessions: int(n)}
	events.PublishJSON(s.pub, events.UserTopic(userID), events.EventSessionEnded, events.SessionEndedData{Reason: "An admin signed you out."})

	if err := s.kinde.DeleteUserSessions(ctx, userID); err != nil {
		s.audit(ctx, a, "user.revoke_sessions", userID, store.AuditPartial,
			fmt.Sprintf("Deleted %d local session(s); Kinde's sessions were not ended: %s", n, fanout.ReadableError(err)))
		return res, apperr.Wrap(err, apperr.Unavailable, fmt.Sprintf(
			"Ended %d permsync session(s), but Kinde's sessions could not be ended: %s", n, apperr.MessageOf(kindeError(err, "User"))))
	}
	res.KindeSessionsEnded = true
	s.audit(ctx, a, "user.revoke_sessions", userID, store.AuditOK,
		fmt.Sprintf("Deleted %d local session(s) and ended the user's Kinde sessions.", n))
	return res, nil
}

// lastClaimsRefresh brings LastClaimsRefresh up to the latest successful
// refresh_claims for the user, whoever asked for it: a fan-out (which also
// bumps the epoch) or the user's own Refresh session button (which does
// not).
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
