package app_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"

	"permsync/app/apptest"
	"permsync/devkinde"
	"permsync/fanout"
	"permsync/kinde"
	"permsync/store"
)

// Sizes and paces of TestFanoutSurvivesSIGKILL.
const (
	crashUsers     = 20              // users holding the deleted permission
	crashRole      = "crash"         // the seed role they hold it through
	crashKey       = "crash:reports" // the permission deleted
	crashAppRate   = 2               // PERMSYNC_KINDE_RATE: 20 users take about 10s
	crashKindeRate = 5               // devkinde's own Management API limit
	crashKillAfter = 5               // users refreshed before the kill
)

// TestFanoutSurvivesSIGKILL kills permsync with SIGKILL in the middle of a
// fan-out and checks that a restart on the same database finishes it
// exactly. Unlike the admin package's stop tests (StopAndCancel, a graceful
// stop), nothing runs at the kill: the River jobs being worked stay in state
// running, and only River's rescuer, after PERMSYNC_JOB_RESCUE_AFTER, gives
// them back. The app runs as a real process (the binary built from
// cmd/permsync) against devkinde in this process, on SQLite. Before that,
// it kills the first process inside the deletion's undo window: Kinde has
// seen no DELETE, and the restarted process makes it once the window has
// passed (the job waits in the database), then runs the fan-out.
//
// It checks the outcome, not the timing: the fan-out ends with every user
// done and none failed, every user got refresh_claims at Kinde at least once,
// and the fan-out's counters equal its user count (no user counted twice,
// whatever jobs ran twice because of the kill).
func TestFanoutSurvivesSIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the permsync binary; skipped with -short")
	}
	if os.Getenv("PERMSYNC_TEST_DATABASE_URL") != "" {
		t.Skip("the crashed process keeps its jobs in its own SQLite file; this test runs in the SQLite pass")
	}
	bin := buildPermsync(t)

	seed := devkinde.DefaultSeed()
	seed.Permissions = append(seed.Permissions, devkinde.SeedPermission{Key: crashKey, Name: "Crash test reports"})
	seed.Roles = append(seed.Roles, devkinde.SeedRole{Key: crashRole, Name: "Crash test", Permissions: []string{crashKey}})
	users := map[string]bool{}
	for i := range crashUsers {
		id := fmt.Sprintf("kp_%032x", 0xc7a54000+i)
		users[id] = true
		// No password: nobody signs in as them.
		seed.Users = append(seed.Users, devkinde.SeedUser{
			ID: id, Email: fmt.Sprintf("crash%02d@acme.test", i), FirstName: "Crash", LastName: strconv.Itoa(i),
			Organizations: []devkinde.SeedMembership{{Code: devkinde.DefaultOrgCode, Roles: []string{crashRole}}},
		})
	}
	dk, err := devkinde.New(devkinde.Config{Seed: seed})
	if err != nil {
		t.Fatal(err)
	}
	if err := dk.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = dk.Close() })
	kc := kinde.New(kinde.Config{IssuerURL: dk.URL(), ClientID: devkinde.M2MClientID, ClientSecret: devkinde.M2MClientSecret})
	permID := apptest.PermissionID(t, kc, crashKey)
	dk.SetRateLimit(crashKindeRate)

	dir := t.TempDir()
	addr := freeLoopbackAddr(t)
	site := "http://" + addr
	dk.AllowRedirect(devkinde.WebClientID, site+"/callback", site+"/")
	dbPath := filepath.Join(dir, "permsync.db")
	env := map[string]string{
		"KINDE_ISSUER_URL":               dk.URL(),
		"KINDE_CLIENT_ID":                devkinde.WebClientID,
		"KINDE_CLIENT_SECRET":            devkinde.WebClientSecret,
		"KINDE_M2M_CLIENT_ID":            devkinde.M2MClientID,
		"KINDE_M2M_CLIENT_SECRET":        devkinde.M2MClientSecret,
		"KINDE_SITE_URL":                 site,
		"KINDE_POST_LOGOUT_REDIRECT_URL": site + "/",
		"PERMSYNC_ADDR":                  addr,
		"PERMSYNC_SECRET":                strings.Repeat("crash-test-secret-", 3),
		"PERMSYNC_DATA_DIR":              filepath.Join(dir, "data"),
		"DATABASE_URL":                   "sqlite:" + dbPath,
		"PERMSYNC_KINDE_RATE":            strconv.Itoa(crashAppRate),
		"PERMSYNC_JOB_TIMEOUT":           "3s",
		"PERMSYNC_JOB_RESCUE_AFTER":      "4s",
		"PERMSYNC_LOG_LEVEL":             "debug",
		"PERMSYNC_UNDO_WINDOW":           "4s",
	}

	// First run: sign in, delete the permission, kill inside the undo
	// window; then restart and kill mid-fan-out.
	first := startPermsync(t, bin, env, filepath.Join(dir, "run0.log"))
	adm := newCrashClient(t, site)
	adm.signIn(t, "admin@acme.test")
	// The admin pages read the directory: wait for its first sync (in the
	// last lane of a 2 calls/s budget, a few seconds).
	syncDeadline := time.Now().Add(60 * time.Second)
	for !strings.HasPrefix(strings.Join(strings.Fields(adm.do(t, adm.hc, http.MethodGet, "/admin", nil).doc.
		Find(`[data-testid="directory-freshness"]`).Text()), " "), "Directory synced") {
		if time.Now().After(syncDeadline) {
			t.Fatal("the directory's first sync did not finish in 60 s")
		}
		time.Sleep(100 * time.Millisecond)
	}
	dk.ResetRequests()
	page := adm.get(t, "/admin/permissions/"+permID)
	resp := adm.postNoRedirect(t, "/admin/permissions/"+permID+"/delete",
		url.Values{"confirm": {crashKey}, "_csrf": {page.csrf(t)}})
	fanoutID, ok := strings.CutPrefix(resp.Header.Get("Location"), "/admin/fanouts/")
	if resp.StatusCode != http.StatusSeeOther || !ok || fanoutID == "" {
		t.Fatalf("delete %s = %d, Location %q", crashKey, resp.StatusCode, resp.Header.Get("Location"))
	}

	// Killed inside the undo window: Kinde has seen nothing, and the job
	// that deletes the permission waits in the database.
	if ph := adm.get(t, "/admin/fanouts/"+fanoutID).doc.Find(`[data-testid="fanout-phase"]`).AttrOr("data-phase", ""); ph != "waiting" {
		t.Fatalf("before the first kill the deletion is %q; want waiting (the undo window)", ph)
	}
	first.kill(t)
	for _, r := range dk.Requests() {
		if r.Method == http.MethodDelete {
			t.Fatalf("Kinde saw %s %s before the undo window ended", r.Method, r.Path)
		}
	}
	first = startPermsync(t, bin, env, filepath.Join(dir, "run1.log"))

	deadline := time.Now().Add(time.Minute)
	for len(refreshedUsers(dk, users)) < crashKillAfter {
		if time.Now().After(deadline) {
			first.dumpLog(t)
			t.Fatalf("only %d users refreshed after a minute; want %d before the kill", len(refreshedUsers(dk, users)), crashKillAfter)
		}
		first.checkAlive(t)
		time.Sleep(20 * time.Millisecond)
	}
	first.kill(t)
	atKill := len(refreshedUsers(dk, users))
	if atKill >= crashUsers {
		t.Fatalf("all %d users were refreshed before the kill; the fan-out is too fast to crash in", atKill)
	}
	running := runningRefreshJobs(t, dbPath)
	t.Logf("killed with %d of %d users refreshed at Kinde and %d refresh jobs left running", atKill, crashUsers, running)
	if running == 0 {
		t.Fatalf("no refresh_claims job left in state running after SIGKILL; the test did not crash a fan-out")
	}

	// Second run on the same database: River's rescuer gives the stuck jobs
	// back once the dead process's leadership has expired.
	second := startPermsync(t, bin, env, filepath.Join(dir, "run2.log"))
	adm = newCrashClient(t, site)
	adm.signIn(t, "admin@acme.test")
	var done, failed, total int
	deadline = time.Now().Add(3 * time.Minute)
	for {
		p := adm.get(t, "/admin/fanouts/"+fanoutID).doc.Find(`[data-testid="progress"]`).First()
		if p.Length() == 0 {
			t.Fatalf("fan-out %s: no progress panel", fanoutID)
		}
		done, failed, total = attrInt(t, p, "data-done"), attrInt(t, p, "data-failed"), attrInt(t, p, "data-total")
		if p.AttrOr("data-finished", "") == "true" {
			break
		}
		if time.Now().After(deadline) {
			second.dumpLog(t)
			t.Fatalf("fan-out %s not finished 3 minutes after the restart: %d done, %d failed of %d", fanoutID, done, failed, total)
		}
		second.checkAlive(t)
		time.Sleep(250 * time.Millisecond)
	}
	if total != crashUsers || done != crashUsers || failed != 0 {
		second.dumpLog(t)
		t.Fatalf("fan-out finished with %d done, %d failed of %d; want all %d done", done, failed, total, crashUsers)
	}
	refreshed := refreshedUsers(dk, users)
	for id := range users {
		if refreshed[id] == 0 {
			t.Errorf("user %s never got refresh_claims at Kinde", id)
		}
	}
	again := 0
	for _, n := range refreshed {
		again += n - 1
	}
	t.Logf("fan-out finished after the restart: %d/%d done, 0 failed; %d refresh_claims repeated for jobs the kill interrupted",
		done, total, again)
}

// Sizes and paces of TestFanoutAtScaleSurvivesSIGKILL.
const (
	crashScaleUsers = 500 // PERMSYNC_CRASH_USERS overrides it (5000 for the documented run)
	crashScaleRate  = 200 // PERMSYNC_KINDE_RATE: 500 users take about 2.5 s (more users: users × 0.4/s)
)

// TestFanoutAtScaleSurvivesSIGKILL kills permsync with SIGKILL when about
// 40 % of a 500-user fan-out is done (chunked jobs, many calls in flight,
// answers recorded in batches) and checks that a restart on the same
// database ends with every user refreshed at Kinde at least once, every
// item done and none failed, the counters equal to the user count, and
// every user's claims epoch bumped exactly once (nobody counted twice,
// whatever was called again). PERMSYNC_CRASH_USERS=5000 runs it at the
// size of the benchmarks.
func TestFanoutAtScaleSurvivesSIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the permsync binary; skipped with -short")
	}
	if os.Getenv("PERMSYNC_TEST_DATABASE_URL") != "" {
		t.Skip("the crashed process keeps its jobs in its own SQLite file; this test runs in the SQLite pass")
	}
	n := crashScaleUsers
	if v := os.Getenv("PERMSYNC_CRASH_USERS"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 10 {
			t.Fatalf("PERMSYNC_CRASH_USERS=%q: want a number of users, at least 10", v)
		}
	}
	bin := buildPermsync(t)

	seed := devkinde.DefaultSeed()
	seed.Permissions = append(seed.Permissions, devkinde.SeedPermission{Key: crashKey, Name: "Crash test reports"})
	seed.Roles = append(seed.Roles, devkinde.SeedRole{Key: crashRole, Name: "Crash test", Permissions: []string{crashKey}})
	users := map[string]bool{}
	for i := range n {
		id := fmt.Sprintf("kp_%032x", 0xc7a55000+i)
		users[id] = true
		seed.Users = append(seed.Users, devkinde.SeedUser{
			ID: id, Email: fmt.Sprintf("scale%05d@acme.test", i), FirstName: "Scale", LastName: strconv.Itoa(i),
			Organizations: []devkinde.SeedMembership{{Code: devkinde.DefaultOrgCode, Roles: []string{crashRole}}},
		})
	}
	dk, err := devkinde.New(devkinde.Config{Seed: seed})
	if err != nil {
		t.Fatal(err)
	}
	if err := dk.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = dk.Close() })
	kc := kinde.New(kinde.Config{IssuerURL: dk.URL(), ClientID: devkinde.M2MClientID, ClientSecret: devkinde.M2MClientSecret})
	permID := apptest.PermissionID(t, kc, crashKey)

	dir := t.TempDir()
	addr := freeLoopbackAddr(t)
	site := "http://" + addr
	dk.AllowRedirect(devkinde.WebClientID, site+"/callback", site+"/")
	dbPath := filepath.Join(dir, "permsync.db")
	env := map[string]string{
		"KINDE_ISSUER_URL":               dk.URL(),
		"KINDE_CLIENT_ID":                devkinde.WebClientID,
		"KINDE_CLIENT_SECRET":            devkinde.WebClientSecret,
		"KINDE_M2M_CLIENT_ID":            devkinde.M2MClientID,
		"KINDE_M2M_CLIENT_SECRET":        devkinde.M2MClientSecret,
		"KINDE_SITE_URL":                 site,
		"KINDE_POST_LOGOUT_REDIRECT_URL": site + "/",
		"PERMSYNC_ADDR":                  addr,
		"PERMSYNC_SECRET":                strings.Repeat("crash-test-secret-", 3),
		"PERMSYNC_DATA_DIR":              filepath.Join(dir, "data"),
		"DATABASE_URL":                   "sqlite:" + dbPath,
		"PERMSYNC_KINDE_RATE":            strconv.Itoa(max(crashScaleRate, n*2/5)),
		"PERMSYNC_JOB_TIMEOUT":           "3s",
		"PERMSYNC_JOB_RESCUE_AFTER":      "4s",
		"PERMSYNC_UNDO_WINDOW":           "0s",
	}

	first := startPermsync(t, bin, env, filepath.Join(dir, "run1.log"))
	adm := newCrashClient(t, site)
	adm.signIn(t, "admin@acme.test")
	syncDeadline := time.Now().Add(2 * time.Minute)
	for !strings.HasPrefix(strings.Join(strings.Fields(adm.do(t, adm.hc, http.MethodGet, "/admin", nil).doc.
		Find(`[data-testid="directory-freshness"]`).Text()), " "), "Directory synced") {
		if time.Now().After(syncDeadline) {
			t.Fatal("the directory's first sync did not finish in 2 minutes")
		}
		time.Sleep(100 * time.Millisecond)
	}
	dk.ResetRequests()
	page := adm.get(t, "/admin/permissions/"+permID)
	resp := adm.postNoRedirect(t, "/admin/permissions/"+permID+"/delete",
		url.Values{"confirm": {crashKey}, "_csrf": {page.csrf(t)}})
	fanoutID, ok := strings.CutPrefix(resp.Header.Get("Location"), "/admin/fanouts/")
	if resp.StatusCode != http.StatusSeeOther || !ok || fanoutID == "" {
		t.Fatalf("delete %s = %d, Location %q", crashKey, resp.StatusCode, resp.Header.Get("Location"))
	}
	killAfter := n * 2 / 5
	deadline := time.Now().Add(2 * time.Minute)
	for len(refreshedUsers(dk, users)) < killAfter {
		if time.Now().After(deadline) {
			first.dumpLog(t)
			t.Fatalf("only %d users refreshed after 2 minutes; want %d before the kill", len(refreshedUsers(dk, users)), killAfter)
		}
		first.checkAlive(t)
		time.Sleep(5 * time.Millisecond)
	}
	first.kill(t)
	atKill := len(refreshedUsers(dk, users))
	if atKill >= n {
		t.Fatalf("all %d users were refreshed before the kill; the fan-out is too fast to crash in", atKill)
	}
	running := runningRefreshJobs(t, dbPath)
	t.Logf("killed with %d of %d users refreshed at Kinde and %d refresh jobs left running", atKill, n, running)
	if running == 0 {
		t.Fatalf("no refresh_claims job left in state running after SIGKILL; the test did not crash a fan-out")
	}

	second := startPermsync(t, bin, env, filepath.Join(dir, "run2.log"))
	adm = newCrashClient(t, site)
	adm.signIn(t, "admin@acme.test")
	var done, failed, total int
	deadline = time.Now().Add(5 * time.Minute)
	for {
		p := adm.get(t, "/admin/fanouts/"+fanoutID).doc.Find(`[data-testid="progress"]`).First()
		if p.Length() == 0 {
			t.Fatalf("fan-out %s: no progress panel", fanoutID)
		}
		done, failed, total = attrInt(t, p, "data-done"), attrInt(t, p, "data-failed"), attrInt(t, p, "data-total")
		if p.AttrOr("data-finished", "") == "true" {
			break
		}
		if time.Now().After(deadline) {
			second.dumpLog(t)
			t.Fatalf("fan-out %s not finished 5 minutes after the restart: %d done, %d failed of %d", fanoutID, done, failed, total)
		}
		second.checkAlive(t)
		time.Sleep(250 * time.Millisecond)
	}
	second.kill(t) // the database is read below without it
	if total != n || done != n || failed != 0 {
		t.Fatalf("fan-out finished with %d done, %d failed of %d; want all %d done", done, failed, total, n)
	}
	refreshed := refreshedUsers(dk, users)
	again := 0
	for id := range users {
		if refreshed[id] == 0 {
			t.Errorf("user %s never got refresh_claims at Kinde", id)
		}
		again += max(0, refreshed[id]-1)
	}

	ctx := context.Background()
	db, err := store.Open(ctx, store.Options{URL: "sqlite:" + dbPath})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ids := make([]string, 0, n)
	for id := range users {
		ids = append(ids, id)
	}
	epochs, err := db.UserEpochs(ctx, ids)
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range ids {
		if e := epochs[id].Epoch; e != 1 {
			t.Errorf("user %s has claims epoch %d; want 1 (refreshed and counted exactly once)", id, e)
		}
	}
	t.Logf("fan-out finished after the restart: %d/%d done, 0 failed, every epoch bumped once; "+
		"%d refresh_claims repeated for users the kill interrupted", done, total, again)
}

// buildPermsync builds cmd/permsync once into a temporary folder (without
// -race, whatever the test binary was built with).
func buildPermsync(t *testing.T) string {
	t.Helper()
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skipf("no go command to build permsync: %v", err)
	}
	bin := filepath.Join(t.TempDir(), "permsync")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, goTool, "build", "-o", bin, "permsync/cmd/permsync")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build permsync: %v\n%s", err, out)
	}
	return bin
}

// freeLoopbackAddr is a loopback address with a port free a moment ago;
// both runs of the app listen on it, so the site URL stays the same.
func freeLoopbackAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	return addr
}

// permsyncProc is one `permsync serve` process.
type permsyncProc struct {
	cmd     *exec.Cmd
	logPath string
	exited  chan struct{}
	waitErr error
}

// startPermsync starts `permsync serve` with env (on top of this process's
// environment, minus anything that configures permsync or Kinde), logging to
// logPath, and waits until it is ready. The process is killed at cleanup.
func startPermsync(t *testing.T, bin string, env map[string]string, logPath string) *permsyncProc {
	t.Helper()
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "serve")
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); strings.HasPrefix(k, "KINDE_") || strings.HasPrefix(k, "PERMSYNC_") ||
			k == "DATABASE_URL" || k == "DATABASE_URL_FILE" {
			continue
		}
		cmd.Env = append(cmd.Env, kv)
	}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		_ = logFile.Close()
		t.Fatal(err)
	}
	p := &permsyncProc{cmd: cmd, logPath: logPath, exited: make(chan struct{})}
	go func() {
		p.waitErr = cmd.Wait()
		_ = logFile.Close()
		close(p.exited)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-p.exited
		if t.Failed() {
			p.dumpLog(t)
		}
	})

	hc := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(time.Minute)
	for {
		p.checkAlive(t)
		if resp, err := hc.Get("http://" + env["PERMSYNC_ADDR"] + "/readyz"); err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return p
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("permsync not ready after a minute")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// checkAlive fails the test if the process has exited.
func (p *permsyncProc) checkAlive(t *testing.T) {
	t.Helper()
	select {
	case <-p.exited:
		t.Fatalf("permsync exited unexpectedly: %v", p.waitErr)
	default:
	}
}

// kill sends SIGKILL and waits for the process to be gone.
func (p *permsyncProc) kill(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Kill(); err != nil {
		t.Fatalf("kill permsync: %v", err)
	}
	select {
	case <-p.exited:
	case <-time.After(30 * time.Second):
		t.Fatal("permsync still running 30s after SIGKILL")
	}
}

// dumpLog logs the end of the process's output (once per process).
func (p *permsyncProc) dumpLog(t *testing.T) {
	t.Helper()
	b, err := os.ReadFile(p.logPath)
	if err != nil || len(b) == 0 {
		return
	}
	if len(b) > 20000 {
		b = b[len(b)-20000:]
	}
	t.Logf("--- %s (end):\n%s", filepath.Base(p.logPath), b)
	p.logPath = ""
}

// refreshedUsers counts the successful refresh_claims devkinde served per
// user, for the users in want.
func refreshedUsers(dk *devkinde.Server, want map[string]bool) map[string]int {
	n := map[string]int{}
	for _, r := range dk.Requests() {
		rest, ok := strings.CutPrefix(r.Path, "/api/v1/users/")
		if !ok || r.Method != http.MethodPost || r.Status != http.StatusOK {
			continue
		}
		if id, ok := strings.CutSuffix(rest, "/refresh_claims"); ok && want[id] {
			n[id]++
		}
	}
	return n
}

// runningRefreshJobs counts the refresh_claims jobs in state running in the
// SQLite database at path (read while no permsync runs on it).
func runningRefreshJobs(t *testing.T, path string) int {
	t.Helper()
	ctx := context.Background()
	db, err := store.Open(ctx, store.Options{URL: "sqlite:" + path})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.SQL().QueryRowContext(ctx, `SELECT count(*) FROM river_job WHERE state = 'running' AND kind = ?`,
		fanout.JobKindRefreshClaims).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// crashClient is a browser-like client for the app process: cookies for the
// app and devkinde (both on 127.0.0.1), redirects followed on loopback only.
type crashClient struct {
	hc   *http.Client
	base string
}

func newCrashClient(t *testing.T, base string) *crashClient {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &crashClient{base: base, hc: &http.Client{Jar: jar, Timeout: 30 * time.Second,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if req.URL.Hostname() != "127.0.0.1" {
				return fmt.Errorf("redirect off loopback: %s", req.URL)
			}
			if len(via) >= 10 {
				return errors.New("too many redirects")
			}
			return nil
		}}}
}

// crashPage is a fetched HTML page.
type crashPage struct {
	resp *http.Response
	doc  *goquery.Document
}

func (c *crashClient) do(t *testing.T, hc *http.Client, method, target string, form url.Values) *crashPage {
	t.Helper()
	if !strings.HasPrefix(target, "http") {
		target = c.base + target
	}
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, target, body)
	if err != nil {
		t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, target, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: %v", method, target, err)
	}
	doc, err := goquery.NewDocumentFromReader(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("%s %s: %v", method, target, err)
	}
	return &crashPage{resp: resp, doc: doc}
}

// get fetches a page and fails the test unless it is a 200.
func (c *crashClient) get(t *testing.T, path string) *crashPage {
	t.Helper()
	p := c.do(t, c.hc, http.MethodGet, path, nil)
	if p.resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s = %d", path, p.resp.StatusCode)
	}
	return p
}

// postNoRedirect posts a form and returns the response without following a
// redirect.
func (c *crashClient) postNoRedirect(t *testing.T, path string, form url.Values) *http.Response {
	t.Helper()
	hc := *c.hc
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return c.do(t, &hc, http.MethodPost, path, form).resp
}

// signIn signs in through the app's /login and devkinde's sign-in form.
func (c *crashClient) signIn(t *testing.T, email string) {
	t.Helper()
	page := c.get(t, "/login")
	form := page.doc.Find("form").FilterFunction(func(_ int, s *goquery.Selection) bool {
		return s.Find(`input[name="email"]`).Length() > 0
	}).First()
	if form.Length() == 0 {
		t.Fatalf("no sign-in form at %s", page.resp.Request.URL)
	}
	vals := url.Values{}
	form.Find("input[name]").Each(func(_ int, in *goquery.Selection) {
		vals.Set(in.AttrOr("name", ""), in.AttrOr("value", ""))
	})
	vals.Set("email", email)
	vals.Set("password", devkinde.DemoPassword)
	action, err := page.resp.Request.URL.Parse(form.AttrOr("action", ""))
	if err != nil {
		t.Fatal(err)
	}
	done := c.do(t, c.hc, http.MethodPost, action.String(), vals)
	if done.resp.StatusCode != http.StatusOK || done.resp.Request.URL.Path != "/dashboard" {
		t.Fatalf("sign-in as %s ended at %s with %d", email, done.resp.Request.URL, done.resp.StatusCode)
	}
}

// csrf is the page's CSRF token.
func (p *crashPage) csrf(t *testing.T) string {
	t.Helper()
	tok, ok := p.doc.Find(`meta[name="csrf-token"]`).Attr("content")
	if !ok || tok == "" {
		t.Fatalf("no csrf-token meta on %s", p.resp.Request.URL)
	}
	return tok
}

func attrInt(t *testing.T, s *goquery.Selection, name string) int {
	t.Helper()
	n, err := strconv.Atoi(s.AttrOr(name, ""))
	if err != nil {
		t.Fatalf("progress %s: %v", name, err)
	}
	return n
}
