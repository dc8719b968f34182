package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"strings"

	"permsync/app"
	"permsync/devkinde"
)

// serve runs the app until ctx ends. With no KINDE_ISSUER_URL it first starts
// devkinde in-process, on its own port, and points the app at it exactly as
// it would point at Kinde.
func serve(ctx context.Context, cfg app.Config, log *slog.Logger, stdout io.Writer) error {
	if cfg.Dev {
		dk, err := startDevKinde(&cfg, log)
		if err != nil {
			return err
		}
		defer dk.Close()
	}
	a, err := app.New(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer a.Close()
	if cfg.Dev {
		fmt.Fprintf(stdout, "\npermsync is running in dev mode against devkinde at %s\n", cfg.IssuerURL)
		fmt.Fprintf(stdout, "  open       %s\n", cfg.SiteURL)
		fmt.Fprintf(stdout, "  sign in as admin@acme.test (admin), alice@acme.test (analyst), bob@acme.test (viewer)\n")
		fmt.Fprintf(stdout, "             or carol@acme.test (viewer + export:reports); every password is %q\n\n", devkinde.DemoPassword)
	}
	return a.Run(ctx)
}

// startDevKinde starts the embedded provider and fills in the Kinde settings
// that point at it.
func startDevKinde(cfg *app.Config, log *slog.Logger) (*devkinde.Server, error) {
	dk, err := devkinde.New(devkinde.Config{
		Addr:           cfg.DevKindeAddr,
		DataDir:        filepath.Join(cfg.DataDir, "devkinde"),
		AccessTokenTTL: cfg.DevAccessTTL,
		Logger:         log.With("component", "devkinde"),
	})
	if err != nil {
		return nil, fmt.Errorf("devkinde: %w", err)
	}
	if err := dk.Start(); err != nil {
		return nil, fmt.Errorf("devkinde: %w", err)
	}
	if cfg.SiteURL == "" {
		cfg.SiteURL = devSiteURL(cfg.Addr)
	}
	cfg.IssuerURL = dk.URL()
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
