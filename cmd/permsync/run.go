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

const serveUsage = `Usage: permsync serve [--dev]

Runs the web app on PERMSYNC_ADDR (default 127.0.0.1:8080). With no
KINDE_ISSUER_URL it also starts devkinde, a Kinde stand-in with demo
accounts, on PERMSYNC_DEVKINDE_ADDR (default 127.0.0.1:7070): only when
PERMSYNC_ADDR, PERMSYNC_DEVKINDE_ADDR and KINDE_SITE_URL are all on this
machine, unless --dev (or PERMSYNC_DEV=1) says to anyway.

  --dev   run devkinde and its demo passwords even on addresses that other
          machines can reach (the same as PERMSYNC_DEV=1)

Configuration comes from the environment; see README.md, or run
'permsync config-dump' to see what it resolves to.
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
		fs.Usage = func() {} // printed below, to the right stream
		dev := fs.Bool("dev", false, "run devkinde even on addresses other machines can reach")
		if err := fs.Parse(rest); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				fmt.Fprint(stdout, serveUsage)
				return nil
			}
			fmt.Fprint(stderr, serveUsage)
			return err
		}
		if fs.NArg() > 0 {
			fmt.Fprint(stderr, serveUsage)
			return fmt.Errorf("serve takes no arguments (got %q); configuration comes from the environment", fs.Args())
		}
		if *dev {
			getenv = withVar(getenv, "PERMSYNC_DEV", "1")
		}
		cfg, err := app.LoadConfig(getenv)
		if err != nil {
			return fmt.Errorf("configuration: %w", err)
		}
		return serve(ctx, cfg, newLogger(cfg, stderr), stdout)
	case "devkinde":
		if err := devkinde.Main(ctx, rest, stdout, stderr); !errors.Is(err, devkinde.ErrHelp) {
			return err
		}
		return nil
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

// withVar returns getenv with name set to value.
func withVar(getenv func(string) string, name, value string) func(string) string {
	return func(k string) string {
		if k == name {
			return value
		}
		return getenv(k)
	}
}

func newLogger(cfg app.Config, w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: cfg.LogLevel}
	if cfg.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
