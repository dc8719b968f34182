package admin

import (
	"cmp"
	"context"
	"slices"
	"strings"
	"time"

	"permsync/apperr"
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
// it would affect.
type PermissionDetail struct {
	Permission PermissionSummary
	// Affected is the preview of the fan-out: role holders, direct holders and
	// users whose live sessions carry the key, by email.
	Affected       []AffectedUser
	RoleHolders    int // affected through a role
	DirectHolders  int // affected through a direct grant
	SessionHolders int // with a live session carrying the key
	CanDelete      bool
	// DeleteBlocked explains why CanDelete is false.
	DeleteBlocked string
}

// Permissions lists Kinde's permissions, with the roles that grant each and
// how many members hold it. query filters by key, name or description
// (case-insensitive substring).
func (s *Service) Permissions(ctx context.Context, a Actor, query string) (*PermissionList, error) {
	d, err := s.authorizedDirectory(ctx, a)
	if err != nil {
		return nil, err
	}
	q := newSearch(query)
	out := &PermissionList{Query: q.query, Total: len(d.perms), AsOf: d.builtAt}
	for _, p := range d.perms {
		if q.matches(p.Key, p.Name, p.Description) {
			out.Permissions = append(out.Permissions, s.summary(d, p))
		}
	}
	if out.Tombstones, err = s.tombstones(ctx); err != nil {
		return nil, err
	}
	return out, nil
}

func (s *Service) summary(d *directory, p kinde.Permission) PermissionSummary {
	return PermissionSummary{
		ID: p.ID, Key: p.Key, Name: p.Name, Description: p.Description,
		Roles:   d.rolesWith(p),
		Holders: d.holders(p.Key),
		IsAdmin: p.Key == s.adminKey,
	}
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

// PermissionDetail returns one permission and a fresh preview of who
// deleting it would affect. It returns apperr.NotFound for an unknown id.
func (s *Service) PermissionDetail(ctx context.Context, a Actor, id string) (*PermissionDetail, error) {
	if err := s.authorize(ctx, a); err != nil {
		return nil, err
	}
	d, p, err := s.findPermission(ctx, id)
	if err != nil {
		return nil, err
	}
	affected, err := s.resolveAffected(ctx, p, d.orgs)
	if err != nil {
		return nil, err
	}
	out := &PermissionDetail{Permission: s.summary(d, p), Affected: affected, CanDelete: true}
	for _, u := range affected {
		if fanout.HasRoleReason(u.Reasons) {
			out.RoleHolders++
		}
		if slices.Contains(u.Reasons, Reason{Kind: ReasonDirect}) {
			out.DirectHolders++
		}
		if slices.Contains(u.Reasons, Reason{Kind: ReasonSession}) {
			out.SessionHolders++
		}
	}
	if p.Key == s.adminKey {
		out.CanDelete = false
		out.DeleteBlocked = "This permission grants access to this admin panel; permsync will not delete it."
	}
	return out, nil
}

// findPermission looks a permission up in the snapshot, re-reading Kinde
// once if it is not there.
func (s *Service) findPermission(ctx context.Context, id string) (*directory, kinde.Permission, error) {
	if strings.TrimSpace(id) == "" {
		return nil, kinde.Permission{}, apperr.E(apperr.NotFound, "Permission not found.")
	}
	for _, fresh := range []bool{false, true} {
		d, err := s.directory(ctx, fresh)
		if err != nil {
			return nil, kinde.Permission{}, err
		}
		if p, ok := d.permission(id); ok && !s.deletedLocally(ctx, p.ID) {
			return d, p, nil
		}
	}
	return nil, kinde.Permission{}, apperr.E(apperr.NotFound, "Permission not found. It may have been deleted already.")
}

// deletedLocally reports whether permsync recorded the permission as deleted
// (a deletion's job deleted it at Kinde after the snapshot was taken).
func (s *Service) deletedLocally(ctx context.Context, id string) bool {
	k, err := s.db.PermissionKeyByID(ctx, id)
	return err == nil && !k.DeletedAt.IsZero()
}

// resolveAffected finds, fresh from Kinde and the session store, every user
// a deletion of p reaches (docs/ARCHITECTURE.md, the life of a deletion): holders of roles that contain it
// (GET /roles/{id}/permissions, /roles/{id}/users), direct holders
// (GET /organizations/{org}/users?permissions=key), and users with a live
// local session whose token carries the key.
func (s *Service) resolveAffected(ctx context.Context, p kinde.Permission, orgs []string) ([]AffectedUser, error) {
	byID := map[string]*AffectedUser{}
	add := func(id string, r Reason) *AffectedUser {
		id = kinde.NormalizeUserID(id)
		u := byID[id]
		if u == nil {
			u = &AffectedUser{UserID: id}
			byID[id] = u
		}
		u.Reasons = fanout.AddReason(u.Reasons, r)
		return u
	}

	roles, err := s.kinde.AllRoles(ctx)
	if err != nil {
		return nil, kindeError(err, "")
	}
	for _, r := range roles {
		perms, err := s.kinde.AllRolePermissions(ctx, r.ID)
		if err != nil {
			return nil, kindeError(err, "")
		}
		if !slices.ContainsFunc(perms, samePermission(p)) {
			continue
		}
		holders, err := s.kinde.AllRoleUsers(ctx, r.ID)
		if err != nil {
			return nil, kindeError(err, "")
		}
		for _, h := range holders {
			add(h.ID, Reason{Kind: ReasonRole, RoleKey: r.Key})
		}
	}

	names := map[string]kindeName{}
	for _, org := range orgs {
		direct, err := s.kinde.AllOrganizationUsers(ctx, org, kinde.OrgUserFilter{Permissions: []string{p.Key}})
		if err != nil {
			return nil, kindeError(err, "")
		}
		for _, m := range direct {
			names[m.ID] = nameOf(m)
			if u := byID[m.ID]; u != nil && fanout.HasRoleReason(u.Reasons) {
				continue // the filter may match grants through roles too
			}
			add(m.ID, Reason{Kind: ReasonDirect})
		}
	}

	sessionUsers, err := s.sessions.UsersWithPermission(ctx, p.Key)
	if err != nil {
		return nil, errInternal(err)
	}
	for _, id := range sessionUsers {
		add(id, Reason{Kind: ReasonSession})
	}

	s.fillNames(ctx, byID, names, orgs)
	out := make([]AffectedUser, 0, len(byID))
	for _, u := range byID {
		fanout.SortReasons(u.Reasons)
		out = append(out, *u)
	}
	slices.SortFunc(out, func(a, b AffectedUser) int {
		return cmp.Or(strings.Compare(a.Email, b.Email), strings.Compare(a.UserID, b.UserID))
	})
	return out, nil
}

// kindeName is how a member is shown.
type kindeName struct{ email, name string }

func nameOf(m kinde.OrganizationUser) kindeName {
	n := m.FullName
	if n == "" {
		n = strings.TrimSpace(m.FirstName + " " + m.LastName)
	}
	return kindeName{email: m.Email, name: n}
}

// fillNames adds emails and names to affected users: from members already
// read, then the cached snapshot, then the organization listings, then the
// users' own sessions. Missing names are not an error.
func (s *Service) fillNames(ctx context.Context, byID map[string]*AffectedUser, known map[string]kindeName, orgs []string) {
	missing := func() bool {
		for id := range byID {
			if known[id].email == "" {
				return true
			}
		}
		return false
	}
	s.dirMu.Lock()
	d := s.dir
	s.dirMu.Unlock()
	if d != nil {
		for id := range byID {
			if u := d.userByID[id]; u != nil && known[id].email == "" {
				known[id] = kindeName{email: u.email, name: u.name}
			}
		}
	}
	for _, org := range orgs {
		if !missing() {
			break
		}
		members, err := s.kinde.AllOrganizationUsers(ctx, org, kinde.OrgUserFilter{})
		if err != nil {
			s.log.WarnContext(ctx, "admin: could not list members for names", "org_code", org, "error", err)
			break
		}
		for _, m := range members {
			if known[m.ID].email == "" {
				known[m.ID] = nameOf(m)
			}
		}
	}
	for id, u := range byID {
		if k := known[id]; k.email != "" {
			u.Email, u.Name = k.email, k.name
			continue
		}
		if sess, err := s.sessions.UserSessions(ctx, id); err == nil && len(sess) > 0 {
			u.Email, u.Name = sess[0].Email, sess[0].Name
		}
	}
}
