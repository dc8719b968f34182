package app_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"testing"
	"time"

	"permsync/app/apptest"
	"permsync/devkinde"
	"permsync/directory"
)

// BenchmarkAdminPages loads every GET page under /admin over loopback HTTP,
// signed in as the admin, with the tenant of 1,000 organizations and 5,000
// users (devkinde.GenerateSeed, seed 1: what `make run-large` serves) synced
// into the directory. It reports each page's p50 and p95 in milliseconds
// besides the mean (ns/op), and its size.
//
// Before the loop it records a deletion that waits in its undo window (an
// hour here, so no Kinde call and no fan-out runs meanwhile) of the
// permission most users hold after export:reports, and a one-user "refresh
// claims": the fan-out pages then show one fan-out of thousands of users and
// one of a single user. The Management API rate is raised so the first sync
// (about 6,500 calls) takes seconds, not the 22 minutes it takes at the
// default 5 calls/s; nothing else calls Kinde during the loop.
//
// SQLite by default; Postgres with PERMSYNC_TEST_DATABASE_URL. `make
// bench-admin` runs it on both with -benchtime 50x.
func BenchmarkAdminPages(b *testing.B) {
	sd := devkinde.GenerateSeed(devkinde.GenerateOptions{Seed: 1, Organizations: 1000, Users: 5000})
	start := time.Now()
	env := startBenchEnv(b, apptest.Options{Seed: sd, SyncTimeout: 10 * time.Minute, Env: map[string]string{
		"PERMSYNC_KINDE_RATE": "5000", "PERMSYNC_UNDO_WINDOW": "1h",
	}})
	b.Logf("devkinde and the app started, directory synced: %s", time.Since(start).Round(time.Millisecond))
	ctx := context.Background()
	admin := env.Login(b, "admin@acme.test")

	dir := directory.New(env.DB, nil)
	perms, err := dir.Permissions(ctx)
	if err != nil {
		b.Fatal(err)
	}
	var export, other string
	var exportHolders, otherHolders int
	for _, p := range perms {
		switch {
		case p.Key == "export:reports":
			export, exportHolders = p.ID, p.Holders
		case p.Key != "admin:permissions" && p.Holders > otherHolders:
			other, otherHolders = p.ID, p.Holders
		}
	}
	if export == "" || other == "" || exportHolders < 4000 {
		b.Fatalf("export:reports %q (%d holders), other %q: not the generated tenant", export, exportHolders, other)
	}
	roles, err := dir.Roles(ctx)
	if err != nil {
		b.Fatal(err)
	}
	role := roles[0]
	for _, r := range roles {
		if r.Holders > role.Holders {
			role = r
		}
	}
	alice := env.UserID(b, "alice@acme.test")

	// The two fan-outs.
	otherPerm, err := dir.PermissionByID(ctx, other)
	if err != nil {
		b.Fatal(err)
	}
	if r := admin.PostForm(b, "/admin/permissions/"+other+"/delete", url.Values{"confirm": {otherPerm.Key}}); r.StatusCode != http.StatusOK {
		b.Fatalf("delete %s: %d", otherPerm.Key, r.StatusCode)
	}
	if r := admin.PostForm(b, "/admin/users/"+alice+"/refresh-claims", nil); r.StatusCode != http.StatusOK {
		b.Fatalf("refresh alice: %d", r.StatusCode)
	}
	fanouts, err := env.DB.Fanouts(ctx, 10)
	if err != nil || len(fanouts) < 2 {
		b.Fatalf("fan-outs: %d, %v", len(fanouts), err)
	}
	var bigFanout string
	for _, f := range fanouts {
		if f.PermissionID == other {
			bigFanout = f.ID
		}
	}
	if bigFanout == "" {
		b.Fatalf("no fan-out for the deletion of %s", otherPerm.Key)
	}

	pages := []struct{ name, path string }{
		{"overview", "/admin"},
		{"permissions", "/admin/permissions"},
		{"permissions-search", "/admin/permissions?q=reports"},
		{"permission/export:reports", "/admin/permissions/" + export},
		{"permission/export:reports-page-50", "/admin/permissions/" + export + fmt.Sprintf("?offset=%d", (exportHolders/50-1)*50)},
		{"permission/export:reports-search", "/admin/permissions/" + export + "?q=user4242"},
		{"roles", "/admin/roles"},
		{"users-search-role/" + role.Key, "/admin/users?q=" + url.QueryEscape(role.Key)},
		{"users", "/admin/users"},
		{"users-search", "/admin/users?q=customer0042"},
		{"user/alice", "/admin/users/" + alice},
		{"user/alice-revoke-confirm", "/admin/users/" + alice + "/sessions/revoke"},
		{"fanouts", "/admin/fanouts"},
		{"fanout/deletion", "/admin/fanouts/" + bigFanout},
		{"webhooks", "/admin/webhooks"},
	}
	c := newBenchClient(b, env, admin)
	for _, p := range pages {
		status, body, err := c.do(http.MethodGet, p.path, nil, nil, true)
		if err != nil || status != http.StatusOK || !bytes.Contains(body, []byte(`data-testid="directory-freshness"`)) {
			b.Fatalf("GET %s = %d, %v; want 200 with the directory's freshness:\n%.2000s", p.path, status, err, body)
		}
		if n := bytes.Count(body, []byte(`data-testid="fanout-item"`)) + bytes.Count(body, []byte(`data-testid="affected-user"`)); n > 100 {
			b.Fatalf("GET %s lists %d rows: not a page", p.path, n)
		}
		size := float64(len(body))
		b.Run(p.name, func(b *testing.B) {
			var lat []time.Duration
			for b.Loop() {
				t0 := time.Now()
				if status, err := c.get(p.path); err != nil || status != http.StatusOK {
					b.Fatalf("GET %s = %d, %v", p.path, status, err)
				}
				lat = append(lat, time.Since(t0))
			}
			slices.Sort(lat)
			b.ReportMetric(ms(lat[len(lat)/2]), "p50-ms")
			b.ReportMetric(ms(lat[(len(lat)*95+99)/100-1]), "p95-ms")
			b.ReportMetric(size, "resp-bytes")
		})
	}
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
