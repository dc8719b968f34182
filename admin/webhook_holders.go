package admin

import (
	"context"
	"time"

	"permsync/kinde"
	"permsync/store"
)

// sessionHolders returns the users with a live session carrying key.
func (s *Service) sessionHolders(ctx context.Context, key string) ([]AffectedUser, error) {
	ids, err := s.sessions.UsersWithPermission(ctx, key)
	if err != nil {
		return nil, err
	}
	out := make([]AffectedUser, 0, len(ids))
	for _, id := range ids {
		out = append(out, AffectedUser{UserID: kinde.NormalizeUserID(id), Reasons: []Reason{{Kind: ReasonSession}}})
	}
	return out, nil
}

// cachedDirectory is the last directory snapshot, however old, or nil. It
// never calls Kinde.
func (s *Service) cachedDirectory() *directory {
	s.dirMu.Lock()
	defer s.dirMu.Unlock()
	return s.dir
}

func (s *Service) snapshotPermission(id string) (kinde.Permission, bool) {
	if d := s.cachedDirectory(); d != nil {
		return d.permission(id)
	}
	return kinde.Permission{}, false
}

// snapshotHolders returns the members the last snapshot showed holding key.
func (s *Service) snapshotHolders(key string) []AffectedUser {
	d := s.cachedDirectory()
	if d == nil {
		return nil
	}
	var out []AffectedUser
	for _, u := range d.users {
		if rs, ok := u.perms[key]; ok {
			out = append(out, AffectedUser{UserID: u.id, Email: u.email, Name: u.name, Reasons: rs})
		}
	}
	return out
}

func (s *Service) snapshotRoleKey(id string) string {
	if d := s.cachedDirectory(); d != nil {
		for _, r := range d.roles {
			if r.ID == id {
				return r.Key
			}
		}
	}
	return ""
}

func (s *Service) snapshotRoleHolders(key string) []string {
	d := s.cachedDirectory()
	if d == nil || key == "" {
		return nil
	}
	var out []string
	for _, u := range d.users {
		for _, r := range u.roles {
			if r == key {
				out = append(out, u.id)
				break
			}
		}
	}
	return out
}

// knownOrgs returns the organizations to search, or none if Kinde fails.
func (s *Service) knownOrgs(ctx context.Context) []string {
	orgs, err := s.organizations(ctx)
	if err != nil {
		return nil
	}
	return orgs
}

// tombstoned reports whether key has a live tombstone written for permID.
func (s *Service) tombstoned(ctx context.Context, key, permID string) bool {
	ts, err := s.db.LiveTombstones(ctx, time.Now())
	if err != nil {
		return false
	}
	for _, t := range ts {
		if t.PermissionKey == key && (t.PermissionID == permID || t.PermissionID == "") {
			return true
		}
	}
	return false
}

// mergeAffected adds b's users and reasons to a.
func mergeAffected(a, b []AffectedUser) []AffectedUser {
	idx := make(map[string]int, len(a))
	for i, u := range a {
		idx[u.UserID] = i
	}
	for _, u := range b {
		if i, ok := idx[u.UserID]; ok {
			for _, r := range u.Reasons {
				a[i].Reasons = addReason(a[i].Reasons, r)
			}
			if a[i].Email == "" {
				a[i].Email, a[i].Name = u.Email, u.Name
			}
			continue
		}
		idx[u.UserID] = len(a)
		a = append(a, u)
	}
	return a
}

func fanoutItems(affected []AffectedUser) []store.FanoutItem {
	items := make([]store.FanoutItem, len(affected))
	for i, u := range affected {
		sortReasons(u.Reasons)
		items[i] = store.FanoutItem{UserID: u.UserID, Email: u.Email, Reasons: formatReasons(u.Reasons)}
	}
	return items
}
