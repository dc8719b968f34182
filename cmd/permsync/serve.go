package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
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
		host := cfg.Addr
		if strings.HasPrefix(host, "0.0.0.0:") || strings.HasPrefix(host, ":") {
			host = "localhost:" + host[strings.LastIndexByte(host, ':')+1:]
		}
		cfg.SiteURL = "http://" + host
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
