package admin

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"permsync/apperr"
	"permsync/events"
	"permsync/kinde"
	"permsync/store"
)

// The real dependencies satisfy the consumer-defined interfaces.
var (
	_ KindeAPI     = (*kinde.Client)(nil)
	_ SessionStore = (*store.DB)(nil)
	_ Publisher    = (*events.Broker)(nil)
	_ JobInserter  = (*river.Client[*sql.Tx])(nil)
)

func TestReasonsRoundTrip(t *testing.T) {
	rs := []Reason{{Kind: ReasonSession}, {Kind: ReasonRole, RoleKey: "viewer"}, {Kind: ReasonDirect},
		{Kind: ReasonRole, RoleKey: "analyst"}}
	sortReasons(rs)
	s := formatReasons(rs)
	if s != "role:analyst,role:viewer,direct,session" {
		t.Fatalf("formatted %q", s)
	}
	back := parseReasons(s)
	if len(back) != 4 || back[1] != (Reason{Kind: ReasonRole, RoleKey: "viewer"}) || back[3].Label() == "" {
		t.Fatalf("parsed %+v", back)
	}
	if parseReasons("") != nil {
		t.Fatal("empty should parse to nil")
	}
	if got := addReason(rs, Reason{Kind: ReasonDirect}); len(got) != 4 {
		t.Fatal("duplicate reason added")
	}
}

func TestProgressOf(t *testing.T) {
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

func TestBackoffPolicy(t *testing.T) {
	p := &backoffPolicy{base: time.Second, max: time.Minute}
	for attempt, want := range map[int]time.Duration{1: time.Second, 2: 2 * time.Second, 4: 8 * time.Second, 20: time.Minute} {
		for range 20 {
			d := time.Until(p.NextRetry(&rivertype.JobRow{Attempt: attempt}))
			if d < want/2-50*time.Millisecond || d > want+50*time.Millisecond {
				t.Fatalf("attempt %d: wait %s, want within [%s, %s]", attempt, d, want/2, want)
			}
		}
	}
}

func TestJobErrorClassification(t *testing.T) {
	api := func(status int) error {
		return fmt.Errorf("wrapped: %w", &kinde.APIError{Status: status, Message: "nope"})
	}
	cases := []struct {
		err       error
		permanent bool
		contains  string
	}{
		{api(http.StatusNotFound), true, "not found"},
		{api(http.StatusForbidden), true, "update:user_refresh_claims"},
		{api(http.StatusBadRequest), true, "nope"},
		{api(http.StatusTooManyRequests), false, "429"},
		{api(http.StatusBadGateway), false, "502"},
		{context.Canceled, false, "Interrupted"},
		{errors.New("dial tcp: refused"), false, "could not be reached"},
	}
	for _, c := range cases {
		if got := isPermanent(c.err); got != c.permanent {
			t.Errorf("isPermanent(%v) = %v", c.err, got)
		}
		if msg := readableJobError(c.err); !contains(msg, c.contains) {
			t.Errorf("readableJobError(%v) = %q, want it to mention %q", c.err, msg, c.contains)
		}
	}
}

func TestErrors(t *testing.T) {
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
