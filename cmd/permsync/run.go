package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"permsync/app"
	"permsync/devkinde"
)

const usage = `permsync keeps Kinde permissions true.

Usage:
  permsync [serve]        run the web app (default); with no KINDE_ISSUER_URL it also starts devkinde
  permsync devkinde       run only devkinde, the Kinde-compatible provider for dev and tests
  permsync config-dump    print the configuration with secrets redacted
  permsync help           show this text

Configuration comes from the environment; see README.md.
`

// run is the whole program; main only supplies the OS. Tests call it directly.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()

	cmd, rest := "serve", []string(nil)
	if len(args) > 1 {
		cmd, rest = args[1], args[2:]
	}
	switch cmd {
	case "serve":
		fs := flag.NewFlagSet("serve", flag.ContinueOnError)
		fs.SetOutput(stderr)
		if err := fs.Parse(rest); err != nil {
			return err
		}
		cfg, err := app.LoadConfig(getenv)
		if err != nil {
			return fmt.Errorf("configuration: %w", err)
		}
		return serve(ctx, cfg, newLogger(cfg, stderr), stdout)
	case "devkinde":
		return devkinde.Main(ctx, rest, stdout, stderr)
	case "config-dump", "-config-dump", "--config-dump":
		cfg, err := app.LoadConfig(getenv)
		cfg.Dump(stdout)
		if err != nil {
			return fmt.Errorf("configuration: %w", err)
		}
		return nil
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	default:
		fmt.Fprint(stderr, usage)
		return errors.New("unknown command " + cmd)
	}
}

func newLogger(cfg app.Config, w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: cfg.LogLevel}
	if cfg.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
