// Command bench-http compares permsync's signed-in page with two baselines,
// side by side in one run, with the same load generator (wrk):
//
//   - permsync: GET /dashboard as alice, through the whole middleware chain
//     (server-side session read, permission guard, CSRF, logging, metrics);
//   - bare: bare Echo rendering the same templ page, no session at all;
//   - stateless: all tokens in a gorilla CookieStore cookie, the access token
//     verified with go-oidc on every request (internal/bench/baseline).
//
// Everything runs on loopback: devkinde, permsync (SQLite in a temporary
// folder) and both baselines in this process, wrk as a child process. Rounds
// alternate the three targets so drift on a shared machine hits them all
// alike; the ratios are taken within each round and their medians printed.
// `make bench-http` pins this process to CPU 0 and wrk to CPU 1 when taskset
// exists. See docs/BENCHMARKS.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/PuerkitoBio/goquery"

	"permsync/app"
	"permsync/devkinde"
	"permsync/internal/bench/baseline"
	"permsync/internal/bench/benchkit"
	"permsync/views/components"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "bench-http:", err)
		os.Exit(1)
	}
}

type target struct {
	name   string
	url    string
	cookie string // the Cookie header wrk sends
	size   int
	rps    []float64
	p99    []string
}

func run() error {
	rounds := flag.Int("rounds", 3, "rounds; each round loads every target once, in rotating order")
	dur := flag.Duration("duration", 10*time.Second, "how long wrk loads each target per round")
	conns := flag.Int("connections", 16, "wrk connections (kept alive)")
	wrkCPU := flag.String("wrk-cpu", "", "run wrk under `taskset -c CPU` (make bench-http sets 1 on machines with 2+ CPUs)")
	cpuProfile := flag.String("cpuprofile", "", "profile this process while wrk loads `target` (permsync, bare or stateless) in the first round; written to TARGET.prof")
	logLevel := flag.String("log-level", "info", "permsync's log level; its request log goes to a file in the temporary folder")
	flag.Parse()
	if *rounds < 1 || *rounds > 20 || *dur < time.Second || *dur > 2*time.Minute || *conns < 1 || *conns > 512 {
		return errors.New("want 1-20 rounds, a 1s-2m duration and 1-512 connections")
	}
	wrk, err := exec.LookPath("wrk")
	if err != nil {
		return errors.New("wrk is not installed; on Debian or Ubuntu: sudo apt-get install -y wrk")
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		return fmt.Errorf("-log-level: %w", err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	tmp, err := os.MkdirTemp("", "permsync-bench-http-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	logFile, err := os.Create(filepath.Join(tmp, "permsync.log"))
	if err != nil {
		return err
	}
	defer logFile.Close()
	log := slog.New(slog.NewTextHandler(logFile, &slog.HandlerOptions{Level: level}))

	// devkinde, as Kinde.
	dkLn, err := listen()
	if err != nil {
		return err
	}
	issuer := "http://" + dkLn.Addr().String()
	dk, err := devkinde.New(devkinde.Config{PublicURL: issuer, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return fmt.Errorf("devkinde: %w", err)
	}
	defer dk.Close()
	go serve(dkLn, dk.Handler())

	// permsync.
	appLn, err := listen()
	if err != nil {
		return err
	}
	appURL := "http://" + appLn.Addr().String()
	dk.AllowRedirect(devkinde.WebClientID, appURL+"/callback", appURL+"/")
	vars := map[string]string{
		"KINDE_ISSUER_URL": issuer, "KINDE_CLIENT_ID": devkinde.WebClientID,
		"KINDE_CLIENT_SECRET": devkinde.WebClientSecret, "KINDE_SITE_URL": appURL,
		"KINDE_POST_LOGOUT_REDIRECT_URL": appURL + "/", "KINDE_M2M_CLIENT_ID": devkinde.M2MClientID,
		"KINDE_M2M_CLIENT_SECRET": devkinde.M2MClientSecret, "PERMSYNC_ADDR": appLn.Addr().String(),
		"PERMSYNC_SECRET": strings.Repeat("5e", 32), "PERMSYNC_DATA_DIR": tmp,
		"PERMSYNC_LOG_LEVEL": *logLevel,
	}
	cfg, err := app.LoadConfig(func(k string) string { return vars[k] })
	if err != nil {
		return fmt.Errorf("permsync config: %w", err)
	}
	a, err := app.New(ctx, cfg, log)
	if err != nil {
		return fmt.Errorf("permsync: %w", err)
	}
	defer a.Close()
	served := make(chan error, 1)
	go func() { served <- a.Serve(ctx, appLn) }()
	defer func() { cancel(); <-served }()

	// The stateless baseline signs in through devkinde like permsync does.
	stLn, err := listen()
	if err != nil {
		return err
	}
	stURL := "http://" + stLn.Addr().String()
	dk.AllowRedirect(devkinde.WebClientID, stURL+"/callback")
	st, err := baseline.Stateless(ctx, baseline.StatelessConfig{
		IssuerURL: issuer, ClientID: devkinde.WebClientID, ClientSecret: devkinde.WebClientSecret, SiteURL: stURL,
	})
	if err != nil {
		return fmt.Errorf("stateless baseline: %w", err)
	}
	go serve(stLn, st)

	const email = "alice@acme.test"
	psCookie, psBody, err := signIn(appURL, email)
	if err != nil {
		return fmt.Errorf("sign in to permsync: %w", err)
	}
	stCookie, stBody, err := signIn(stURL, email)
	if err != nil {
		return fmt.Errorf("sign in to the stateless baseline: %w", err)
	}

	// The bare baseline shows alice as permsync does, read from its page.
	alice, err := userFromPage(psBody)
	if err != nil {
		return err
	}
	bareLn, err := listen()
	if err != nil {
		return err
	}
	bareURL := "http://" + bareLn.Addr().String()
	go serve(bareLn, baseline.Bare(alice))
	bareBody, err := get(bareURL+"/dashboard", "")
	if err != nil {
		return fmt.Errorf("bare baseline: %w", err)
	}

	if dir := os.Getenv("BENCH_HTTP_DUMP"); dir != "" {
		for n, b := range map[string][]byte{"permsync": psBody, "bare": bareBody, "stateless": stBody} {
			_ = os.WriteFile(filepath.Join(dir, n+".html"), b, 0o600)
		}
	}
	want := permissionsOf(psBody)
	targets := []*target{
		{name: "permsync", url: appURL + "/dashboard", cookie: psCookie, size: len(psBody)},
		{name: "bare", url: bareURL + "/dashboard", size: len(bareBody)},
		{name: "stateless", url: stURL + "/dashboard", cookie: stCookie, size: len(stBody)},
	}
	for _, t := range targets[1:] {
		body := bareBody
		if t.name == "stateless" {
			body = stBody
		}
		if got := permissionsOf(body); !slices.Equal(got, want) || len(want) == 0 {
			return fmt.Errorf("%s shows permissions %v, permsync %v: not the same page", t.name, got, want)
		}
	}

	fmt.Printf("GET /dashboard as %s (%d permissions), wrk -t1 -c%d -d%s, %d rounds, GOMAXPROCS=%s\n",
		email, len(want), *conns, *dur, *rounds, gomaxprocs())
	for _, t := range targets {
		fmt.Printf("  %-9s %s  body %d B, Cookie header %d B\n", t.name, t.url, t.size, len(t.cookie))
	}
	fmt.Println()
	for r := range *rounds {
		for i := range targets {
			t := targets[(i+r)%len(targets)]
			stop := func() {}
			if r == 0 && t.name == *cpuProfile {
				if stop, err = startProfile(t.name + ".prof"); err != nil {
					return err
				}
			}
			rps, p99, err := runWrk(wrk, *wrkCPU, t, *conns, *dur)
			stop()
			if err != nil {
				return fmt.Errorf("round %d, %s: %w", r+1, t.name, err)
			}
			t.rps = append(t.rps, rps)
			t.p99 = append(t.p99, p99)
			fmt.Printf("round %d  %-9s %9.0f req/s  p99 %s\n", r+1, t.name, rps, p99)
		}
	}

	ps, bare, stl := targets[0], targets[1], targets[2]
	var vsBare, vsStateless []float64
	for r := range *rounds {
		vsBare = append(vsBare, ps.rps[r]/bare.rps[r])
		vsStateless = append(vsStateless, ps.rps[r]/stl.rps[r])
	}
	fmt.Println()
	fmt.Printf("%-10s %s\n", "", "req/s per round → median")
	for _, t := range targets {
		fmt.Printf("%-10s %s → %.0f\n", t.name, join(t.rps, "%.0f"), benchkit.Median(t.rps))
	}
	fmt.Printf("\npermsync / bare       %s → median %.2f×  (goal ≥ 0.6×)\n", join(vsBare, "%.2f"), benchkit.Median(vsBare))
	fmt.Printf("permsync / stateless  %s → median %.2f×  (goal ≥ 2×)\n", join(vsStateless, "%.2f"), benchkit.Median(vsStateless))
	return nil
}

var (
	reqsRe = regexp.MustCompile(`Requests/sec:\s+([0-9.]+)`)
	p99Re  = regexp.MustCompile(`\s99%\s+(\S+)`)
	errRe  = regexp.MustCompile(`(Non-2xx or 3xx responses|Socket errors):.*`)
)

// runWrk loads t for d and returns requests per second and the p99 latency.
func runWrk(wrk, cpu string, t *target, conns int, d time.Duration) (float64, string, error) {
	args := []string{"-t1", "-c" + strconv.Itoa(conns), "-d" + strconv.Itoa(int(d.Seconds())) + "s", "--latency"}
	if t.cookie != "" {
		args = append(args, "-H", "Cookie: "+t.cookie)
	}
	args = append(args, t.url)
	name := wrk
	if cpu != "" {
		name, args = "taskset", append([]string{"-c", cpu, wrk}, args...)
	}
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		return 0, "", fmt.Errorf("%s: %w\n%s", name, err, out)
	}
	if m := errRe.Find(out); m != nil {
		return 0, "", fmt.Errorf("wrk saw failures (%s):\n%s", m, out)
	}
	m := reqsRe.FindSubmatch(out)
	if m == nil {
		return 0, "", fmt.Errorf("no Requests/sec in wrk's output:\n%s", out)
	}
	rps, err := strconv.ParseFloat(string(m[1]), 64)
	if err != nil {
		return 0, "", err
	}
	p99 := "?"
	if m := p99Re.FindSubmatch(out); m != nil {
		p99 = string(m[1])
	}
	return rps, p99, nil
}

// signIn signs in at base as a browser would and returns the Cookie header
// and the dashboard read once more with exactly that header, as wrk sends it.
func signIn(base, email string) (string, []byte, error) {
	cookie, _, err := benchkit.SignIn(http.DefaultClient, base, email, devkinde.DemoPassword)
	if err != nil {
		return "", nil, err
	}
	body, err := get(base+"/dashboard", cookie)
	return cookie, body, err
}

func get(u, cookie string) ([]byte, error) {
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	if cookie != "" {
		req.Header.Set("Cookie", cookie)
	}
	c := &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}
	resp, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("GET %s: %d", u, resp.StatusCode)
	}
	return body, err
}

// userFromPage reads what permsync's dashboard shows about the user, so the
// bare baseline renders the same.
func userFromPage(body []byte) (baseline.User, error) {
	doc, err := goquery.NewDocumentFromReader(strings.NewReader(string(body)))
	if err != nil {
		return baseline.User{}, err
	}
	text := func(sel string) string { return strings.TrimSpace(doc.Find(sel).First().Text()) }
	u := baseline.User{
		ID: text(`[data-testid="session-panel"] code.wrap`), Name: text(`[data-testid="user-name"]`),
		Email: text(`[data-testid="user-email"]`), OrgCode: text(`[data-testid="user-org"] code`),
		Permissions: permissionsOf(body), IssuedAt: time.Now(), ExpiresAt: time.Now().Add(24 * time.Hour),
	}
	doc.Find(`[data-testid="role"]`).Each(func(_ int, s *goquery.Selection) {
		key, _ := s.Attr("data-key")
		name := strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(s.Text()), key))
		u.Roles = append(u.Roles, components.Role{Key: key, Name: name})
	})
	if u.Email == "" || len(u.Permissions) == 0 {
		return u, errors.New("could not read the user from permsync's dashboard")
	}
	return u, nil
}

func permissionsOf(body []byte) []string {
	doc, err := goquery.NewDocumentFromReader(strings.NewReader(string(body)))
	if err != nil {
		return nil
	}
	var keys []string
	doc.Find(`[data-testid="permission"]`).Each(func(_ int, s *goquery.Selection) {
		if k, ok := s.Attr("data-key"); ok {
			keys = append(keys, k)
		}
	})
	slices.Sort(keys)
	return slices.Compact(keys)
}

// startProfile starts a CPU profile into file; the returned func stops it.
func startProfile(file string) (func(), error) {
	f, err := os.Create(file)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
}

func listen() (net.Listener, error) { return net.Listen("tcp", "127.0.0.1:0") }

func serve(ln net.Listener, h http.Handler) {
	_ = (&http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}).Serve(ln)
}

func join(xs []float64, f string) string {
	parts := make([]string, len(xs))
	for i, x := range xs {
		parts[i] = fmt.Sprintf(f, x)
	}
	return strings.Join(parts, " ")
}

func gomaxprocs() string { return strconv.Itoa(runtime.GOMAXPROCS(0)) }
