package app_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"permsync/app/apptest"
	"permsync/internal/testsupport"
	"permsync/store"
)

// deleteExport deletes export:reports through the admin panel and returns
// the fan-out page's path.
func deleteExport(t *testing.T, env *apptest.Env, adm *apptest.Client) (permID, fanoutPath string) {
	t.Helper()
	permID = apptest.PermissionID(t, env.Kinde(), "export:reports")
	return permID, adm.DeletePermission(t, permID, "export:reports")
}

// kindeDeletes counts the DELETEs of the permission devkinde answered.
func kindeDeletes(env *apptest.Env, permID string) int {
	n := 0
	for _, r := range env.DevKinde.Requests() {
		if r.Method == http.MethodDelete && r.Path == "/api/v1/permissions/"+permID {
			n++
		}
	}
	return n
}

// phase reads the fan-out page's Kinde phase as the panel shows it.
func phase(t *testing.T, adm *apptest.Client, fanoutPath string) (string, *apptest.Response) {
	t.Helper()
	resp := adm.HTMX(t, http.MethodGet, fanoutPath, nil)
	return resp.TestID(t, "fanout-phase").AttrOr("data-phase", ""), resp
}

// deleteJobState returns the state of the fan-out's Kinde delete job.
func deleteJobState(t *testing.T, env *apptest.Env, fanoutID string) string {
	t.Helper()
	var state string
	// One deletion per test: the job is the only one of its kind.
	err := env.DB.QueryRow(context.Background(), `SELECT state FROM river_job WHERE kind = 'kinde_call'`).Scan(&state)
	if err != nil {
		t.Fatalf("delete job of %s: %v", fanoutID, err)
	}
	return state
}

// TestUndoInsideTheWindow: the delete is refused to alice at once; the
// fan-out page counts the undo window down and offers Undo; Undo gives
// alice the permission back, and Kinde never sees a DELETE, even after the
// window has passed and the job has run.
func TestUndoInsideTheWindow(t *testing.T) {
	env := apptest.Start(t, apptest.Options{Env: map[string]string{"PERMSYNC_UNDO_WINDOW": "6s"}})
	alice := env.Login(t, "alice@acme.test")
	if resp := alice.Get(t, "/reports/export"); resp.StatusCode != http.StatusOK {
		t.Fatalf("before: GET /reports/export = %d", resp.StatusCode)
	}
	adm := env.Login(t, "admin@acme.test")
	permID, fanoutPath := deleteExport(t, env, adm)
	if resp := alice.Get(t, "/reports/export"); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("in the undo window: GET /reports/export = %d; want 403 (refused before any Kinde call)", resp.StatusCode)
	}
	page := adm.Get(t, fanoutPath)
	if ph := page.TestID(t, "fanout-phase").AttrOr("data-phase", ""); ph != store.FanoutPhaseWaiting {
		t.Fatalf("phase = %q; want waiting:\n%.2000s", ph, page.Body)
	}
	if page.TestID(t, "undo-countdown").AttrOr("data-countdown-to", "") == "" || page.TestID(t, "undo").Length() != 1 {
		t.Fatal("the page shows no countdown or no Undo button")
	}

	// Undo is a form post, refused without its CSRF token.
	bare := adm.Do(t, http.MethodPost, fanoutPath+"/undo", strings.NewReader(""),
		http.Header{"Content-Type": {"application/x-www-form-urlencoded"}})
	if bare.StatusCode != http.StatusForbidden && bare.StatusCode != http.StatusBadRequest {
		t.Fatalf("undo without a CSRF token = %d; want it refused", bare.StatusCode)
	}
	resp := adm.PostForm(t, fanoutPath+"/undo", url.Values{})
	if resp.StatusCode != http.StatusOK || resp.TestID(t, "fanout-phase").AttrOr("data-phase", "") != store.FanoutPhaseUndone {
		t.Fatalf("after Undo: %d, phase %q", resp.StatusCode, resp.TestID(t, "fanout-phase").AttrOr("data-phase", ""))
	}
	if resp := alice.Get(t, "/reports/export"); resp.StatusCode != http.StatusOK {
		t.Fatalf("after Undo: GET /reports/export = %d; want 200", resp.StatusCode)
	}
	// A second Undo is refused: nothing left to undo.
	if resp := adm.PostForm(t, fanoutPath+"/undo", url.Values{}); resp.StatusCode != http.StatusConflict {
		t.Errorf("a second Undo = %d; want 409", resp.StatusCode)
	}

	fanoutID := strings.TrimPrefix(fanoutPath, "/admin/fanouts/")
	testsupport.Eventually(t, waitFor, "the delete job to run after the window", func() bool {
		return deleteJobState(t, env, fanoutID) == "completed"
	})
	if n := kindeDeletes(env, permID); n != 0 {
		t.Fatalf("Kinde saw %d DELETE(s) of an undone deletion", n)
	}
	if apptest.PermissionID(t, env.Kinde(), "export:reports") != permID {
		t.Fatal("export:reports is gone at Kinde")
	}
	if resp := alice.Get(t, "/reports/export"); resp.StatusCode != http.StatusOK {
		t.Fatalf("after the window: GET /reports/export = %d; want 200", resp.StatusCode)
	}
}

// TestDeleteAfterTheWindow: nobody undoes; once the window has passed the
// job deletes the permission at Kinde and the refreshes run; Undo is then
// refused.
func TestDeleteAfterTheWindow(t *testing.T) {
	env := apptest.Start(t, apptest.Options{Env: map[string]string{"PERMSYNC_UNDO_WINDOW": "2s"}})
	alice := env.Login(t, "alice@acme.test")
	adm := env.Login(t, "admin@acme.test")
	permID, fanoutPath := deleteExport(t, env, adm)
	if n := kindeDeletes(env, permID); n != 0 {
		t.Fatalf("Kinde saw a DELETE inside the undo window (%d)", n)
	}
	if resp := alice.Get(t, "/reports/export"); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("in the window: GET /reports/export = %d; want 403", resp.StatusCode)
	}
	testsupport.Eventually(t, waitFor, "the fan-out to finish", func() bool {
		ph, resp := phase(t, adm, fanoutPath)
		return ph == store.FanoutPhaseRefreshing && resp.TestID(t, "progress").AttrOr("data-finished", "") == "true"
	})
	if n := kindeDeletes(env, permID); n != 1 {
		t.Fatalf("Kinde saw %d DELETE(s); want 1", n)
	}
	if resp := alice.Get(t, "/reports/export"); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("after the delete: GET /reports/export = %d; want 403", resp.StatusCode)
	}
	if resp := adm.PostForm(t, fanoutPath+"/undo", url.Values{}); resp.StatusCode != http.StatusConflict {
		t.Fatalf("Undo after Kinde deleted it = %d; want 409", resp.StatusCode)
	}
}

// TestKindeRefusesTheDelete: Kinde answers the DELETE with 500, then with
// 429: the job retries, the page says why, and alice stays refused; once
// Kinde accepts, the deletion completes.
func TestKindeRefusesTheDelete(t *testing.T) {
	for name, status := range map[string]int{"500": http.StatusInternalServerError, "429": http.StatusTooManyRequests} {
		t.Run(name, func(t *testing.T) {
			env := apptest.Start(t, apptest.Options{Env: map[string]string{"PERMSYNC_UNDO_WINDOW": "0"}})
			alice := env.Login(t, "alice@acme.test")
			adm := env.Login(t, "admin@acme.test")
			permID := apptest.PermissionID(t, env.Kinde(), "export:reports")
			env.RefuseKinde(http.MethodDelete, "/api/v1/permissions/", status)
			_, fanoutPath := deleteExport(t, env, adm)
			var why string
			testsupport.Eventually(t, waitFor, "the page to say Kinde refused", func() bool {
				ph, resp := phase(t, adm, fanoutPath)
				why = resp.TestID(t, "kinde-error").Text()
				return ph == store.FanoutPhaseRetrying && why != ""
			})
			if !strings.Contains(why, name) {
				t.Errorf("the page's reason %q does not name Kinde's %s", why, name)
			}
			if resp := alice.Get(t, "/reports/export"); resp.StatusCode != http.StatusForbidden {
				t.Fatalf("while Kinde refuses: GET /reports/export = %d; want 403", resp.StatusCode)
			}
			if apptest.PermissionID(t, env.Kinde(), "export:reports") != permID {
				t.Fatal("export:reports is gone at Kinde although every DELETE was refused")
			}
			env.RefuseKinde("", "", 0)
			testsupport.Eventually(t, waitFor, "the retried delete and the fan-out to finish", func() bool {
				ph, resp := phase(t, adm, fanoutPath)
				return ph == store.FanoutPhaseRefreshing && resp.TestID(t, "progress").AttrOr("data-finished", "") == "true"
			})
			if n := kindeDeletes(env, permID); n != 1 {
				t.Fatalf("devkinde answered %d DELETE(s); want 1", n)
			}
			if resp := alice.Get(t, "/reports/export"); resp.StatusCode != http.StatusForbidden {
				t.Fatalf("after the delete: GET /reports/export = %d; want 403", resp.StatusCode)
			}
		})
	}
}
