package kindesync

import (
	"context"
	"time"

	"permsync/directory"
	"permsync/fanout"
	"permsync/kinde"
)

// dirHolders returns every holder of key the directory knows, one per user,
// with how they hold it.
func (s *Syncer) dirHolders(ctx context.Context, key string) ([]fanout.AffectedUser, error) {
	hs, err := s.dir.AllHolders(ctx, key)
	if err != nil {
		return nil, err
	}
	return directory.Affected(hs), nil
}

// sessionHolders returns the users with a live session carrying key.
func (s *Syncer) sessionHolders(ctx context.Context, key string) ([]fanout.AffectedUser, error) {
	ids, err := s.sessions.UsersWithPermission(ctx, key)
	if err != nil {
		return nil, err
	}
	out := make([]fanout.AffectedUser, 0, len(ids))
	for _, id := range ids {
		out = append(out, fanout.AffectedUser{UserID: kinde.NormalizeUserID(id), Reasons: []fanout.Reason{{Kind: fanout.ReasonSession}}})
	}
	return out, nil
}

// tombstoned reports whether key is denied to everyone by a live denial
// written for permID.
func (s *Syncer) tombstoned(ctx context.Context, key, permID string) bool {
	ds, err := s.db.LiveDenials(ctx, time.Now())
	if err != nil {
		return false
	}
	for _, t := range ds {
		if t.Everyone() && t.PermissionKey == key && (t.PermissionID == permID || t.PermissionID == "") {
			return true
		}
	}
	return false
}
