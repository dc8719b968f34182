package app_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"permsync/app/apptest"
	"permsync/devkinde"
	"permsync/fanout"
	"permsync/internal/testsupport"
	"permsync/store"
)

// Kinde sends a webhook for a change permsync made itself; the users that
// change's fan-out refreshes are not called twice for it (see
// fanout.Engine.StartNeededTx). A change made at Kinde alone, or after the
// refresh, still refreshes everyone.

// auditorSeed is the default seed plus role auditor (read:reports and
// export:reports), held by n users of their own.
func auditorSeed(n int) (*devkinde.Seed, []string) {
	seed := devkinde.DefaultSeed()
	seed.Roles = append(seed.Roles, devkinde.SeedRole{Key: "auditor", Name: "Auditor",
		Permissions: []string{"read:reports", "export:reports"}})
	var emails []string
	for i := range n {
		email := fmt.Sprintf("auditor%d@acme.test", i)
		emails = append(emails, email)
		seed.Users = append(seed.Users, devkinde.SeedUser{Email: email, FirstName: "Auditor", LastName: fmt.Sprint(i),
			Password:      devkinde.DemoPassword,
			Organizations: []devkinde.SeedMembership{{Code: devkinde.DefaultOrgCode, Roles: []string{"auditor"}}}})
	}
	return seed, emails
}

// sendRoleUpdated has devkinde send role.updated for a change of a role's
// permissions, as Kinde may (its default quirks leave it out).
func sendRoleUpdated(c *devkinde.Config) {
	q := devkinde.CautiousQuirks()
	q.NoRoleUpdated = false
	c.Quirks = &q
}

// processedRoleWebhooks returns the fan-outs started by processed
// role.updated webhooks, oldest first.
func processedRoleWebhooks(t *testing.T, env *apptest.Env) []*store.Fanout {
	t.Helper()
	evs, err := env.DB.WebhookEvents(context.Background(), 100)
	if err != nil {
		t.Fatal(err)
	}
	var out []*store.Fanout
	for i := len(evs) - 1; i >= 0; i-- {
		ev := evs[i]
		if ev.Type != "role.updated" || ev.Status != store.WebhookProcessed || ev.FanoutID == "" {
			continue
		}
		f, err := env.DB.Fanout(context.Background(), ev.FanoutID)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, f)
	}
	return out
}

// waitRoleWebhook waits for the i-th processed role.updated (from 0) and
// its fan-out to finish, and returns that fan-out.
func waitRoleWebhook(t *testing.T, env *apptest.Env, i int) *store.Fanout {
	t.Helper()
	var hook *store.Fanout
	testsupport.Eventually(t, waitFor, fmt.Sprintf("role.updated #%d to be processed and its fan-out to finish", i+1),
		func() bool {
			fs := processedRoleWebhooks(t, env)
			if len(fs) <= i || fs[i].FinishedAt.IsZero() {
				return false
			}
			hook = fs[i]
			return true
		})
	return hook
}

// coveredBy counts a fan-out's items done because fan-out cover refreshes
// the user.
func coveredBy(t *testing.T, env *apptest.Env, fanoutID, cover string) int {
	t.Helper()
	items, err := env.DB.FanoutItems(context.Background(), fanoutID)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, it := range items {
		if it.Status == store.FanoutItemDone && strings.Contains(it.Reasons, fanout.CoveredBy(cover).String()) {
			n++
		}
	}
	return n
}

// checkRefreshedOnce fails unless devkinde served exactly one
// refresh_claims to each of ids and none to anyone else.
func checkRefreshedOnce(t *testing.T, env *apptest.Env, ids []string, when string) {
	t.Helper()
	calls := refreshClaimsCalls(env)
	total := 0
	for _, n := range calls {
		total += n
	}
	for _, id := range ids {
		if calls[id] != 1 {
			t.Errorf("%s: %s got %d refresh_claims; want 1", when, id, calls[id])
		}
	}
	if total != len(ids) {
		t.Errorf("%s: %d refresh_claims calls (%v); want %d, one per holder", when, total, calls, len(ids))
	}
}

// TestEditThroughPermsyncRefreshesEachHolderOnce: taking export:reports off
// role auditor through permsync refreshes each of its holders once, though
// Kinde's role.updated for it fans out to them too: that fan-out records
// them as already refreshed by the edit's. A change made at Kinde later
// (after those refreshes were sent) refreshes them all again.
func TestEditThroughPermsyncRefreshesEachHolderOnce(t *testing.T) {
	const n = 8
	seed, emails := auditorSeed(n)
	env := apptest.Start(t, apptest.Options{Seed: seed, DevKinde: sendRoleUpdated,
		Env: map[string]string{"PERMSYNC_UNDO_WINDOW": "1s"}})
	ids := make([]string, n)
	for i, e := range emails {
		ids[i] = env.UserID(t, e)
	}
	auditor := env.SeedRoleID(t, "auditor")
	adm := env.Login(t, "admin@acme.test")
	env.DevKinde.ResetRequests()

	editPath := confirmEdit(t, adm, url.Values{"kind": {"role.permission.remove"}, "role_id": {auditor},
		"permission_id": {env.SeedPermissionID(t, "export:reports")}}, "export:reports", nil)
	testsupport.Eventually(t, waitFor, "the edit to be applied and its fan-out to finish", func() bool {
		state, finished, _ := editState(t, adm, editPath)
		return state == store.RBACEditApplied && finished
	})
	hook := waitRoleWebhook(t, env, 0)
	fs, err := env.DB.Fanouts(context.Background(), 20)
	if err != nil {
		t.Fatal(err)
	}
	var edit *store.Fanout
	for i := range fs {
		if fs[i].Kind == fanout.KindRBACEdit {
			edit = &fs[i]
		}
	}
	if edit == nil || edit.Total != n || edit.Done != n {
		t.Fatalf("the edit's fan-out = %+v; want %d users done", edit, n)
	}
	if hook.Total != n || hook.Done != n || hook.Failed != 0 {
		t.Errorf("the webhook's fan-out counts %d done, %d failed of %d; want %d done", hook.Done, hook.Failed, hook.Total, n)
	}
	if got := coveredBy(t, env, hook.ID, edit.ID); got != n {
		t.Errorf("%d of the webhook's items are covered by the edit's fan-out; want %d", got, n)
	}
	page := adm.Get(t, "/admin/fanouts/"+hook.ID)
	if !strings.Contains(string(page.Body), "already refreshed by fan-out "+edit.ID) {
		t.Errorf("the webhook's fan-out page does not say its users were refreshed by %s", edit.ID)
	}
	checkRefreshedOnce(t, env, ids, "after the edit")

	// The same holders, changed at Kinde after their refreshes were sent:
	// the need is new, so each is refreshed again, once.
	env.DevKinde.ResetRequests()
	removeFromRole(t, env, "auditor", "read:reports")
	hook = waitRoleWebhook(t, env, 1)
	if hook.Total != n || hook.Done != n || coveredBy(t, env, hook.ID, edit.ID) != 0 {
		t.Errorf("the later webhook's fan-out = %+v; want %d users refreshed, none covered", hook, n)
	}
	checkRefreshedOnce(t, env, ids, "after the change at Kinde")
}

// TestKindeSideChangeRefreshesEveryHolder: a change made in Kinde's
// dashboard, which no permsync fan-out covers, refreshes every holder of the
// role once.
func TestKindeSideChangeRefreshesEveryHolder(t *testing.T) {
	const n = 8
	seed, emails := auditorSeed(n)
	env := apptest.Start(t, apptest.Options{Seed: seed, DevKinde: sendRoleUpdated})
	ids := make([]string, n)
	for i, e := range emails {
		ids[i] = env.UserID(t, e)
	}
	env.DevKinde.ResetRequests()
	if status := env.ManagementAPI(t, http.MethodDelete, "/api/v1/roles/"+env.SeedRoleID(t, "auditor")+
		"/permissions/"+env.SeedPermissionID(t, "export:reports"), nil); status != http.StatusOK {
		t.Fatalf("DELETE role permission = %d", status)
	}
	hook := waitRoleWebhook(t, env, 0)
	items, err := env.DB.FanoutItems(context.Background(), hook.ID)
	if err != nil {
		t.Fatal(err)
	}
	for _, it := range items {
		if strings.Contains(it.Reasons, string(fanout.ReasonCovered)) {
			t.Errorf("%s was recorded covered (%s) though no fan-out refreshed it", it.UserID, it.Reasons)
		}
	}
	if hook.Total != n || hook.Done != n {
		t.Errorf("the webhook's fan-out = %+v; want %d users refreshed", hook, n)
	}
	checkRefreshedOnce(t, env, ids, "after the change at Kinde")
}
