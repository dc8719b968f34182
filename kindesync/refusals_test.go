package kindesync

import (
	"testing"
	"time"
)

// TestRefusalSampling: a flood of refusals gets a burst of rows, then one a
// second; every refusal is accounted for, in a later row or in the drain.
func TestRefusalSampling(t *testing.T) {
	t.Parallel()
	r := newRefusalSampler(1, 20)
	start := time.Unix(1_700_000_000, 0)
	rows, accounted := 0, 0
	// 4,000 forged deliveries in two seconds, of two kinds.
	for i := range 4000 {
		now := start.Add(time.Duration(i) * 500 * time.Microsecond)
		reason := "bad signature"
		if i%2 == 1 {
			reason = "malformed"
		}
		if write, n := r.take(401, reason, now); write {
			rows++
			accounted += n
		}
	}
	if rows < 20 || rows > 23 {
		t.Fatalf("%d rows for 4,000 refusals in 2 s; want the burst of 20 and about one a second", rows)
	}
	for _, n := range r.drain() {
		accounted += n
	}
	if accounted != 4000 {
		t.Fatalf("rows and drain account for %d refusals; want 4000", accounted)
	}
	if len(r.drain()) != 0 {
		t.Fatal("drain did not start the counts over")
	}
}
