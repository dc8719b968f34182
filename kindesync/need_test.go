package kindesync

import (
	"testing"
	"time"

	"permsync/kinde"
)

// TestWebhookNeed dates a webhook's change: Kinde's event time (to the end
// of its second when it carries whole seconds only), else the receipt; it
// waits for a Kinde call under way only while the change is recent.
func TestWebhookNeed(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 2, 3, 12, 0, 0, 0, time.UTC)
	received := now.Add(-time.Second)
	micro := now.Add(-1500 * time.Microsecond)
	for _, tc := range []struct {
		name  string
		at    time.Time
		since time.Time
		wait  bool
	}{
		{"event time", micro, micro, true},
		{"whole seconds", now.Add(-3 * time.Second), now.Add(-2*time.Second - time.Millisecond), true},
		{"no event time", time.Time{}, received, true},
		{"old event", now.Add(-time.Hour).Add(time.Millisecond), now.Add(-time.Hour).Add(time.Millisecond), false},
	} {
		got := webhookNeed(&kinde.Event{Timestamp: tc.at}, received, now)
		if !got.since.Equal(tc.since) || got.wait != tc.wait {
			t.Errorf("%s: need = %+v; want since %v, wait %v", tc.name, got, tc.since, tc.wait)
		}
	}
}
