package admin_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"permsync/admin"
	"permsync/apperr"
	"permsync/store"
)

// Every Service method refuses an actor without the admin permission, before
// touching Kinde; so does an admin whose permission was tombstoned.
func TestForbiddenForNonAdmins(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOpts{})
	ctx := context.Background()
	alice := h.userID("alice@acme.test")
	methods := map[string]func(admin.Actor) error{
		"Overview":    func(a admin.Actor) error { _, err := h.svc.Overview(ctx, a); return err },
		"Permissions": func(a admin.Actor) error { _, err := h.svc.Permissions(ctx, a, ""); return err },
		"PermissionDetail": func(a admin.Actor) error {
			_, err := h.svc.PermissionDetail(ctx, a, "any")
			return err
		},
		"DeletePermission": func(a admin.Actor) error {
			_, err := h.svc.DeletePermission(ctx, a, "any", "export:reports")
			return err
		},
		"Roles":              func(a admin.Actor) error { _, err := h.svc.Roles(ctx, a); return err },
		"Users":              func(a admin.Actor) error { _, err := h.svc.Users(ctx, a, ""); return err },
		"UserDetail":         func(a admin.Actor) error { _, err := h.svc.UserDetail(ctx, a, alice); return err },
		"RefreshUserClaims":  func(a admin.Actor) error { _, err := h.svc.RefreshUserClaims(ctx, a, alice); return err },
		"RevokeUserSessions": func(a admin.Actor) error { _, err := h.svc.RevokeUserSessions(ctx, a, alice); return err },
		"Fanouts":            func(a admin.Actor) error { _, err := h.svc.Fanouts(ctx, a, 0); return err },
		"Fanout":             func(a admin.Actor) error { _, err := h.svc.Fanout(ctx, a, "fo_x"); return err },
		"RetryFanout":        func(a admin.Actor) error { _, err := h.svc.RetryFanout(ctx, a, "fo_x"); return err },
		"Audit":              func(a admin.Actor) error { _, err := h.svc.Audit(ctx, a, 0); return err },
	}
	actors := map[string]admin.Actor{
		"analyst":     {UserID: alice, Email: "alice@acme.test", Permissions: []string{"read:reports", "export:reports"}},
		"anonymous":   {},
		"no user id":  {Permissions: []string{"admin:permissions"}},
		"similar key": {UserID: alice, Permissions: []string{"admin:permission", "ADMIN:PERMISSIONS"}},
	}
	h.dk.ResetRequests()
	for aname, a := range actors {
		for mname, call := range methods {
			t.Run(aname+"/"+mname, func(t *testing.T) {
				err := call(a)
				if apperr.CodeOf(err) != apperr.Forbidden {
					t.Fatalf("err = %v, want forbidden", err)
				}
				if apperr.MessageOf(err) == "" || strings.Contains(apperr.MessageOf(err), "admin:") {
					t.Fatalf("message %q", apperr.MessageOf(err))
				}
			})
		}
	}
	if n := len(h.dk.Requests()); n != 0 {
		t.Errorf("forbidden calls reached Kinde %d times", n)
	}

	// Once admin:permissions is tombstoned, even a token carrying it is refused.
	now := time.Now()
	if _, err := h.db.AddDenial(ctx, store.Denial{PermissionKey: "admin:permissions", PermissionID: "x",
		CreatedAt: now, SettledAt: now, ExpiresAt: now.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	for mname, call := range methods {
		if err := call(h.admin); apperr.CodeOf(err) != apperr.Forbidden {
			t.Errorf("tombstoned admin: %s err = %v, want forbidden", mname, err)
		}
	}
}
