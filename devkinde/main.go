package devkinde

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"syscall"
	"time"
)

// ErrHelp is what Main returns when asked for its usage (-h, --help): it
// has printed the usage and the program should exit with success.
var ErrHelp = flag.ErrHelp

// Main runs devkinde as a program until ctx is done: the lead wires it as
// `permsync devkinde`. Flags:
//
//	--addr        listen address (default 127.0.0.1:7070, this machine only)
//	--public-url  issuer URL if it differs from http://<addr>
//	--seed        seed JSON file (default: the built-in seed)
//	--generate    add a generated tenant, ORGSxUSERS[@SEED] (e.g. 1000x5000)
//	--data        data folder; keys and state survive restarts
//	--access-ttl  access token lifetime override (e.g. 2m)
//	--rate        Management API requests per second (0 = unlimited)
//	--fault-rate  fraction of Management API requests answered 500
//	--redirect    comma-separated URLs allowed as callback and logout
//	              redirects of the default web client (permsync_web)
//	--quirks      Kinde's unsettled behaviours: cautious (default), none,
//	              all, or a list such as cautious,no-role-updated (quirks.go)
//	--custom-domain-addr  listen address of the custom domain (with the
//	              custom-domain quirk; default 127.0.0.1:0)
//	--custom-domain-url   its issuer URL if it differs from http://<addr>
//	--roles-claim turn on the roles claim ("Roles (array)") for the web client
//	--debug       log every request
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("devkinde", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "127.0.0.1:7070", "listen address (this machine only; 0.0.0.0:7070 for every interface)")
	publicURL := fs.String("public-url", "", "issuer URL (default http://<addr>)")
	seedPath := fs.String("seed", "", "seed JSON file (default: built-in seed)")
	generate := fs.String("generate", "", "add a generated tenant of ORGSxUSERS[@SEED] to the built-in seed, e.g. 1000x5000")
	dataDir := fs.String("data", "", "data folder for keys and state (default: in memory)")
	accessTTL := fs.Duration("access-ttl", 0, "access token lifetime override (0 = per client, default 24h)")
	rps := fs.Float64("rate", 0, "Management API rate limit in requests per second (0 = unlimited)")
	faults := fs.Float64("fault-rate", 0, "fraction of Management API requests answered 500 (0..1)")
	redirects := fs.String("redirect", "", "comma-separated callback/logout URLs to allow for the web client "+WebClientID)
	quirks := fs.String("quirks", "cautious", "Kinde's unsettled behaviours: cautious, none, all, or a comma-separated list of "+
		strings.Join(quirkNames, ", ")+" (prefix - to turn one off)")
	customAddr := fs.String("custom-domain-addr", "", "listen address of the custom domain (custom-domain quirk; default 127.0.0.1:0)")
	customURL := fs.String("custom-domain-url", "", "issuer URL of the custom domain (default http://<custom-domain-addr>)")
	rolesClaim := fs.Bool("roles-claim", false, "turn on the roles claim (\"Roles (array)\") for the web client "+WebClientID)
	debug := fs.Bool("debug", false, "log every request")
	usage := func(w io.Writer) {
		fs.SetOutput(w)
		fmt.Fprintln(w, "Usage: permsync devkinde [flags]\n\nRuns devkinde, the Kinde-compatible provider, alone.\n\nFlags:")
		fs.PrintDefaults()
	}
	fs.Usage = func() {} // printed below, to the right stream
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			usage(stdout) // asked for: standard output, and success
			return ErrHelp
		}
		usage(stderr)
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("devkinde: unexpected arguments: %v", fs.Args())
	}
	level := slog.LevelInfo
	if *debug {
		level = slog.LevelDebug
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))

	q, err := ParseQuirks(*quirks)
	if err != nil {
		return err
	}
	cfg := Config{Addr: *addr, PublicURL: *publicURL, DataDir: *dataDir, AccessTokenTTL: *accessTTL,
		RateLimit: *rps, FaultRate: *faults, Logger: logger, Quirks: &q,
		CustomDomainAddr: *customAddr, CustomDomainURL: *customURL}
	if *generate != "" {
		if *seedPath != "" {
			return fmt.Errorf("devkinde: --seed and --generate cannot be used together")
		}
		o, err := ParseGenerate(*generate)
		if err != nil {
			return err
		}
		cfg.Seed = GenerateSeed(o)
	}
	if *seedPath != "" {
		sd, err := LoadSeed(*seedPath)
		if err != nil {
			return err
		}
		cfg.Seed = sd
	}
	srv, err := New(cfg)
	if err != nil {
		return err
	}
	if urls := splitList(*redirects); len(urls) > 0 {
		srv.AllowRedirect(WebClientID, urls...)
	}
	if *rolesClaim {
		srv.SetRolesClaim(WebClientID, true)
	}
	if err := srv.Start(); err != nil {
		if errors.Is(err, syscall.EADDRINUSE) {
			return fmt.Errorf("devkinde cannot listen on %s: the address is already in use. Pass --addr with a free address, e.g. --addr 127.0.0.1:7071", *addr)
		}
		return err
	}
	fmt.Fprintf(stdout, "devkinde is running at %s\n", srv.URL())
	fmt.Fprintf(stdout, "  discovery:  %s/.well-known/openid-configuration\n", srv.URL())
	fmt.Fprintf(stdout, "  quirks:     %s\n", srv.Quirks())
	if u := srv.CustomDomainURL(); u != "" {
		fmt.Fprintf(stdout, "  custom domain (sign-in only): %s\n", u)
	}
	if *seedPath == "" {
		fmt.Fprintf(stdout, "  web client: %s / %s (add callback URLs with AllowRedirect or a seed file)\n",
			WebClientID, WebClientSecret)
		fmt.Fprintf(stdout, "  m2m client: %s / %s, audience %s/api\n", M2MClientID, M2MClientSecret, srv.URL())
		for _, a := range srv.DemoAccounts() {
			fmt.Fprintf(stdout, "  demo user:  %s (%s), password %q\n", a.Email, a.Access, a.Password)
		}
	}
	<-ctx.Done()
	done := make(chan error, 1)
	go func() { done <- srv.Close() }()
	select {
	case err := <-done:
		return err
	case <-time.After(10 * time.Second):
		return fmt.Errorf("devkinde: shutdown timed out")
	}
}
