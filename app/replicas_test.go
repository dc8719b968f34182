package app_test

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"permsync/app/apptest"
	"permsync/internal/testsupport"
	"permsync/kinde"
	"permsync/store"
)

// TestReplicasShareSessionsJobsAndEvents proves that two replicas on
// one Postgres database, with no sticky sessions, behave as one app. Alice
// signs in on replica A and her cookie works on B; an admin on B deletes a
// permission while alice's page on A keeps an event stream open; A refuses
// her next request and her stream hears about it (the tombstone and the
// event cross over LISTEN/NOTIFY); the fan-out's jobs, taken by either
// replica's River client, call refresh_claims once per affected user; and
// concurrent refreshes of one session split across both replicas make one
// refresh-token grant (the Postgres row lock).
func TestReplicasShareSessionsJobsAndEvents(t *testing.T) {
	apptest.RequirePostgres(t)
	// A 1 ms overlap: a refresh token spent twice is refused, so a second
	// grant would show as an ended session, not only as a count.
	env := apptest.Start(t, apptest.Options{RefreshOverlap: time.Millisecond})
	b := env.StartReplica(t)
	ctx := context.Background()
	aliceID := env.UserID(t, "alice@acme.test")

	// 1. Shared sessions: signed in on A, recognised on B.
	alice := env.Login(t, "alice@acme.test")
	aliceOnB := alice.At(b.URL)
	page := aliceOnB.Get(t, "/dashboard")
	if page.StatusCode != http.StatusOK || page.Request.URL.String() != b.URL+"/dashboard" {
		t.Fatalf("alice's cookie on B: GET /dashboard ended at %s with %d; want B's dashboard", page.Request.URL, page.StatusCode)
	}
	if !slices.Contains(page.Permissions(t), "export:reports") {
		t.Fatalf("B shows alice without export:reports: %v", page.Permissions(t))
	}
	if r := aliceOnB.Get(t, "/reports/export"); r.StatusCode != http.StatusOK {
		t.Fatalf("before the delete, on B: GET /reports/export = %d", r.StatusCode)
	}
	if r := alice.Get(t, "/reports/export"); r.StatusCode != http.StatusOK {
		t.Fatalf("before the delete, on A: GET /reports/export = %d", r.StatusCode)
	}

	// 2. Alice's page on A listens; the admin, signed in on B, deletes
	// export:reports through B's admin panel.
	stream := openStream(t, alice)
	adm := b.Login(t, "admin@acme.test")
	env.DevKinde.ResetRequests()
	fanout := adm.DeletePermission(t, env.SeedPermissionID(t, "export:reports"), "export:reports")

	// 3. A refuses her very next request: the tombstone was written by B.
	if r := alice.Get(t, "/reports/export"); r.StatusCode != http.StatusForbidden {
		t.Fatalf("right after the delete on B: GET /reports/export on A = %d; want 403", r.StatusCode)
	}
	// Her stream on A hears both stages (published on B, or by whichever
	// replica ran her job).
	if ev := stream.next(t, "claims-changed"); !strings.Contains(ev.Data, `"stage":"tombstoned"`) ||
		!strings.Contains(ev.Data, "export:reports") {
		t.Errorf("first claims-changed on A = %s; want stage tombstoned for export:reports", ev.Data)
	}
	if ev := stream.next(t, "claims-changed"); !strings.Contains(ev.Data, `"stage":"refreshed"`) {
		t.Errorf("second claims-changed on A = %s; want stage refreshed", ev.Data)
	}
	// A's admin panel shows the fan-out B started, finished.
	admOnA := adm.At(env.URL)
	testsupport.Eventually(t, waitFor, "the fan-out to finish (as A sees it)", func() bool {
		bar := admOnA.HTMX(t, http.MethodGet, fanout, nil).TestID(t, "progress")
		return bar.AttrOr("data-finished", "") == "true"
	})

	// Kinde also announces the delete with a webhook, to both replicas'
	// endpoints (each registered its site URL): one record, recognised as
	// already handled, so no second fan-out.
	var hook *store.WebhookEvent
	testsupport.Eventually(t, waitFor, "the permission.deleted webhook to be handled", func() bool {
		evs, err := env.DB.WebhookEvents(ctx, 100)
		if err != nil {
			t.Fatal(err)
		}
		hook = nil
		for i := range evs {
			if evs[i].Type == kinde.EventPermissionDeleted {
				if hook != nil {
					t.Fatalf("permission.deleted recorded twice: %s and %s", hook.WebhookID, evs[i].WebhookID)
				}
				hook = &evs[i]
			}
		}
		return hook != nil && hook.Status != store.WebhookReceived
	})
	// permsync made this deletion: the webhook starts no second fan-out. It
	// is ignored, or, when it arrives before the deletion's job has removed
	// the permission from the directory, it only updates the directory.
	if hook.FanoutID != "" || (hook.Status != store.WebhookIgnored && !strings.HasPrefix(hook.Outcome, "Directory: ")) {
		t.Errorf("permission.deleted webhook: %s, fan-out %q, %q; want no second fan-out", hook.Status, hook.FanoutID, hook.Outcome)
	}

	// Each affected user's job ran once, across both River clients: one
	// refresh_claims per user at devkinde, and none for anyone else.
	items, err := env.DB.FanoutItems(ctx, strings.TrimPrefix(fanout, "/admin/fanouts/"))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int{}
	for _, it := range items {
		if it.Status != store.FanoutItemDone {
			t.Errorf("fan-out item %s: %s (%s)", it.Email, it.Status, it.LastError)
		}
		want[it.UserID] = 1
	}
	for _, email := range []string{"admin@acme.test", "alice@acme.test", "carol@acme.test"} {
		if want[env.UserID(t, email)] != 1 {
			t.Errorf("fan-out items lack %s: %+v", email, items)
		}
	}
	got := map[string]int{}
	for _, r := range env.DevKinde.Requests() {
		if id, ok := strings.CutSuffix(strings.TrimPrefix(r.Path, "/api/v1/users/"), "/refresh_claims"); ok &&
			r.Method == http.MethodPost && strings.HasPrefix(r.Path, "/api/v1/users/") {
			got[id]++
		}
	}
	if len(got) != len(want) {
		t.Errorf("refresh_claims at devkinde by user = %v; want one each for %v", got, want)
	}
	for id := range want {
		if got[id] != 1 {
			t.Errorf("refresh_claims for %s: %d calls; want exactly 1", id, got[id])
		}
	}

	// River's own record agrees: each job (one per chunk of users) completed
	// at its first attempt, and the chunks name every user once. Which
	// replica's client took which job is up to River; log it. A job's work
	// is counted before River marks the job completed (its completer writes
	// in batches), so wait for every job to leave the running state first.
	testsupport.Eventually(t, waitFor, "every refresh_claims job to be finalized", func() bool {
		var unfinished int
		if err := env.DB.SQL().QueryRowContext(ctx, `SELECT count(*) FROM river_job
			WHERE kind = 'refresh_claims' AND state IN ('available', 'running', 'scheduled', 'pending')`).Scan(&unfinished); err != nil {
			t.Fatal(err)
		}
		return unfinished == 0
	})
	rows, err := env.DB.SQL().QueryContext(ctx, `SELECT args::text, state, attempt, attempted_by::text
		FROM river_job WHERE kind = 'refresh_claims'`)
	if err != nil {
		t.Fatal(err)
	}
	chunked := map[string]int{}
	for rows.Next() {
		var rawArgs, state, by string
		var attempt int
		if err := rows.Scan(&rawArgs, &state, &attempt, &by); err != nil {
			t.Fatal(err)
		}
		var args struct {
			UserID  string   `json:"user_id"`
			UserIDs []string `json:"user_ids"`
		}
		if err := json.Unmarshal([]byte(rawArgs), &args); err != nil {
			t.Fatal(err)
		}
		ids := args.UserIDs
		if len(ids) == 0 {
			ids = []string{args.UserID}
		}
		for _, id := range ids {
			chunked[id]++
		}
		t.Logf("refresh_claims job for %v: %s at attempt %d, by client %s", ids, state, attempt, by)
		if state != "completed" || attempt != 1 {
			t.Errorf("refresh_claims job for %v: %s at attempt %d; want completed at 1", ids, state, attempt)
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	rows.Close()
	for id := range want {
		if chunked[id] != 1 {
			t.Errorf("%s is in %d refresh_claims jobs; want 1", id, chunked[id])
		}
	}
	if len(chunked) != len(want) {
		t.Errorf("refresh_claims jobs name %d users; want %d", len(chunked), len(want))
	}

	// Alice's session catches up (background refresh on either replica, or
	// the guard) and still works on both.
	epoch, err := env.DB.UserEpoch(ctx, aliceID)
	if err != nil || epoch < 1 {
		t.Fatalf("alice's epoch = %d, %v; want bumped", epoch, err)
	}
	testsupport.Eventually(t, waitFor, "alice's session to be rebuilt from a fresh token", func() bool {
		s := aliceSession(t, env, aliceID)
		return s.ClaimsEpoch >= epoch && !slices.Contains(s.Permissions, "export:reports")
	})
	for _, c := range []*apptest.Client{alice, aliceOnB} {
		if r := c.Get(t, "/reports"); r.StatusCode != http.StatusOK || r.Request.URL.Path != "/reports" {
			t.Fatalf("after the fan-out, %s: GET /reports ended at %s with %d", c.BaseURL, r.Request.URL, r.StatusCode)
		}
		if r := c.Get(t, "/reports/export"); r.StatusCode != http.StatusForbidden {
			t.Fatalf("after the fan-out, %s: GET /reports/export = %d; want 403", c.BaseURL, r.StatusCode)
		}
	}

	// 4. Ten concurrent refreshes of alice's session, alternating between A
	// and B: one refresh-token grant, and she stays signed in. First let
	// every background refresh the fan-out caused (the admin's session too)
	// finish, so that the grant count is the burst's alone.
	testsupport.Eventually(t, waitFor, "every affected session to catch up with its epoch", func() bool {
		for id := range want {
			epoch, err := env.DB.UserEpoch(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			ss, err := env.DB.UserSessions(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range ss {
				if s.ClaimsEpoch < epoch {
					return false
				}
			}
		}
		return true
	})
	page = alice.Get(t, "/dashboard")
	gen, csrf := panelGen(t, page), alice.CSRF(t)
	env.ResetGrants()
	bases := make([]string, 10)
	for i := range bases {
		bases[i] = env.URL
		if i%2 == 1 {
			bases[i] = b.URL
		}
	}
	refreshAtOnce(t, alice, bases, gen, csrf)
	if got := env.Refreshes(); got != 1 {
		t.Fatalf("refresh_token grants for 10 refreshes across two replicas = %d; want exactly 1", got)
	}
	for _, c := range []*apptest.Client{alice, aliceOnB} {
		if r := c.Get(t, "/dashboard"); r.StatusCode != http.StatusOK || r.Request.URL.Path != "/dashboard" {
			t.Fatalf("after the refreshes, %s: GET /dashboard ended at %s with %d", c.BaseURL, r.Request.URL, r.StatusCode)
		}
	}
	if s := aliceSession(t, env, aliceID); strconv.FormatInt(s.Generation-1, 10) != gen {
		t.Errorf("alice's session generation = %d after the burst from %s; want one refresh", s.Generation, gen)
	}
}
