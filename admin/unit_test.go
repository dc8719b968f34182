package admin

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"permsync/apperr"
	"permsync/events"
	"permsync/fanout"
	"permsync/kinde"
	"permsync/store"
)

// The real dependencies satisfy the consumer-defined interfaces.
var (
	_ KindeAPI     = (*kinde.Client)(nil)
	_ SessionStore = (*store.DB)(nil)
	_ Publisher    = (*events.Broker)(nil)
	_ Fanouts      = (*fanout.Engine)(nil)
)

func TestProgressOf(t *testing.T) {
	t.Parallel()
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	f := store.Fanout{ID: "fo_1", Total: 100, Done: 18, Failed: 2, CreatedAt: start}
	p := progressOf(f, start.Add(10*time.Second))
	if p.Rate != 2 || p.ETA != 40*time.Second || p.Pending != 80 || p.Percent != 20 || p.Finished {
		t.Fatalf("progress = %+v", p)
	}
	f.Done, f.Failed, f.FinishedAt = 99, 1, start.Add(50*time.Second)
	p = progressOf(f, start.Add(time.Hour))
	if p.Rate != 2 || p.ETA != 0 || !p.Finished || p.Percent != 100 {
		t.Fatalf("finished progress = %+v", p)
	}
	if p := progressOf(store.Fanout{CreatedAt: start}, start); p.Percent != 100 || p.Rate != 0 {
		t.Fatalf("empty fan-out = %+v", p)
	}
}

func TestErrors(t *testing.T) {
	t.Parallel()
	if kindeError(nil, "User") != nil {
		t.Fatal("nil error")
	}
	wrapped := fmt.Errorf("handler: %w", ErrForbidden)
	if apperr.CodeOf(wrapped) != apperr.Forbidden || apperr.MessageOf(wrapped) != ErrForbidden.Message {
		t.Fatal("wrapped forbidden")
	}
	plain := errors.New("secret detail")
	if apperr.CodeOf(plain) != apperr.Internal || contains(apperr.MessageOf(plain), "secret") {
		t.Fatal("plain errors must not leak")
	}
	if ie := errInternal(plain); apperr.CodeOf(ie) != apperr.Internal || contains(apperr.MessageOf(ie), "secret") || !errors.Is(ie, plain) {
		t.Fatalf("internal = %v", ie)
	}
	ke := kindeError(&kinde.APIError{Status: 404}, "User")
	if apperr.CodeOf(ke) != apperr.NotFound || !errors.Is(ke, ke.(*apperr.Error).Err) {
		t.Fatalf("kinde 404 = %v", ke)
	}
	if apperr.CodeOf(kindeError(&kinde.APIError{Status: 503}, "User")) != apperr.Unavailable {
		t.Fatal("kinde 503")
	}
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }
