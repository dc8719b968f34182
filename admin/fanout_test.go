package admin_test

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"permsync/admin"
	"permsync/apperr"
	"permsync/events"
	"permsync/internal/testsupport"
	"permsync/store"
)

// An admin deletes export:reports: alice (analyst role), carol (direct
// grant) and admin (admin role) are affected and bob (viewer) is not; each
// affected user gets exactly one refresh_claims at Kinde, their epoch is
// bumped, the key is tombstoned, and the action is audited.
func TestDeletePermissionFansOut(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOpts{})
	ctx := context.Background()
	id := h.permissionID("export:reports")
	alice, bob, carol, adm := h.userID("alice@acme.test"), h.userID("bob@acme.test"),
		h.userID("carol@acme.test"), h.userID("admin@acme.test")

	detail, err := h.svc.PermissionDetail(ctx, h.admin, id)
	if err != nil {
		t.Fatal(err)
	}
	reasons := map[string][]string{}
	for _, u := range detail.Affected {
		for _, r := range u.Reasons {
			reasons[u.UserID] = append(reasons[u.UserID], r.String())
		}
	}
	want := map[string][]string{alice: {"role:analyst"}, carol: {"direct"}, adm: {"role:admin"}}
	for uid, rs := range want {
		if !slices.Equal(reasons[uid], rs) {
			t.Errorf("reasons for %s = %v, want %v", uid, reasons[uid], rs)
		}
	}
	if _, ok := reasons[bob]; ok {
		t.Errorf("bob is affected: %v", reasons[bob])
	}
	if len(detail.Affected) != 3 || !detail.CanDelete || detail.RoleHolders != 2 || detail.DirectHolders != 1 {
		t.Errorf("detail = %+v", detail)
	}

	if _, err := h.svc.DeletePermission(ctx, h.admin, id, "export:report"); apperr.CodeOf(err) != apperr.Invalid {
		t.Fatalf("wrong confirmation: err = %v, want invalid", err)
	}
	h.dk.ResetRequests()
	res, err := h.svc.DeletePermission(ctx, h.admin, id, "export:reports")
	if err != nil {
		t.Fatal(err)
	}
	if res.Affected != 3 || res.PermissionKey != "export:reports" || res.KindeDueAt.After(time.Now()) {
		t.Fatalf("result = %+v", res)
	}
	keys, err := h.db.LiveDeniedKeys(ctx, time.Now())
	if err != nil || !slices.Contains(keys, "export:reports") {
		t.Fatalf("tombstones = %v, %v", keys, err)
	}
	if n := len(h.pub.named(events.UserTopic(alice), events.EventClaimsChanged)); n == 0 {
		t.Error("alice's pages were not told about the tombstone")
	}

	p := h.waitFanout(res.FanoutID, 30*time.Second)
	if p.Total != 3 || p.Done != 3 || p.Failed != 0 || p.Pending != 0 || p.Percent != 100 {
		t.Fatalf("progress = %+v", p.FanoutSummary)
	}
	if got := itemUsers(p); !slices.Equal(got, sorted(alice, carol, adm)) {
		t.Fatalf("items = %v", got)
	}
	for _, it := range p.Items {
		var got []string
		for _, r := range it.Reasons {
			got = append(got, r.String())
		}
		if !slices.Equal(got, want[it.UserID]) {
			t.Errorf("the fan-out's reasons for %s = %v, want %v (as the preview said)", it.UserID, got, want[it.UserID])
		}
	}
	calls := h.refreshCalls(0)
	for _, uid := range []string{alice, carol, adm} {
		if calls[uid] != 1 {
			t.Errorf("refresh_claims for %s called %d times, want 1", uid, calls[uid])
		}
	}
	if calls[bob] != 0 {
		t.Errorf("refresh_claims for bob called %d times", calls[bob])
	}
	ep := h.epochs([]string{alice, bob, carol, adm})
	if ep[alice] != 1 || ep[carol] != 1 || ep[adm] != 1 || ep[bob] != 0 {
		t.Errorf("epochs = %v", ep)
	}
	// Each worker publishes after its transaction commits (the user's
	// claims-changed, then progress), so the fan-out can read as finished
	// just before the last events go out.
	testsupport.Eventually(t, 10*time.Second, "a progress event at the start and per user", func() bool {
		return len(h.pub.named(events.AdminTopic, events.EventFanoutProgress)) >= 4
	})
	var refreshed events.ClaimsChangedData
	evs := h.pub.named(events.UserTopic(alice), events.EventClaimsChanged)
	if err := json.Unmarshal([]byte(evs[len(evs)-1].Data), &refreshed); err != nil ||
		refreshed.Stage != events.StageRefreshed || refreshed.Epoch != 1 || refreshed.PermissionKey != "export:reports" {
		t.Errorf("last claims-changed for alice = %+v (%v)", refreshed, err)
	}
	entries, err := h.svc.Audit(ctx, h.admin, 10)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(entries, func(e admin.AuditEntry) bool {
		return e.Action == "permission.delete" && e.Outcome == store.AuditOK && e.Actor == "admin@acme.test"
	}) {
		t.Errorf("no audit entry for the deletion: %+v", entries)
	}
	if _, err := h.svc.PermissionDetail(ctx, h.admin, id); apperr.CodeOf(err) != apperr.NotFound {
		t.Errorf("deleted permission: err = %v, want not found", err)
	}
}

// A user found only through a live permsync session carrying the key is
// affected too; one unknown to Kinde fails at once with a readable error,
// and RetryFanout queues them again.
func TestSessionHolderAndRetry(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOpts{})
	ctx := context.Background()
	ghost := "kp_00000000000000000000000000000001"
	h.addSession(ghost, "ghost@acme.test", "export:reports")
	h.addSession(h.userID("bob@acme.test"), "bob@acme.test", "read:reports")

	res, err := h.svc.DeletePermission(ctx, h.admin, h.permissionID("export:reports"), "export:reports")
	if err != nil {
		t.Fatal(err)
	}
	p := h.waitFanout(res.FanoutID, 30*time.Second)
	if p.Total != 4 || p.Done != 3 || p.Failed != 1 {
		t.Fatalf("progress = %+v", p.FanoutSummary)
	}
	it := p.Items[0] // failed first
	if it.UserID != ghost || it.Status != admin.ItemFailed || !strings.Contains(it.LastError, "not found") ||
		it.Email != "ghost@acme.test" || len(it.Reasons) != 1 || it.Reasons[0].Kind != admin.ReasonSession {
		t.Fatalf("ghost item = %+v", it)
	}

	rr, err := h.svc.RetryFanout(ctx, h.admin, res.FanoutID)
	if err != nil || rr.Requeued != 1 {
		t.Fatalf("retry = %+v, %v", rr, err)
	}
	testsupport.Eventually(t, 30*time.Second, "the retried user to fail again", func() bool {
		return h.refreshCalls(http.StatusNotFound)[ghost]+h.refreshCalls(http.StatusBadRequest)[ghost] >= 2
	})
	p = h.waitFanout(res.FanoutID, 30*time.Second)
	if p.Done != 3 || p.Failed != 1 || p.Total != 4 {
		t.Fatalf("after retry = %+v", p.FanoutSummary)
	}
	if rr, err := h.svc.RetryFanout(ctx, h.admin, "fo_missing"); apperr.CodeOf(err) != apperr.NotFound {
		t.Fatalf("retry unknown = %+v, %v", rr, err)
	}
}

// With devkinde limited to 5 requests a second and a fan-out of 33 users,
// every user is refreshed and no second ever sees more requests than the
// limit allows (rate plus burst).
func TestFanoutHonoursRateLimit(t *testing.T) {
	t.Parallel()
	const limit = 5
	h := newHarness(t, harnessOpts{extraUsers: 30, kindeRate: limit})
	h.dk.SetRateLimit(limit)
	ctx := context.Background()
	res, err := h.svc.DeletePermission(ctx, h.admin, h.permissionID("export:reports"), "export:reports")
	if err != nil {
		t.Fatal(err)
	}
	if res.Affected != 33 {
		t.Fatalf("affected = %d, want 33", res.Affected)
	}
	p := h.waitFanout(res.FanoutID, 2*time.Minute)
	if p.Done != 33 || p.Failed != 0 {
		t.Fatalf("progress = %+v", p.FanoutSummary)
	}
	ok := h.refreshCalls(http.StatusOK)
	for _, uid := range itemUsers(p) {
		if ok[uid] < 1 {
			t.Errorf("user %s was never refreshed", uid)
		}
	}
	var times []time.Time
	for _, r := range h.dk.Requests() {
		if strings.HasPrefix(r.Path, "/api/v1/") {
			times = append(times, r.Time)
		}
	}
	if peak := peakPerSecond(times); peak > 2*limit {
		t.Errorf("devkinde saw %d requests within one second; limit %d/s with a burst of %d", peak, limit, limit)
	}
	if p.Rate <= 0 {
		t.Errorf("rate = %v", p.Rate)
	}
}

// peakPerSecond is the most requests in any window of one second.
func peakPerSecond(times []time.Time) int {
	slices.SortFunc(times, func(a, b time.Time) int { return a.Compare(b) })
	peak, j := 0, 0
	for i := range times {
		for times[i].Sub(times[j]) >= time.Second {
			j++
		}
		peak = max(peak, i-j+1)
	}
	return peak
}

// With injected 500s and 429s every user is still refreshed.
func TestFanoutSurvivesFaultsAndThrottling(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOpts{extraUsers: 10, kindeRate: 50, kindeBurst: 10, noStart: true})
	ctx := context.Background()
	res, err := h.svc.DeletePermission(ctx, h.admin, h.permissionID("export:reports"), "export:reports")
	if err != nil {
		t.Fatal(err)
	}
	h.dk.SetFaultRate(0.4)
	h.dk.SetRateLimit(3)
	h.start(h.river)
	p := h.waitFanout(res.FanoutID, 2*time.Minute)
	if p.Done != res.Affected || p.Failed != 0 || res.Affected != 13 {
		t.Fatalf("progress = %+v (affected %d)", p.FanoutSummary, res.Affected)
	}
	ok := h.refreshCalls(http.StatusOK)
	for _, uid := range itemUsers(p) {
		if ok[uid] < 1 {
			t.Errorf("user %s was never refreshed", uid)
		}
	}
	statuses := map[int]int{}
	for _, r := range h.dk.Requests() {
		if strings.HasPrefix(r.Path, "/api/v1/") {
			statuses[r.Status]++
		}
	}
	// Faults are random: report what was injected rather than fail a run
	// that happened to see few.
	t.Logf("devkinde answered: %v", statuses)
	if statuses[http.StatusInternalServerError]+statuses[http.StatusTooManyRequests] == 0 {
		t.Error("neither a 500 nor a 429 was answered; the test proves nothing")
	}
	ep := h.epochs(itemUsers(p))
	for uid, e := range ep {
		if e != 1 {
			t.Errorf("epoch of %s = %d, want 1", uid, e)
		}
	}
}

// River is stopped abruptly in the middle of a fan-out; a new client on the
// same database finishes it: every user is refreshed at least once, each
// epoch is bumped exactly once, and the counters are exact.
func TestFanoutSurvivesRestart(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOpts{extraUsers: 30, kindeRate: 5})
	h.dk.SetRateLimit(5)
	ctx := context.Background()
	res, err := h.svc.DeletePermission(ctx, h.admin, h.permissionID("export:reports"), "export:reports")
	if err != nil {
		t.Fatal(err)
	}
	testsupport.Eventually(t, time.Minute, "some users to be refreshed", func() bool {
		p, err := h.svc.Fanout(ctx, h.admin, res.FanoutID)
		return err == nil && p.Done >= 5
	})
	stopCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	if err := h.river.StopNow(stopCtx); err != nil {
		t.Fatalf("stop and cancel: %v", err)
	}
	cancel()
	mid, err := h.svc.Fanout(ctx, h.admin, res.FanoutID)
	if err != nil {
		t.Fatal(err)
	}
	if mid.Finished {
		t.Fatal("the fan-out finished before River was stopped; nothing was tested")
	}
	t.Logf("stopped at done=%d failed=%d pending=%d", mid.Done, mid.Failed, mid.Pending)

	h.start(h.newRiver())
	p := h.waitFanout(res.FanoutID, 2*time.Minute)
	if p.Done != 33 || p.Failed != 0 || p.Total != 33 {
		t.Fatalf("progress = %+v", p.FanoutSummary)
	}
	done := 0
	for _, it := range p.Items {
		if it.Status == admin.ItemDone {
			done++
		}
	}
	if done != p.Done {
		t.Errorf("counter done=%d but %d items are done", p.Done, done)
	}
	ok := h.refreshCalls(http.StatusOK)
	twice := 0
	for _, uid := range itemUsers(p) {
		if ok[uid] < 1 {
			t.Errorf("user %s was never refreshed", uid)
		}
		if ok[uid] > 1 {
			twice++
		}
	}
	t.Logf("%d user(s) refreshed more than once (interrupted after Kinde answered)", twice)
	for uid, e := range h.epochs(itemUsers(p)) {
		if e != 1 {
			t.Errorf("epoch of %s = %d, want exactly 1", uid, e)
		}
	}
}

// RefreshUserClaims is a one-user fan-out; RevokeUserSessions ends the
// user's local and Kinde sessions and tells their pages.
func TestRefreshAndRevokeUser(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOpts{})
	ctx := context.Background()
	alice := h.userID("alice@acme.test")
	started, err := h.svc.RefreshUserClaims(ctx, h.admin, alice)
	if err != nil || started.Total != 1 {
		t.Fatalf("refresh = %+v, %v", started, err)
	}
	p := h.waitFanout(started.FanoutID, 30*time.Second)
	if p.Done != 1 || p.Kind != admin.FanoutUserRefresh || h.refreshCalls(http.StatusOK)[alice] != 1 {
		t.Fatalf("progress = %+v", p.FanoutSummary)
	}
	if e := h.epochs([]string{alice})[alice]; e != 1 {
		t.Fatalf("epoch = %d", e)
	}
	if _, err := h.svc.RefreshUserClaims(ctx, h.admin, "kp_0000000000000000000000000000dead"); apperr.CodeOf(err) != apperr.NotFound {
		t.Fatalf("unknown user: %v", err)
	}

	h.addSession(alice, "alice@acme.test", "read:reports", "export:reports")
	h.addSession(alice, "alice@acme.test", "read:reports")
	rr, err := h.svc.RevokeUserSessions(ctx, h.admin, alice)
	if err != nil || rr.LocalSessions != 2 || !rr.KindeSessionsEnded {
		t.Fatalf("revoke = %+v, %v", rr, err)
	}
	left, err := h.db.UserSessions(ctx, alice)
	if err != nil || len(left) != 0 {
		t.Fatalf("sessions left = %d, %v", len(left), err)
	}
	if len(h.pub.named(events.UserTopic(alice), events.EventSessionEnded)) != 1 {
		t.Error("no session-ended event")
	}
	found := false
	for _, r := range h.dk.Requests() {
		if r.Method == http.MethodDelete && r.Path == "/api/v1/users/"+alice+"/sessions" && r.Status == http.StatusOK {
			found = true
		}
	}
	if !found {
		t.Error("Kinde's sessions were not deleted")
	}
}

// The admin permission itself cannot be deleted from the panel.
func TestAdminPermissionIsProtected(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOpts{})
	ctx := context.Background()
	id := h.permissionID("admin:permissions")
	d, err := h.svc.PermissionDetail(ctx, h.admin, id)
	if err != nil || d.CanDelete || d.DeleteBlocked == "" {
		t.Fatalf("detail = %+v, %v", d, err)
	}
	if _, err := h.svc.DeletePermission(ctx, h.admin, id, "admin:permissions"); apperr.CodeOf(err) != apperr.Conflict {
		t.Fatalf("err = %v, want conflict", err)
	}
}

func sorted(s ...string) []string {
	slices.Sort(s)
	return s
}
