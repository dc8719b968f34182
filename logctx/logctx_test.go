package logctx_test

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"

	"permsync/logctx"
)

func TestContextAttributesReachEveryRecord(t *testing.T) {
	var buf bytes.Buffer
	log := logctx.Wrap(slog.New(slog.NewTextHandler(&buf, nil)))
	if logctx.Wrap(log) != log {
		t.Fatal("wrapping twice made a new logger")
	}
	ctx := logctx.With(context.Background(), slog.String("request_id", "r1"))
	log.With("component", "x").InfoContext(ctx, "with context")
	log.Info("without context")
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], "request_id=r1") || !strings.Contains(lines[0], "component=x") ||
		strings.Contains(lines[1], "request_id") {
		t.Fatalf("log lines:\n%s", buf.String())
	}
	if strings.Count(lines[0], "request_id") != 1 {
		t.Fatalf("request_id logged more than once: %s", lines[0])
	}
}
