package app_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"permsync/app/apptest"
	"permsync/devkinde"
	"permsync/kinde"
	"permsync/store"
)

// fanoutBenchUsers is how many users each benchmarked deletion fans out to.
const fanoutBenchUsers = 200

// fanoutBenchRole is the seed role every benchmark user holds.
const fanoutBenchRole = "bench"

// BenchmarkFanoutThroughput measures a deletion in the admin panel that fans
// out to 200 users, at PERMSYNC_KINDE_RATE = 10, 25 and 50 Management API
// calls per second. One operation is one deletion, end to end: the admin's
// POST /admin/permissions/{id}/delete (resolving the holders at Kinde,
// DELETE at Kinde, tombstone, fan-out and 200 River jobs recorded) until the
// fan-out is finished (every job has called refresh_claims, bumped its
// user's epoch and published). ns/op is that whole time.
//
// Reported per sub-benchmark (means over the iterations):
//   - users/s: refresh_claims calls devkinde received per second, from its
//     first to its last (the steady fan-out rate);
//   - %rate: users/s as a percentage of the configured rate;
//   - e2e-users/s: 200 users over the whole operation (includes resolving);
//   - peak-1s: the most Management API calls devkinde saw in any one-second
//     window (the limiter allows rate + a burst of 1);
//   - resolve-ms: the POST alone (resolve, delete, enqueue).
//
// devkinde itself is not rate limited here, so nothing is throttled with
// 429s: the pace is the app's own shared limiter and River. Each iteration
// first (untimed) creates a fresh permission and adds it to the role all 200
// users hold; the app's webhook registration at devkinde is removed first,
// so that role edit does not start a webhook fan-out that would compete for
// the same limiter. One iteration takes about 200/rate seconds, so with the
// default -benchtime each sub-benchmark runs exactly one deletion.
func BenchmarkFanoutThroughput(b *testing.B) {
	for _, rate := range []int{10, 25, 50} {
		b.Run(fmt.Sprintf("rate=%d", rate), func(b *testing.B) {
			benchFanout(b, rate)
		})
	}
}

func benchFanout(b *testing.B, rate int) {
	seed := devkinde.DefaultSeed()
	seed.Roles = append(seed.Roles, devkinde.SeedRole{Key: fanoutBenchRole, Name: "Benchmark"})
	for i := range fanoutBenchUsers {
		// No password: nobody signs in as them, and hashing 200 passwords
		// would only slow the start down.
		seed.Users = append(seed.Users, devkinde.SeedUser{
			Email: fmt.Sprintf("bench%03d@acme.test", i), FirstName: "Bench", LastName: fmt.Sprint(i),
			Organizations: []devkinde.SeedMembership{{Code: devkinde.DefaultOrgCode, Roles: []string{fanoutBenchRole}}},
		})
	}
	env := startBenchEnv(b, apptest.Options{Seed: seed,
		Env: map[string]string{"PERMSYNC_KINDE_RATE": fmt.Sprint(rate)}})
	// Signing in waits for the app to serve, which it does only once its
	// start-up (webhook registration included) is done.
	adm := env.Login(b, "admin@acme.test")
	kc := env.Kinde()
	unregisterWebhooks(b, kc)
	roleID := env.SeedRoleID(b, fanoutBenchRole)

	var usersPerSec, e2e, peak, resolve float64
	iter := 0
	for b.Loop() {
		b.StopTimer()
		key := fmt.Sprintf("bench:fanout%d", iter)
		permID := rolePermission(b, env, kc, roleID, key)
		env.DevKinde.ResetRequests()
		b.StartTimer()

		start := time.Now()
		resp := adm.NoRedirect().PostForm(b, "/admin/permissions/"+permID+"/delete", url.Values{"confirm": {key}})
		posted := time.Now()
		fanoutID, ok := strings.CutPrefix(resp.Header.Get("Location"), "/admin/fanouts/")
		if resp.StatusCode != http.StatusSeeOther || !ok {
			b.Fatalf("delete %s = %d, Location %q:\n%.1000s", key, resp.StatusCode, resp.Header.Get("Location"), resp.Body)
		}
		f := waitFanoutFinished(b, env, fanoutID, time.Duration(2*fanoutBenchUsers/rate+60)*time.Second)

		b.StopTimer()
		if f.Total != fanoutBenchUsers || f.Done != fanoutBenchUsers || f.Failed != 0 {
			b.Fatalf("fan-out %s: total %d, done %d, failed %d; want %d done", fanoutID, f.Total, f.Done, f.Failed, fanoutBenchUsers)
		}
		var claims, api []time.Time
		for _, r := range env.DevKinde.Requests() {
			if !strings.HasPrefix(r.Path, "/api/v1/") {
				continue
			}
			api = append(api, r.Time)
			if r.Method == http.MethodPost && strings.HasSuffix(r.Path, "/refresh_claims") && r.Status == http.StatusOK {
				claims = append(claims, r.Time)
			}
		}
		if len(claims) < fanoutBenchUsers {
			b.Fatalf("devkinde saw %d successful refresh_claims; want %d", len(claims), fanoutBenchUsers)
		}
		slices.SortFunc(claims, time.Time.Compare)
		usersPerSec += perSecond(len(claims)-1, claims[len(claims)-1].Sub(claims[0]))
		e2e += perSecond(fanoutBenchUsers, f.FinishedAt.Sub(start))
		peak += float64(peakInSecond(api))
		resolve += float64(posted.Sub(start).Milliseconds())
		iter++
		b.StartTimer()
	}
	n := float64(iter)
	b.ReportMetric(usersPerSec/n, "users/s")
	b.ReportMetric(100*usersPerSec/n/float64(rate), "%rate")
	b.ReportMetric(e2e/n, "e2e-users/s")
	b.ReportMetric(peak/n, "peak-1s")
	b.ReportMetric(resolve/n, "resolve-ms")
}

// unregisterWebhooks removes every webhook registered at devkinde.
func unregisterWebhooks(b *testing.B, kc *kinde.Client) {
	b.Helper()
	ctx := context.Background()
	hooks, err := kc.Webhooks(ctx)
	if err != nil {
		b.Fatal(err)
	}
	for _, w := range hooks {
		if err := kc.DeleteWebhook(ctx, w.ID); err != nil {
			b.Fatal(err)
		}
	}
}

// rolePermission creates a permission at devkinde and adds it to a role,
// returning its id.
func rolePermission(b *testing.B, env *apptest.Env, kc *kinde.Client, roleID, key string) string {
	b.Helper()
	id, err := kc.CreatePermission(context.Background(), kinde.PermissionInput{Key: key, Name: key})
	if err != nil {
		b.Fatal(err)
	}
	if id == "" {
		id = apptest.PermissionID(b, kc, key)
	}
	body := map[string]any{"permissions": []map[string]string{{"id": id}}}
	if status := env.ManagementAPI(b, http.MethodPatch, "/api/v1/roles/"+roleID+"/permissions", body); status != http.StatusOK {
		b.Fatalf("add %s to the role: status %d", key, status)
	}
	env.SyncDirectory(b) // the admin pages and the delete read the directory
	return id
}

// waitFanoutFinished polls the fan-out's row until it is finished; the
// deadline keeps the wait bounded.
func waitFanoutFinished(b *testing.B, env *apptest.Env, id string, timeout time.Duration) *store.Fanout {
	b.Helper()
	deadline := time.Now().Add(timeout)
	for {
		f, err := env.DB.Fanout(context.Background(), id)
		if err != nil {
			b.Fatalf("fan-out %s: %v", id, err)
		}
		if !f.FinishedAt.IsZero() {
			return f
		}
		if time.Now().After(deadline) {
			b.Fatalf("fan-out %s not finished after %s: %d done, %d failed of %d", id, timeout, f.Done, f.Failed, f.Total)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// peakInSecond is the most events within any window of one second.
func peakInSecond(times []time.Time) int {
	times = slices.Clone(times)
	slices.SortFunc(times, time.Time.Compare)
	peak, j := 0, 0
	for i := range times {
		for times[i].Sub(times[j]) >= time.Second {
			j++
		}
		peak = max(peak, i-j+1)
	}
	return peak
}
