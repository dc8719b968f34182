package fanout

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/riverqueue/river/rivertype"

	"permsync/kinde"
)

func TestReasonsRoundTrip(t *testing.T) {
	t.Parallel()
	rs := []Reason{{Kind: ReasonSession}, {Kind: ReasonRole, RoleKey: "viewer"}, {Kind: ReasonDirect},
		{Kind: ReasonRole, RoleKey: "analyst"}}
	SortReasons(rs)
	s := FormatReasons(rs)
	if s != "role:analyst,role:viewer,direct,session" {
		t.Fatalf("formatted %q", s)
	}
	back := ParseReasons(s)
	if len(back) != 4 || back[1] != (Reason{Kind: ReasonRole, RoleKey: "viewer"}) || back[3].Label() == "" {
		t.Fatalf("parsed %+v", back)
	}
	if ParseReasons("") != nil {
		t.Fatal("empty should parse to nil")
	}
	if got := AddReason(rs, Reason{Kind: ReasonDirect}); len(got) != 4 {
		t.Fatal("duplicate reason added")
	}
}

func TestBackoffPolicy(t *testing.T) {
	t.Parallel()
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
	t.Parallel()
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
		if got := IsPermanent(c.err); got != c.permanent {
			t.Errorf("IsPermanent(%v) = %v", c.err, got)
		}
		if msg := ReadableError(c.err); !contains(msg, c.contains) {
			t.Errorf("ReadableError(%v) = %q, want it to mention %q", c.err, msg, c.contains)
		}
	}
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }
