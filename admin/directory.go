package admin

import (
	"context"
	"errors"
	"strings"
	"time"

	"permsync/apperr"
	"permsync/directory"
	"permsync/fanout"
	"permsync/kinde"
	"permsync/store"
)

// The admin pages read the directory, permsync's local copy of Kinde's RBAC
// state (package directory): no page view calls Kinde.

// search is the list pages' filter: a case-insensitive substring of any of
// a row's fields. The empty search matches every row.
type search struct {
	query string // as typed, trimmed
	lower string
}

func newSearch(query string) search {
	query = strings.TrimSpace(query)
	return search{query: query, lower: strings.ToLower(query)}
}

func (q search) matches(fields ...string) bool {
	return q.lower == "" || strings.Contains(strings.ToLower(strings.Join(fields, "\x00")), q.lower)
}

// DirectoryStatus is how fresh the directory is, for every admin page.
type DirectoryStatus struct {
	Synced      bool      // a full sync completed at least once
	Running     bool      // a sync is in progress (or will resume)
	CompletedAt time.Time // the last completed full sync
	Summary     string    // "synced 14 s ago", "syncing: 120 of 1,000 organizations (first sync)"
	OrgsDone    int
	OrgsTotal   int
	LastCalls   int64         // Management API calls of the last completed sync
	LastTook    time.Duration // how long it took
	LastError   string        // why the last attempt failed, if it did after the last completion
}

// directoryStatus reads the directory's freshness.
func (s *Service) directoryStatus(ctx context.Context) (*directory.Status, DirectoryStatus, error) {
	st, err := s.dir.Status(ctx)
	if err != nil {
		return nil, DirectoryStatus{}, errInternal(err)
	}
	out := DirectoryStatus{Synced: st.Synced(), Running: st.Running(), CompletedAt: st.CompletedAt,
		Summary: st.Summary(time.Now()), OrgsDone: st.OrgsDone, OrgsTotal: st.OrgsTotal,
		LastCalls: st.LastCalls, LastTook: st.LastDuration}
	if st.LastError != "" && st.LastErrorAt.After(st.CompletedAt) {
		out.LastError = st.LastError
	}
	return st, out, nil
}

// Freshness says how fresh the directory the admin pages read is ("synced
// 14 s ago", or the sync's progress). It needs no actor: it reveals nothing
// but time, and the routes that show it are admin-only.
func (s *Service) Freshness(ctx context.Context) string {
	_, st, err := s.directoryStatus(ctx)
	if err != nil {
		return ""
	}
	return st.Summary
}

// findPermission looks a permission up in the directory.
func (s *Service) findPermission(ctx context.Context, id string) (kinde.Permission, error) {
	if strings.TrimSpace(id) == "" {
		return kinde.Permission{}, apperr.E(apperr.NotFound, "Permission not found.")
	}
	p, err := s.dir.PermissionByID(ctx, id)
	if errors.Is(err, directory.ErrUnknown) {
		return kinde.Permission{}, apperr.E(apperr.NotFound,
			"Permission not found. It may have been deleted, or be newer than the directory's last sync.")
	}
	if err != nil {
		return kinde.Permission{}, errInternal(err)
	}
	return kinde.Permission{ID: p.ID, Key: p.Key, Name: p.Name, Description: p.Description}, nil
}

// affectedUsers returns every user a deletion of key reaches: its holders
// in the directory (through roles or directly, in any organization) and
// every user with a live session whose token carries it, by email.
func (s *Service) affectedUsers(ctx context.Context, key string) ([]AffectedUser, error) {
	hs, err := s.dir.AllHolders(ctx, key)
	if err != nil {
		return nil, errInternal(err)
	}
	out := directory.Affected(hs)
	idx := make(map[string]int, len(out))
	for i, u := range out {
		idx[u.UserID] = i
	}
	ids, err := s.sessions.UsersWithPermission(ctx, key)
	if err != nil {
		return nil, errInternal(err)
	}
	for _, id := range ids {
		id = kinde.NormalizeUserID(id)
		i, ok := idx[id]
		if !ok {
			i = len(out)
			idx[id] = i
			u := AffectedUser{UserID: id}
			if sess, err := s.sessions.UserSessions(ctx, id); err == nil && len(sess) > 0 {
				u.Email, u.Name = sess[0].Email, sess[0].Name
			}
			out = append(out, u)
		}
		out[i].Reasons = fanout.AddReason(out[i].Reasons, Reason{Kind: ReasonSession})
	}
	for i := range out {
		fanout.SortReasons(out[i].Reasons)
	}
	return out, nil
}

// PermissionKeys keeps the permission id → key map for Kinde sync.
type PermissionKeys struct{ s *Service }

// PermissionKeys returns the service's PermissionKeys.
func (s *Service) PermissionKeys() PermissionKeys { return PermissionKeys{s: s} }

// RememberPermissions records permission ids and keys.
func (k PermissionKeys) RememberPermissions(ctx context.Context, perms []kinde.Permission) {
	k.s.rememberPermissions(ctx, perms)
}

// rememberPermissions keeps the permission id → key map current. A key
// created again under a new id lifts nothing: its denial keeps it from the
// tokens whose claims predate the deletion, and tokens granted after the new
// grant carry it (store.Denial). Failures are logged: the listing itself
// succeeded.
func (s *Service) rememberPermissions(ctx context.Context, perms []kinde.Permission) {
	rows := make([]store.PermissionKey, len(perms))
	for i, p := range perms {
		rows[i] = store.PermissionKey{ID: p.ID, Key: p.Key, Name: p.Name, Description: p.Description}
	}
	if err := s.db.UpsertPermissionKeys(ctx, rows); err != nil {
		s.log.WarnContext(ctx, "admin: could not record permission keys", "error", err)
	}
}
