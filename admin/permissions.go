package admin

import (
	"cmp"
	"context"
	"slices"
	"strings"
	"time"

	"permsync/directory"
	"permsync/fanout"
	"permsync/kinde"
)

// PermissionSummary is one row of the permissions page.
type PermissionSummary struct {
	ID          string
	Key         string
	Name        string
	Description string
	Roles       []RoleRef // roles that grant it
	Holders     int       // organization members holding it, through a role or directly
	IsAdmin     bool      // it is the admin permission; it cannot be deleted here
}

// PermissionList is the permissions page.
type PermissionList struct {
	Query       string // the search it was filtered by
	Permissions []PermissionSummary
	Total       int // permissions at Kinde, before the search
	// Tombstones are recently deleted keys still being removed from sessions.
	Tombstones []Tombstone
	AsOf       time.Time // when Kinde was read
}

// Tombstone is a deleted permission key, denied to everyone: sessions whose
// claims predate its deletion at Kinde no longer honour it.
type Tombstone struct {
	PermissionKey string
	PermissionID  string
	CreatedAt     time.Time
	ExpiresAt     time.Time // zero while Pending
	Reason        string
	// Pending: not deleted at Kinde yet (an undo window, or Kinde
	// refusing); denied to every session until then.
	Pending bool
}

// PermissionDetail is the permission page: the permission and who deleting
// it would affect, a page at a time.
type PermissionDetail struct {
	Permission PermissionSummary
	// Affected is one page of the fan-out's preview: role holders, direct
	// holders and users whose live sessions carry the key, by email.
	Affected       []AffectedUser
	AffectedTotal  int    // every affected user
	Matched        int    // affected users matching Query
	Query          string // the search the page is filtered by
	Offset, Limit  int
	RoleHolders    int // affected through a role
	DirectHolders  int // affected through a direct grant
	SessionHolders int // with a live session carrying the key
	CanDelete      bool
	// DeleteBlocked explains why CanDelete is false.
	DeleteBlocked string
	AsOf          time.Time // the directory's last completed sync
}

// PermissionQuery picks a permission page: the permission, a search over
// the affected users' email, name and id, and where the page starts.
type PermissionQuery struct {
	ID     string
	Search string
	Offset int
	Limit  int // ≤ 0 means directory.DefaultPageSize
}

// Permissions lists the permissions in the directory, with the roles that
// grant each and how many users hold it. query filters by key, name or
// description (case-insensitive substring).
func (s *Service) Permissions(ctx context.Context, a Actor, query string) (*PermissionList, error) {
	if err := s.authorize(ctx, a); err != nil {
		return nil, err
	}
	rows, err := s.dir.Permissions(ctx)
	if err != nil {
		return nil, errInternal(err)
	}
	st, _, err := s.directoryStatus(ctx)
	if err != nil {
		return nil, err
	}
	q := newSearch(query)
	out := &PermissionList{Query: q.query, Total: len(rows), AsOf: st.CompletedAt}
	for _, p := range rows {
		if q.matches(p.Key, p.Name, p.Description) {
			out.Permissions = append(out.Permissions, s.summary(p))
		}
	}
	if out.Tombstones, err = s.tombstones(ctx); err != nil {
		return nil, err
	}
	return out, nil
}

func (s *Service) summary(p directory.PermissionRow) PermissionSummary {
	out := PermissionSummary{ID: p.ID, Key: p.Key, Name: p.Name, Description: p.Description,
		Holders: p.Holders, IsAdmin: p.Key == s.adminKey}
	for _, r := range p.Roles {
		out.Roles = append(out.Roles, RoleRef{ID: r.ID, Key: r.Key, Name: r.Name})
	}
	return out
}

// tombstones lists the live denials of a key to everyone.
func (s *Service) tombstones(ctx context.Context) ([]Tombstone, error) {
	ds, err := s.db.LiveDenials(ctx, time.Now())
	if err != nil {
		return nil, errInternal(err)
	}
	var out []Tombstone
	for _, d := range ds {
		if !d.Everyone() {
			continue
		}
		t := Tombstone{PermissionKey: d.PermissionKey, PermissionID: d.PermissionID, CreatedAt: d.CreatedAt,
			Reason: d.Reason, Pending: d.SettledAt.IsZero()}
		if !t.Pending {
			t.ExpiresAt = d.ExpiresAt
		}
		out = append(out, t)
	}
	return out, nil
}

// PermissionDetail returns one permission and the first page of who
// deleting it would affect. It returns apperr.NotFound for an unknown id.
func (s *Service) PermissionDetail(ctx context.Context, a Actor, id string) (*PermissionDetail, error) {
	return s.PermissionPage(ctx, a, PermissionQuery{ID: id})
}

// PermissionPage returns one permission and a page of who deleting it would
// affect, from the directory and the session store (no Kinde call), with
// counts over all of them. The directory's holders come first, by email,
// paged and counted in SQL; after them, users whose live session carries the
// key but whom the directory does not list (a grant newer than its copy).
// It returns apperr.NotFound for an unknown id.
func (s *Service) PermissionPage(ctx context.Context, a Actor, q PermissionQuery) (*PermissionDetail, error) {
	if err := s.authorize(ctx, a); err != nil {
		return nil, err
	}
	p, err := s.findPermission(ctx, q.ID)
	if err != nil {
		return nil, err
	}
	row, err := s.dir.PermissionRowByID(ctx, p.ID)
	if err != nil {
		return nil, errInternal(err)
	}
	st, _, err := s.directoryStatus(ctx)
	if err != nil {
		return nil, err
	}
	if q.Limit <= 0 {
		q.Limit = directory.DefaultPageSize
	}
	q.Offset = max(q.Offset, 0)
	search := newSearch(q.Search)
	page, err := s.dir.HolderUsers(ctx, p.ID, directory.HolderQuery{Search: search.query, Offset: q.Offset, Limit: q.Limit})
	if err != nil {
		return nil, errInternal(err)
	}
	others, sessionHolders, err := s.sessionOnlyHolders(ctx, p.Key)
	if err != nil {
		return nil, err
	}
	out := &PermissionDetail{CanDelete: true, Query: search.query, Offset: q.Offset, Limit: q.Limit,
		AsOf: st.CompletedAt, Permission: s.summary(*row),
		AffectedTotal: page.Users + len(others), RoleHolders: page.ViaRoles, DirectHolders: page.Direct,
		SessionHolders: len(sessionHolders)}
	for _, h := range page.Holders {
		u := AffectedUser{UserID: h.UserID, Email: h.Email, Name: h.Name, Reasons: directory.Reasons(h.Via)}
		if sessionHolders[h.UserID] {
			u.Reasons = fanout.AddReason(u.Reasons, Reason{Kind: ReasonSession})
		}
		fanout.SortReasons(u.Reasons)
		out.Affected = append(out.Affected, u)
	}
	var matchedOthers []AffectedUser
	for _, u := range others {
		if search.matches(u.Email, u.Name, u.UserID) {
			matchedOthers = append(matchedOthers, u)
		}
	}
	out.Matched = page.Matched + len(matchedOthers)
	// The session-only users follow the directory's holders: the page takes
	// them once it has run past the directory's matches.
	from := max(q.Offset-page.Matched, 0)
	for i := from; i < len(matchedOthers) && len(out.Affected) < q.Limit; i++ {
		out.Affected = append(out.Affected, matchedOthers[i])
	}
	if p.Key == s.adminKey {
		out.CanDelete = false
		out.DeleteBlocked = "This permission grants access to this admin panel; permsync will not delete it."
	}
	return out, nil
}

// sessionOnlyHolders returns the users whose live session carries key but
// whom the directory does not list as holders (by email), and the set of
// every user with such a session.
func (s *Service) sessionOnlyHolders(ctx context.Context, key string) ([]AffectedUser, map[string]bool, error) {
	ids, err := s.sessions.UsersWithPermission(ctx, key)
	if err != nil {
		return nil, nil, errInternal(err)
	}
	withSession := map[string]bool{}
	for _, id := range ids {
		withSession[kinde.NormalizeUserID(id)] = true
	}
	if len(withSession) == 0 {
		return nil, withSession, nil
	}
	holders, err := s.dir.HolderIDs(ctx, key)
	if err != nil {
		return nil, nil, errInternal(err)
	}
	listed := make(map[string]bool, len(holders))
	for _, id := range holders {
		listed[id] = true
	}
	var out []AffectedUser
	for id := range withSession {
		if listed[id] {
			continue
		}
		u := AffectedUser{UserID: id, Reasons: []Reason{{Kind: ReasonSession}}}
		if sess, err := s.sessions.UserSessions(ctx, id); err == nil && len(sess) > 0 {
			u.Email, u.Name = sess[0].Email, sess[0].Name
		}
		out = append(out, u)
	}
	slices.SortFunc(out, func(a, b AffectedUser) int {
		return cmp.Or(strings.Compare(a.Email, b.Email), strings.Compare(a.UserID, b.UserID))
	})
	return out, withSession, nil
}
