package app_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"testing"

	"permsync/app/apptest"
	"permsync/devkinde"
	"permsync/internal/testsupport"
	"permsync/kinde"
)

// BenchmarkRevocationLatency measures, per operation, the time from a
// permission being deleted at Kinde (devkinde's Management API, as an admin
// would in Kinde's dashboard) to the claims-changed event arriving on the
// affected user's SSE stream: webhook delivery, JWS verification, the
// durable record, the River job (tombstone + fan-out) and the publish. Each
// iteration first creates a permission, grants it to alice directly and
// waits until her session carries it; only the deletion is timed.
func BenchmarkRevocationLatency(b *testing.B) {
	quiet := slog.LevelError
	env := apptest.Start(b, apptest.Options{LogLevel: &quiet})
	ctx := context.Background()
	kc := env.Kinde()
	aliceID := env.UserID(b, "alice@acme.test")
	alice := env.Login(b, "alice@acme.test")
	stream := openStream(b, alice)

	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		key := fmt.Sprintf("bench:perm%d", i)
		id := grantFresh(b, env, kc, aliceID, key)
		testsupport.Eventually(b, waitFor, "alice's session to carry "+key, func() bool {
			ss, err := env.DB.UserSessions(ctx, aliceID)
			return err == nil && len(ss) > 0 && slices.Contains(ss[0].Permissions, key)
		})
		drain(stream)
		b.StartTimer()

		if err := kc.DeletePermission(ctx, id); err != nil {
			b.Fatal(err)
		}
		for {
			ev := stream.next(b, "claims-changed")
			if strings.Contains(ev.Data, `"permission_key":"`+key+`"`) {
				break
			}
		}
	}
}

// grantFresh creates a permission and grants it to the user directly in the
// default organization (a direct change: Kinde clears the user's claim
// cache, and the user.updated webhook makes permsync refresh the session).
func grantFresh(b *testing.B, env *apptest.Env, kc *kinde.Client, userID, key string) string {
	b.Helper()
	id, err := kc.CreatePermission(context.Background(), kinde.PermissionInput{Key: key, Name: key})
	if err != nil {
		b.Fatal(err)
	}
	if id == "" {
		id = apptest.PermissionID(b, kc, key)
	}
	path := "/api/v1/organizations/" + devkinde.DefaultOrgCode + "/users/" + userID + "/permissions"
	if status := env.ManagementAPI(b, http.MethodPost, path, map[string]string{"permission_id": id}); status != http.StatusOK {
		b.Fatalf("grant %s: status %d", key, status)
	}
	return id
}

// drain discards the events already received.
func drain(s *sseStream) {
	for {
		select {
		case <-s.events:
		default:
			return
		}
	}
}
