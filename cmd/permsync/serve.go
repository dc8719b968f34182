package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"syscall"

	"permsync/app"
	"permsync/devkinde"
)

// serve runs the app until ctx ends. With no KINDE_ISSUER_URL it first starts
// devkinde in-process, on its own port, and points the app at it exactly as
// it would point at Kinde.
func serve(ctx context.Context, cfg app.Config, log *slog.Logger, stdout io.Writer) error {
	var dk *devkinde.Server
	if cfg.Dev {
		var err error
		if dk, err = startDevKinde(&cfg, log); err != nil {
			return err
		}
		defer dk.Close()
	}
	a, err := app.New(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer a.Close()
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return listenError(err, "permsync", cfg.Addr, "Set PERMSYNC_ADDR to a free address, e.g. PERMSYNC_ADDR=127.0.0.1:8081")
	}
	if dk != nil {
		printBanner(stdout, cfg, dk.DemoAccounts())
	}
	return a.Serve(ctx, ln)
}

// printBanner tells a developer where to go and whom to sign in as, from
// devkinde's current state (a permission deleted in an earlier run is not
// advertised).
func printBanner(w io.Writer, cfg app.Config, accounts []devkinde.DemoAccount) {
	fmt.Fprintf(w, "\npermsync is running in dev mode against devkinde at %s\n", cfg.IssuerURL)
	fmt.Fprintf(w, "  open       %s\n", cfg.SiteURL)
	for i, a := range accounts {
		lead := "           "
		if i == 0 {
			lead = "  sign in as"
		}
		fmt.Fprintf(w, "%s %s (%s)\n", lead, a.Email, a.Access)
	}
	if len(accounts) > 0 {
		fmt.Fprintf(w, "  every demo password is %q; `make demo-reset` starts the demo afresh\n", accounts[0].Password)
	}
	fmt.Fprintln(w)
}

// listenError explains an address that cannot be listened on; for one in
// use, it says what to change.
func listenError(err error, who, addr, fix string) error {
	if errors.Is(err, syscall.EADDRINUSE) {
		return fmt.Errorf("%s cannot listen on %s: the address is already in use (is another permsync running?). %s", who, addr, fix)
	}
	return fmt.Errorf("%s cannot listen on %s: %w", who, addr, err)
}

// startDevKinde starts the embedded provider and fills in the Kinde settings
// that point at it.
func startDevKinde(cfg *app.Config, log *slog.Logger) (*devkinde.Server, error) {
	dcfg := devkinde.Config{
		Addr:           cfg.DevKindeAddr,
		DataDir:        filepath.Join(cfg.DataDir, "devkinde"),
		AccessTokenTTL: cfg.DevAccessTTL,
		Logger:         log.With("component", "devkinde"),
	}
	if cfg.DevGenerate != "" {
		o, err := devkinde.ParseGenerate(cfg.DevGenerate)
		if err != nil {
			return nil, fmt.Errorf("PERMSYNC_DEVKINDE_GENERATE: %w", err)
		}
		// Saved state wins over a seed: a generated tenant gets its own
		// folder, so switching sizes never mixes tenants.
		dcfg.Seed = devkinde.GenerateSeed(o)
		dcfg.DataDir = filepath.Join(cfg.DataDir, "devkinde-"+strings.ReplaceAll(cfg.DevGenerate, "@", "-"))
		log.Info("devkinde: generated tenant", "organizations", o.Organizations, "users", o.Users, "seed", o.Seed)
	}
	dk, err := devkinde.New(dcfg)
	if err != nil {
		return nil, err // devkinde's errors say "devkinde: …" already
	}
	if err := dk.Start(); err != nil {
		if errors.Is(err, syscall.EADDRINUSE) {
			return nil, listenError(err, "devkinde", cfg.DevKindeAddr,
				"Set PERMSYNC_DEVKINDE_ADDR to a free address, e.g. PERMSYNC_DEVKINDE_ADDR=127.0.0.1:7071")
		}
		return nil, err
	}
	if cfg.SiteURL == "" {
		cfg.SiteURL = devSiteURL(cfg.Addr)
	}
	cfg.IssuerURL, cfg.KindeDomain = dk.URL(), dk.URL()
	cfg.ClientID, cfg.ClientSecret = devkinde.WebClientID, devkinde.WebClientSecret
	cfg.M2MClientID, cfg.M2MClientSecret = devkinde.M2MClientID, devkinde.M2MClientSecret
	if cfg.PostLogoutRedirect == "" {
		cfg.PostLogoutRedirect = cfg.SiteURL + "/"
	}
	dk.AllowRedirect(devkinde.WebClientID, cfg.SiteURL+"/callback", cfg.PostLogoutRedirect)
	if len(cfg.Secrets) == 0 {
		s, err := app.DevSecret(cfg.DataDir)
		if err != nil {
			dk.Close()
			return nil, fmt.Errorf("dev secret: %w", err)
		}
		cfg.Secrets = []string{s}
	}
	log.Info("devkinde started", "issuer", cfg.IssuerURL)
	if cfg.DevOptIn {
		log.Warn("dev mode by request (PERMSYNC_DEV): anyone who can reach devkinde can sign in with its demo passwords")
	}
	return dk, nil
}

// devSiteURL is the site URL dev mode uses when KINDE_SITE_URL is unset:
// http://localhost:<port> whenever the app listens on this machine's
// loopback or on every interface, so it matches what README tells people to
// open (cookies are per host: a sign-in begun on 127.0.0.1 and called back
// on localhost would fail). The app redirects the other loopback names to
// it. Any other host is used as it is.
func devSiteURL(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "http://" + addr
	}
	ip := net.ParseIP(host)
	if host == "" || strings.EqualFold(host, "localhost") || (ip != nil && (ip.IsLoopback() || ip.IsUnspecified())) {
		host = "localhost"
	}
	return "http://" + net.JoinHostPort(host, port)
}
