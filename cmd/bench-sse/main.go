// Command bench-sse holds many live pages (GET /events streams) open on one
// permsync process, measures the server's memory, then has an admin delete a
// permission every one of those users holds and measures how long each
// stream waits for its claims-changed event.
//
// It runs two child processes of the permsync binary given with -permsync,
// both on loopback: `permsync devkinde` seeded with -users extra analysts
// (each holds export:reports through the analyst role), and `permsync serve`
// against it (SQLite in a temporary folder). Every session is a real
// sign-in through devkinde's form; every stream is its own TCP connection.
// The server's resident memory (VmRSS, VmHWM) comes from /proc. Everything
// is bounded: -timeout ends the run, and the counts are capped. See
// docs/BENCHMARKS.md.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"permsync/devkinde"
	"permsync/internal/bench/benchkit"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "bench-sse:", err)
		os.Exit(1)
	}
}

type options struct {
	bin              string
	users, perUser   int
	signinWorkers    int
	timeout, deliver time.Duration
	rate             int
	keep             bool
}

func run() error {
	var o options
	flag.StringVar(&o.bin, "permsync", "bin/permsync", "the permsync binary to run")
	flag.IntVar(&o.users, "users", 1000, "signed-in users (each an analyst holding export:reports)")
	flag.IntVar(&o.perUser, "sessions-per-user", 10, "sessions per user, each with one open stream")
	flag.IntVar(&o.signinWorkers, "signin-workers", 8, "sign-ins run at once")
	flag.DurationVar(&o.timeout, "timeout", 20*time.Minute, "the whole run ends after this")
	flag.DurationVar(&o.deliver, "deliver-timeout", 60*time.Second, "how long to wait for every stream's event")
	flag.IntVar(&o.rate, "kinde-rate", 1000, "PERMSYNC_KINDE_RATE for the server")
	flag.BoolVar(&o.keep, "keep", false, "keep the temporary folder (logs, database)")
	flag.Parse()
	if o.users < 1 || o.users > 5000 || o.perUser < 1 || o.perUser > 32 || o.users*o.perUser > 20000 {
		return errors.New("want 1-5,000 users, 1-32 sessions per user and at most 20,000 streams")
	}
	ctx, cancel := context.WithTimeout(context.Background(), o.timeout)
	defer cancel()

	streams := o.users * o.perUser
	if err := raiseFileLimit(uint64(streams) + 1024); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "permsync-bench-sse-")
	if err != nil {
		return err
	}
	if o.keep {
		fmt.Println("temporary folder:", tmp)
	} else {
		defer os.RemoveAll(tmp)
	}

	// The tenant: the built-in seed plus the load's analysts.
	seed := devkinde.DefaultSeed()
	var exportID string
	for _, p := range seed.Permissions {
		if p.Key == "export:reports" {
			exportID = p.ID
		}
	}
	emails := make([]string, o.users)
	for i := range emails {
		emails[i] = fmt.Sprintf("load%05d@acme.test", i)
		seed.Users = append(seed.Users, devkinde.SeedUser{Email: emails[i], FirstName: "Load", LastName: strconv.Itoa(i),
			Password:      devkinde.DemoPassword,
			Organizations: []devkinde.SeedMembership{{Code: devkinde.DefaultOrgCode, Roles: []string{"analyst"}}}})
	}
	seedFile := filepath.Join(tmp, "seed.json")
	if b, err := json.Marshal(seed); err != nil {
		return err
	} else if err := os.WriteFile(seedFile, b, 0o600); err != nil {
		return err
	}

	dkAddr, appAddr := freeAddr(), freeAddr()
	issuer, site := "http://"+dkAddr, "http://"+appAddr
	dk, err := start(ctx, filepath.Join(tmp, "devkinde.log"), nil, o.bin, "devkinde", "--addr", dkAddr,
		"--seed", seedFile, "--redirect", site+"/callback,"+site+"/")
	if err != nil {
		return err
	}
	defer stop(dk)
	if err := waitOK(ctx, issuer+"/.well-known/openid-configuration"); err != nil {
		return fmt.Errorf("devkinde did not start: %w", err)
	}
	env := []string{
		"KINDE_ISSUER_URL=" + issuer, "KINDE_SITE_URL=" + site, "KINDE_POST_LOGOUT_REDIRECT_URL=" + site + "/",
		"KINDE_CLIENT_ID=" + devkinde.WebClientID, "KINDE_CLIENT_SECRET=" + devkinde.WebClientSecret,
		"KINDE_M2M_CLIENT_ID=" + devkinde.M2MClientID, "KINDE_M2M_CLIENT_SECRET=" + devkinde.M2MClientSecret,
		"PERMSYNC_ADDR=" + appAddr, "PERMSYNC_SECRET=" + strings.Repeat("5e", 32),
		"PERMSYNC_DATA_DIR=" + filepath.Join(tmp, "data"), "PERMSYNC_LOG_LEVEL=warn",
		"PERMSYNC_KINDE_RATE=" + strconv.Itoa(o.rate),
	}
	srv, err := start(ctx, filepath.Join(tmp, "permsync.log"), env, o.bin, "serve")
	if err != nil {
		return err
	}
	defer stop(srv)
	if err := waitOK(ctx, site+"/healthz"); err != nil {
		return fmt.Errorf("permsync did not start (see its log with -keep): %w", err)
	}
	time.Sleep(2 * time.Second)
	idle := rss(srv.Process.Pid)
	fmt.Printf("permsync pid %d: %s idle\n", srv.Process.Pid, idle)

	// Sign in: every session is a real sign-in.
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: o.signinWorkers * 2}}
	cookies := make([]string, streams)
	users := make([]int, streams)
	began := time.Now()
	var next atomic.Int64
	var wg sync.WaitGroup
	errc := make(chan error, o.signinWorkers)
	for range o.signinWorkers {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= streams || ctx.Err() != nil {
					return
				}
				u := i % o.users
				c, _, err := benchkit.SignIn(hc, site, emails[u], devkinde.DemoPassword)
				if err != nil {
					errc <- err
					return
				}
				cookies[i], users[i] = c, u
			}
		})
	}
	wg.Wait()
	close(errc)
	if err := <-errc; err != nil {
		return fmt.Errorf("sign-in: %w", err)
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	took := time.Since(began)
	fmt.Printf("%d sessions for %d users signed in in %s (%.0f/s); permsync %s\n", streams, o.users,
		took.Round(time.Millisecond), float64(streams)/took.Seconds(), rss(srv.Process.Pid))

	// Open every stream.
	tr := &http.Transport{MaxIdleConnsPerHost: -1, DisableCompression: true}
	sc := &http.Client{Transport: tr}
	gotAt := make([]atomic.Int64, streams) // unix nanos of claims-changed
	var connected, failed, ended atomic.Int64
	var firstErr atomic.Pointer[error]
	sctx, closeStreams := context.WithCancel(ctx)
	defer closeStreams()
	began = time.Now()
	sem := make(chan struct{}, 64)
	var swg sync.WaitGroup
	ready := make(chan struct{}, streams)
	for i := range streams {
		sem <- struct{}{}
		swg.Go(func() {
			err := stream(sctx, sc, site, cookies[i], func() { <-sem; connected.Add(1); ready <- struct{}{} },
				func(name string) {
					if name == "claims-changed" {
						gotAt[i].CompareAndSwap(0, time.Now().UnixNano())
					}
				})
			switch {
			case errors.Is(err, errStreamEnded):
				ended.Add(1)
			case err != nil && sctx.Err() == nil:
				if failed.Add(1) == 1 {
					firstErr.Store(&err)
				}
			}
		})
	}
	for range streams {
		select {
		case <-ready:
		case <-ctx.Done():
			return fmt.Errorf("only %d of %d streams connected (%d failed)", connected.Load(), streams, failed.Load())
		}
	}
	if n := failed.Load(); n > 0 {
		return fmt.Errorf("%d of %d streams failed, the first: %v", n, streams, *firstErr.Load())
	}
	took = time.Since(began)
	time.Sleep(5 * time.Second) // let the server settle
	open := metricStreams(site)
	held := rss(srv.Process.Pid)
	fmt.Printf("%d streams open in %s; the server counts %s open; permsync %s\n", connected.Load(),
		took.Round(time.Millisecond), open, held)

	// The admin deletes export:reports, which every one of them holds.
	admin, _, err := benchkit.SignIn(hc, site, "admin@acme.test", devkinde.DemoPassword)
	if err != nil {
		return fmt.Errorf("admin sign-in: %w", err)
	}
	csrf, err := csrfToken(hc, site+"/admin/permissions/"+exportID, admin)
	if err != nil {
		return err
	}
	form := url.Values{"_csrf": {csrf}, "confirm": {"export:reports"}}
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, site+"/admin/permissions/"+exportID+"/delete",
		strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Cookie", admin)
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	t0 := time.Now()
	resp, err := noRedirect.Do(req)
	if err != nil {
		return fmt.Errorf("delete: %w", err)
	}
	resp.Body.Close()
	clicked := time.Since(t0)
	if resp.StatusCode != http.StatusSeeOther {
		return fmt.Errorf("delete answered %d, want 303", resp.StatusCode)
	}
	deadline := time.Now().Add(o.deliver)
	for time.Now().Before(deadline) {
		n := 0
		for i := range gotAt {
			if gotAt[i].Load() != 0 {
				n++
			}
		}
		if n == streams {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	var lat []time.Duration
	for i := range gotAt {
		if at := gotAt[i].Load(); at != 0 {
			lat = append(lat, time.Unix(0, at).Sub(t0))
		}
	}
	after := rss(srv.Process.Pid)
	fmt.Printf("delete click answered in %s; claims-changed reached %d of %d streams (%d ended early)\n",
		clicked.Round(time.Millisecond), len(lat), streams, ended.Load())
	fmt.Printf("from the click: first %s, p50 %s, p95 %s, p99 %s, max %s; permsync %s\n",
		ms(benchkit.Percentile(lat, 0)), ms(benchkit.Percentile(lat, 50)), ms(benchkit.Percentile(lat, 95)), ms(benchkit.Percentile(lat, 99)),
		ms(benchkit.Percentile(lat, 100)), after)
	closeStreams()
	if len(lat) != streams {
		return fmt.Errorf("%d streams never got claims-changed", streams-len(lat))
	}
	return nil
}

var errStreamEnded = errors.New("stream ended by the server")

// stream holds one GET /events open until ctx ends, calling connected once
// the server's first comment arrives and onEvent for every event.
func stream(ctx context.Context, c *http.Client, site, cookie string, connected func(), onEvent func(string)) error {
	var once sync.Once
	defer once.Do(connected) // never leave the opener waiting
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, site+"/events", nil)
	if err != nil {
		return err
	}
	req.Header.Set("Cookie", cookie)
	req.Header.Set("Accept", "text/event-stream")
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET /events: %d", resp.StatusCode)
	}
	br := bufio.NewReaderSize(resp.Body, 512)
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if errors.Is(err, io.EOF) {
				return errStreamEnded
			}
			return err
		}
		switch {
		case strings.HasPrefix(line, ": connected"):
			once.Do(connected)
		case strings.HasPrefix(line, "event: "):
			onEvent(strings.TrimSpace(strings.TrimPrefix(line, "event: ")))
		}
	}
}

func csrfToken(c *http.Client, page, cookie string) (string, error) {
	req, _ := http.NewRequest(http.MethodGet, page, nil)
	req.Header.Set("Cookie", cookie)
	resp, err := c.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	m := regexp.MustCompile(`<meta name="csrf-token" content="([^"]+)"`).FindSubmatch(b)
	if resp.StatusCode != http.StatusOK || m == nil {
		return "", fmt.Errorf("GET %s: %d, no CSRF token", page, resp.StatusCode)
	}
	return string(m[1]), nil
}

// metricStreams reads permsync_sse_streams_in_flight from /metrics.
func metricStreams(site string) string {
	resp, err := http.Get(site + "/metrics")
	if err != nil {
		return "?"
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if m := regexp.MustCompile(`(?m)^permsync_sse_streams_in_flight (\S+)`).FindSubmatch(b); m != nil {
		return string(m[1])
	}
	return "?"
}

// rss reads a process's resident memory now and at its peak.
func rss(pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return "RSS ?"
	}
	var cur, peak string
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) < 2 {
			continue
		}
		kb, _ := strconv.Atoi(f[1])
		switch f[0] {
		case "VmRSS:":
			cur = fmt.Sprintf("%.1f MB", float64(kb)/1024)
		case "VmHWM:":
			peak = fmt.Sprintf("%.1f MB", float64(kb)/1024)
		}
	}
	return "RSS " + cur + " (peak " + peak + ")"
}

func ms(d time.Duration) string { return fmt.Sprintf("%.0f ms", float64(d)/float64(time.Millisecond)) }

// raiseFileLimit lifts this process's open-file limit (inherited by the
// servers it starts) to at least want, or says how.
func raiseFileLimit(want uint64) error {
	var l syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		return err
	}
	if l.Cur >= want {
		return nil
	}
	if l.Max < want {
		return fmt.Errorf("need %d open files but the hard limit is %d: raise it (ulimit -Hn, limits.conf) or use fewer streams",
			want, l.Max)
	}
	l.Cur = l.Max
	return syscall.Setrlimit(syscall.RLIMIT_NOFILE, &l)
}

func freeAddr() string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// start runs the binary with args and extra environment, its output into
// logFile.
func start(ctx context.Context, logFile string, env []string, bin string, args ...string) (*exec.Cmd, error) {
	f, err := os.Create(logFile)
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 10 * time.Second
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	return cmd, nil
}

func stop(cmd *exec.Cmd) {
	_ = cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = cmd.Process.Kill()
		<-done
	}
}

func waitOK(ctx context.Context, u string) error {
	for {
		resp, err := http.Get(u)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}
