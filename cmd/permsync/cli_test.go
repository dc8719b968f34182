package main

import (
	"bytes"
	"context"
	"net"
	"strings"
	"testing"
	"time"
)

// env returns a getenv over the given variables only.
func env(vars map[string]string) func(string) string {
	return func(k string) string { return vars[k] }
}

// TestHelpExitsZero: asking a command for its usage prints it on standard
// output and succeeds.
func TestHelpExitsZero(t *testing.T) {
	for _, args := range [][]string{
		{"permsync", "serve", "--help"}, {"permsync", "serve", "-h"},
		{"permsync", "devkinde", "--help"}, {"permsync", "devkinde", "-h"},
		{"permsync", "help"}, {"permsync", "--help"},
	} {
		var stdout, stderr bytes.Buffer
		err := run(context.Background(), args, env(nil), &stdout, &stderr)
		if err != nil {
			t.Errorf("%v: %v; want success", args[1:], err)
		}
		if !strings.Contains(stdout.String(), "Usage") && !strings.Contains(stdout.String(), "permsync") {
			t.Errorf("%v: usage not on stdout: %q", args[1:], stdout.String())
		}
		if strings.Contains(stderr.String(), "help requested") {
			t.Errorf("%v: stderr says %q", args[1:], stderr.String())
		}
	}
}

// TestBadUsageFails: an unknown flag or argument is an error, with the usage
// on standard error.
func TestBadUsageFails(t *testing.T) {
	for _, args := range [][]string{
		{"permsync", "serve", "--nope"}, {"permsync", "serve", "extra"},
		{"permsync", "devkinde", "--nope"}, {"permsync", "nope"},
	} {
		var stdout, stderr bytes.Buffer
		if err := run(context.Background(), args, env(nil), &stdout, &stderr); err == nil {
			t.Errorf("%v: success; want an error", args[1:])
		}
		if !strings.Contains(stderr.String(), "Usage") && !strings.Contains(stderr.String(), "usage") &&
			!strings.Contains(stderr.String(), "permsync") {
			t.Errorf("%v: no usage on stderr: %q", args[1:], stderr.String())
		}
	}
}

// taken listens on a free loopback port for the test and returns it.
func taken(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln.Addr().String()
}

// TestPortInUseSaysWhatToChange: each listener that finds its address taken
// names the setting to change, once, without repeating "devkinde:".
func TestPortInUseSaysWhatToChange(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, tc := range []struct {
		name string
		args []string
		vars func(addr string) map[string]string
		want string
	}{
		{"devkinde alone", nil, nil, "--addr"},
		{"embedded devkinde", []string{"permsync", "serve"}, func(addr string) map[string]string {
			return map[string]string{"PERMSYNC_DATA_DIR": t.TempDir(), "PERMSYNC_DEVKINDE_ADDR": addr, "PERMSYNC_ADDR": "127.0.0.1:0"}
		}, "PERMSYNC_DEVKINDE_ADDR"},
		{"the app", []string{"permsync", "serve"}, func(addr string) map[string]string {
			return map[string]string{"PERMSYNC_DATA_DIR": t.TempDir(), "PERMSYNC_DEVKINDE_ADDR": "127.0.0.1:0", "PERMSYNC_ADDR": addr}
		}, "PERMSYNC_ADDR"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr := taken(t)
			args, vars := tc.args, map[string]string{}
			if args == nil {
				args = []string{"permsync", "devkinde", "--addr", addr}
			} else {
				vars = tc.vars(addr)
			}
			var stdout, stderr bytes.Buffer
			err := run(ctx, args, env(vars), &stdout, &stderr)
			if err == nil {
				t.Fatal("started on a taken address")
			}
			msg := err.Error()
			if !strings.Contains(msg, addr) || !strings.Contains(msg, "already in use") || !strings.Contains(msg, tc.want) {
				t.Errorf("error = %q; want the address, that it is in use, and %s", msg, tc.want)
			}
			if strings.Count(msg, "devkinde:") > 1 || strings.Contains(msg, "devkinde: devkinde") {
				t.Errorf("error repeats itself: %q", msg)
			}
		})
	}
}

// TestServeRefusesDemoProviderBeyondLoopback: with no KINDE_ISSUER_URL,
// serve on an address other machines can reach stops before listening, with
// one line naming what to set.
func TestServeRefusesDemoProviderBeyondLoopback(t *testing.T) {
	for _, vars := range []map[string]string{
		{"PERMSYNC_ADDR": "0.0.0.0:0"},
		{"PERMSYNC_DEVKINDE_ADDR": "0.0.0.0:0"},
		{"KINDE_SITE_URL": "https://app.example.com"},
	} {
		vars["PERMSYNC_DATA_DIR"] = t.TempDir()
		var stdout, stderr bytes.Buffer
		err := run(context.Background(), []string{"permsync", "serve"}, env(vars), &stdout, &stderr)
		if err == nil {
			t.Fatalf("%v: serve started; want it refused", vars)
		}
		if msg := err.Error(); strings.Contains(msg, "\n") || !strings.Contains(msg, "PERMSYNC_DEV=1") ||
			!strings.Contains(msg, "--dev") {
			t.Errorf("%v: error %q; want one line naming PERMSYNC_DEV=1 and --dev", vars, msg)
		}
	}
}

// TestDevFlagOptsIn: with --dev, the same configuration gets past the
// check (and here stops at devkinde's taken port, so nothing keeps running).
func TestDevFlagOptsIn(t *testing.T) {
	busy := taken(t)
	vars := map[string]string{"PERMSYNC_ADDR": "0.0.0.0:0", "PERMSYNC_DEVKINDE_ADDR": busy, "PERMSYNC_DATA_DIR": t.TempDir()}
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), []string{"permsync", "serve", "--dev"}, env(vars), &stdout, &stderr)
	if err == nil || !strings.Contains(err.Error(), "already in use") {
		t.Fatalf("serve --dev: %v; want it past the dev-mode check, stopped by the taken devkinde port", err)
	}
}

// TestDevkindeDefaultsToLoopback: devkinde alone listens on this machine
// unless told otherwise.
func TestDevkindeDefaultsToLoopback(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if err := run(context.Background(), []string{"permsync", "devkinde", "--help"}, env(nil), &stdout, &stderr); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(stdout.String(), `(default "127.0.0.1:7070")`) {
		t.Fatalf("devkinde's --addr default is not loopback:\n%s", stdout.String())
	}
}
