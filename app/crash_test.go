package app_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
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
	r := newCrashRun(t, crashUsers, map[string]string{
		"PERMSYNC_KINDE_RATE":  strconv.Itoa(crashAppRate),
		"PERMSYNC_LOG_LEVEL":   "debug",
		"PERMSYNC_UNDO_WINDOW": "4s",
	})
	r.dk.SetRateLimit(crashKindeRate)

	// First run: sign in, delete the permission, kill inside the undo
	// window; then restart and kill mid-fan-out.
	first := r.start(t, "run0.log")
	adm := r.signedIn(t)
	// The admin pages read the directory: its first sync runs in the last
	// lane of a 2 calls/s budget, a few seconds.
	fanoutID := r.deleteOnceSynced(t, adm, time.Minute)

	// Killed inside the undo window: Kinde has seen nothing, and the job
	// that deletes the permission waits in the database.
	if ph := adm.get(t, "/admin/fanouts/"+fanoutID).doc.Find(`[data-testid="fanout-phase"]`).AttrOr("data-phase", ""); ph != "waiting" {
		t.Fatalf("before the first kill the deletion is %q; want waiting (the undo window)", ph)
	}
	first.kill(t)
	for _, req := range r.dk.Requests() {
		if req.Method == http.MethodDelete {
			t.Fatalf("Kinde saw %s %s before the undo window ended", req.Method, req.Path)
		}
	}
	first = r.start(t, "run1.log")
	r.killMidFanout(t, first, crashKillAfter, time.Minute)

	// Second run on the same database: River's rescuer gives the stuck jobs
	// back once the dead process's leadership has expired.
	second := r.start(t, "run2.log")
	done, total := r.waitAllDone(t, second, r.signedIn(t), fanoutID, 3*time.Minute)
	again := r.checkEveryoneRefreshed(t)
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
	n := crashScaleUsers
	if v := os.Getenv("PERMSYNC_CRASH_USERS"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 10 {
			t.Fatalf("PERMSYNC_CRASH_USERS=%q: want a number of users, at least 10", v)
		}
	}
	r := newCrashRun(t, n, map[string]string{
		"PERMSYNC_KINDE_RATE":  strconv.Itoa(max(crashScaleRate, n*2/5)),
		"PERMSYNC_UNDO_WINDOW": "0s",
	})

	first := r.start(t, "run1.log")
	fanoutID := r.deleteOnceSynced(t, r.signedIn(t), 2*time.Minute)
	r.killMidFanout(t, first, n*2/5, 2*time.Minute)

	second := r.start(t, "run2.log")
	done, total := r.waitAllDone(t, second, r.signedIn(t), fanoutID, 5*time.Minute)
	second.kill(t) // the database is read below without it
	again := r.checkEveryoneRefreshed(t)

	ctx := context.Background()
	db, err := store.Open(ctx, store.Options{URL: "sqlite:" + r.dbPath})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ids := make([]string, 0, n)
	for id := range r.users {
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

// crashRun is what the SIGKILL tests share: devkinde seeded with users
// holding crashKey through crashRole, the permsync binary, and the
// environment of permsync processes that run one after another on one
// SQLite file and one address (so the site URL stays the same).
type crashRun struct {
	bin    string
	dk     *devkinde.Server
	users  map[string]bool // the users holding crashKey
	permID string          // crashKey's id
	site   string
	dir    string
	dbPath string
	env    map[string]string
}

// newCrashRun seeds n users holding crashKey and builds permsync; env is
// added to (or overrides) the processes' base environment. It skips the
// test with -short and on the Postgres pass: the crashed process keeps its
// jobs in its own SQLite file.
func newCrashRun(t *testing.T, n int, env map[string]string) *crashRun {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs the permsync binary; skipped with -short")
	}
	if os.Getenv("PERMSYNC_TEST_DATABASE_URL") != "" {
		t.Skip("the crashed process keeps its jobs in its own SQLite file; this test runs in the SQLite pass")
	}
	r := &crashRun{bin: buildPermsync(t), users: map[string]bool{}, dir: t.TempDir()}

	seed := devkinde.DefaultSeed()
	seed.Permissions = append(seed.Permissions, devkinde.SeedPermission{Key: crashKey, Name: "Crash test reports"})
	seed.Roles = append(seed.Roles, devkinde.SeedRole{Key: crashRole, Name: "Crash test", Permissions: []string{crashKey}})
	for i := range n {
		id := fmt.Sprintf("kp_%032x", 0xc7a54000+i)
		r.users[id] = true
		// No password: nobody signs in as them.
		seed.Users = append(seed.Users, devkinde.SeedUser{
			ID: id, Email: fmt.Sprintf("crash%05d@acme.test", i), FirstName: "Crash", LastName: strconv.Itoa(i),
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
	r.dk = dk
	kc := kinde.New(kinde.Config{IssuerURL: dk.URL(), ClientID: devkinde.M2MClientID, ClientSecret: devkinde.M2MClientSecret})
	r.permID = apptest.PermissionID(t, kc, crashKey)

	addr := freeLoopbackAddr(t)
	r.site = "http://" + addr
	dk.AllowRedirect(devkinde.WebClientID, r.site+"/callback", r.site+"/")
	r.dbPath = filepath.Join(r.dir, "permsync.db")
	r.env = map[string]string{
		"KINDE_ISSUER_URL":               dk.URL(),
		"KINDE_CLIENT_ID":                devkinde.WebClientID,
		"KINDE_CLIENT_SECRET":            devkinde.WebClientSecret,
		"KINDE_M2M_CLIENT_ID":            devkinde.M2MClientID,
		"KINDE_M2M_CLIENT_SECRET":        devkinde.M2MClientSecret,
		"KINDE_SITE_URL":                 r.site,
		"KINDE_POST_LOGOUT_REDIRECT_URL": r.site + "/",
		"PERMSYNC_ADDR":                  addr,
		"PERMSYNC_SECRET":                strings.Repeat("crash-test-secret-", 3),
		"PERMSYNC_DATA_DIR":              filepath.Join(r.dir, "data"),
		"DATABASE_URL":                   "sqlite:" + r.dbPath,
		"PERMSYNC_JOB_TIMEOUT":           "3s",
		"PERMSYNC_JOB_RESCUE_AFTER":      "4s",
	}
	maps.Copy(r.env, env)
	return r
}

// start starts a permsync process, logging to logName in the run's folder.
func (r *crashRun) start(t *testing.T, logName string) *permsyncProc {
	t.Helper()
	return startPermsync(t, r.bin, r.env, filepath.Join(r.dir, logName))
}

// signedIn is a client signed in as the admin.
func (r *crashRun) signedIn(t *testing.T) *crashClient {
	t.Helper()
	adm := newCrashClient(t, r.site)
	adm.signIn(t, "admin@acme.test")
	return adm
}

// deleteOnceSynced waits (up to within) for the directory's first sync, which
// the admin pages read, then deletes crashKey with Kinde's request log
// emptied first, and returns the deletion's fan-out id.
func (r *crashRun) deleteOnceSynced(t *testing.T, adm *crashClient, within time.Duration) string {
	t.Helper()
	syncDeadline := time.Now().Add(within)
	for !strings.HasPrefix(strings.Join(strings.Fields(adm.do(t, adm.hc, http.MethodGet, "/admin", nil).doc.
		Find(`[data-testid="directory-freshness"]`).Text()), " "), "Directory synced") {
		if time.Now().After(syncDeadline) {
			t.Fatalf("the directory's first sync did not finish in %v", within)
		}
		time.Sleep(100 * time.Millisecond)
	}
	r.dk.ResetRequests()
	page := adm.get(t, "/admin/permissions/"+r.permID)
	resp := adm.postNoRedirect(t, "/admin/permissions/"+r.permID+"/delete",
		url.Values{"confirm": {crashKey}, "_csrf": {page.csrf(t)}})
	fanoutID, ok := strings.CutPrefix(resp.Header.Get("Location"), "/admin/fanouts/")
	if resp.StatusCode != http.StatusSeeOther || !ok || fanoutID == "" {
		t.Fatalf("delete %s = %d, Location %q", crashKey, resp.StatusCode, resp.Header.Get("Location"))
	}
	return fanoutID
}

// killMidFanout waits (up to within) until Kinde has refreshed the claims of
// at least killAfter users, kills p with SIGKILL, and checks that the kill
// came mid-fan-out: not every user refreshed, and refresh_claims jobs left
// in state running.
func (r *crashRun) killMidFanout(t *testing.T, p *permsyncProc, killAfter int, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for len(refreshedUsers(r.dk, r.users)) < killAfter {
		if time.Now().After(deadline) {
			p.dumpLog(t)
			t.Fatalf("only %d users refreshed after %v; want %d before the kill", len(refreshedUsers(r.dk, r.users)),
				within, killAfter)
		}
		p.checkAlive(t)
		time.Sleep(5 * time.Millisecond)
	}
	p.kill(t)
	atKill := len(refreshedUsers(r.dk, r.users))
	if atKill >= len(r.users) {
		t.Fatalf("all %d users were refreshed before the kill; the fan-out is too fast to crash in", atKill)
	}
	running := runningRefreshJobs(t, r.dbPath)
	t.Logf("killed with %d of %d users refreshed at Kinde and %d refresh jobs left running", atKill, len(r.users), running)
	if running == 0 {
		t.Fatalf("no refresh_claims job left in state running after SIGKILL; the test did not crash a fan-out")
	}
}

// waitAllDone waits (up to within) for the fan-out's page to say it is
// finished, and checks that it finished with every user done and none
// failed. It returns the page's done and total counts.
func (r *crashRun) waitAllDone(t *testing.T, p *permsyncProc, adm *crashClient, fanoutID string, within time.Duration) (
	done, total int) {
	t.Helper()
	var failed int
	deadline := time.Now().Add(within)
	for {
		pr := adm.get(t, "/admin/fanouts/"+fanoutID).doc.Find(`[data-testid="progress"]`).First()
		if pr.Length() == 0 {
			t.Fatalf("fan-out %s: no progress panel", fanoutID)
		}
		done, failed, total = attrInt(t, pr, "data-done"), attrInt(t, pr, "data-failed"), attrInt(t, pr, "data-total")
		if pr.AttrOr("data-finished", "") == "true" {
			break
		}
		if time.Now().After(deadline) {
			p.dumpLog(t)
			t.Fatalf("fan-out %s not finished %v after the restart: %d done, %d failed of %d", fanoutID, within, done,
				failed, total)
		}
		p.checkAlive(t)
		time.Sleep(250 * time.Millisecond)
	}
	if n := len(r.users); total != n || done != n || failed != 0 {
		p.dumpLog(t)
		t.Fatalf("fan-out finished with %d done, %d failed of %d; want all %d done", done, failed, total, n)
	}
	return done, total
}

// checkEveryoneRefreshed checks that every user got refresh_claims at Kinde
// at least once, and returns how many calls were repeats.
func (r *crashRun) checkEveryoneRefreshed(t *testing.T) (again int) {
	t.Helper()
	refreshed := refreshedUsers(r.dk, r.users)
	for id := range r.users {
		if refreshed[id] == 0 {
			t.Errorf("user %s never got refresh_claims at Kinde", id)
		}
		again += max(0, refreshed[id]-1)
	}
	return again
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
