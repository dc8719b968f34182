package fanout_test

import (
	"context"
	"flag"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"permsync/devkinde"
	"permsync/events"
	"permsync/fanout"
	"permsync/internal/testsupport"
	"permsync/kinde"
	"permsync/store"
)

// benchUsers is how many users BenchmarkFanoutEngine fans out to; the
// rate benchmarks pick their own sizes.
var benchUsers = flag.Int("fanout.users", 5000, "users per fan-out in BenchmarkFanoutEngine")

// BenchmarkFanoutEngine measures the engine alone at full speed: one fan-out
// to -fanout.users users (5,000 by default) with Kinde's limit out of the
// way (devkinde unlimited, the client's shared limit at 5,000 calls/s). The
// refresh_claims calls are real HTTP calls to devkinde in this process, the
// bookkeeping is the engine's own (SQLite in a temporary folder, or
// Postgres with PERMSYNC_TEST_DATABASE_URL). One operation is one fan-out,
// from the transaction that records it until its row reads finished.
//
// Reported: users/s over the whole fan-out (ns/op covers the same span);
// calls/s, the successful refresh_claims devkinde received per second from
// its first to its last; start-ms, the transaction that records the fan-out
// and its jobs; tail-ms, from the last call to the fan-out's row reading
// finished; cpu-µs/user, the CPU time of this process (devkinde's included)
// per user, which depends much less on how busy the machine is than the
// rates do.
func BenchmarkFanoutEngine(b *testing.B) {
	benchEngine(b, *benchUsers, 5000)
}

// BenchmarkFanoutRate runs a fan-out at a configured Kinde rate of 5, 50
// and 500 calls/s, sized to take about 20, 10 and 10 seconds, and reports
// how close the calls devkinde received come to that rate (%rate: calls/s
// from the first call to the last, over the configured rate) and the most
// calls devkinde saw in any one second (peak-1s).
func BenchmarkFanoutRate(b *testing.B) {
	for _, c := range []struct{ rate, users int }{{5, 100}, {50, 500}, {500, 5000}} {
		b.Run(fmt.Sprintf("rate=%d", c.rate), func(b *testing.B) { benchEngine(b, c.users, c.rate) })
	}
}

func benchEngine(b *testing.B, users, rate int) {
	seed := devkinde.DefaultSeed()
	ids := make([]string, users)
	for i := range users {
		ids[i] = fmt.Sprintf("kp_%032x", 0xbe4c0000+i)
		seed.Users = append(seed.Users, devkinde.SeedUser{ID: ids[i], Email: fmt.Sprintf("bench%05d@acme.test", i),
			FirstName: "Bench", LastName: fmt.Sprint(i)})
	}
	dk, err := devkinde.New(devkinde.Config{Seed: seed})
	if err != nil {
		b.Fatal(err)
	}
	if err := dk.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = dk.Close() })
	kc := kinde.New(kinde.Config{IssuerURL: dk.URL(), ClientID: devkinde.M2MClientID,
		ClientSecret: devkinde.M2MClientSecret, Rate: float64(rate)})

	ctx := context.Background()
	db, err := store.Open(ctx, store.Options{URL: testsupport.DatabaseURL(b), DataDir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = db.Close() })
	broker := events.NewBroker()
	eng, err := fanout.New(db, fanout.Deps{Kinde: kc, Events: broker}, fanout.Options{
		MaxWorkers: fanout.WorkersForRate(float64(rate)), CallsPerJob: fanout.CallsPerJobForRate(float64(rate)), MaintenanceInterval: time.Hour})
	if err != nil {
		b.Fatal(err)
	}
	if err := eng.Start(ctx); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = eng.Stop(context.Background(), 10*time.Second) })
	// One call first, so the M2M token is fetched before the clock starts.
	if err := kc.RefreshUserClaims(ctx, ids[0]); err != nil {
		b.Fatal(err)
	}

	var usersPerSec, callsPerSec, peak, startMS, tailMS, cpuPerUser float64
	iter := 0
	for b.Loop() {
		b.StopTimer()
		items := make([]store.FanoutItem, users)
		for i, id := range ids {
			items[i] = store.FanoutItem{UserID: id, Email: fmt.Sprintf("bench%05d@acme.test", i), Reasons: "direct"}
		}
		f := &store.Fanout{ID: fanout.NewID(), Kind: fanout.KindUserRefresh, Reason: "benchmark"}
		dk.ResetRequests()
		b.StartTimer()

		cpu0 := cpuTime(b)
		start := time.Now()
		if err := db.InTx(ctx, func(tx *store.Tx) error { return eng.StartTx(ctx, tx, f, items) }); err != nil {
			b.Fatal(err)
		}
		started := time.Since(start)
		deadline := start.Add(time.Duration(3*users/rate+120) * time.Second)
		var got *store.Fanout
		for {
			if got, err = db.Fanout(ctx, f.ID); err != nil {
				b.Fatal(err)
			}
			if !got.FinishedAt.IsZero() {
				break
			}
			if time.Now().After(deadline) {
				b.Fatalf("fan-out not finished after %s: %d done, %d failed of %d", time.Since(start), got.Done, got.Failed, got.Total)
			}
			time.Sleep(5 * time.Millisecond)
		}
		elapsed := time.Since(start)
		cpu := cpuTime(b) - cpu0

		b.StopTimer()
		if got.Done != users || got.Failed != 0 {
			b.Fatalf("fan-out finished with %d done, %d failed; want %d done", got.Done, got.Failed, users)
		}
		var calls []time.Time
		for _, r := range dk.Requests() {
			if r.Method == http.MethodPost && strings.HasSuffix(r.Path, "/refresh_claims") && r.Status == http.StatusOK {
				calls = append(calls, r.Time)
			}
		}
		if len(calls) < users {
			b.Fatalf("devkinde saw %d successful refresh_claims; want %d", len(calls), users)
		}
		slices.SortFunc(calls, time.Time.Compare)
		usersPerSec += float64(users) / elapsed.Seconds()
		callsPerSec += float64(len(calls)-1) / calls[len(calls)-1].Sub(calls[0]).Seconds()
		peak += float64(peakIn(calls, time.Second))
		startMS += float64(started.Milliseconds())
		tailMS += float64(start.Add(elapsed).Sub(calls[len(calls)-1]).Milliseconds())
		cpuPerUser += float64(cpu.Microseconds()) / float64(users)
		iter++
		b.StartTimer()
	}
	n := float64(iter)
	b.ReportMetric(usersPerSec/n, "users/s")
	b.ReportMetric(callsPerSec/n, "calls/s")
	b.ReportMetric(100*callsPerSec/n/float64(rate), "%rate")
	b.ReportMetric(peak/n, "peak-1s")
	b.ReportMetric(startMS/n, "start-ms")
	b.ReportMetric(tailMS/n, "tail-ms")
	b.ReportMetric(cpuPerUser/n, "cpu-µs/user")
}

// cpuTime is the CPU time (user and system) this process has used so far:
// devkinde's share included, as it runs in the same process.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// peakIn is the most of the sorted times within any window of length w.
func peakIn(times []time.Time, w time.Duration) int {
	peak, j := 0, 0
	for i := range times {
		for times[i].Sub(times[j]) >= w {
			j++
		}
		peak = max(peak, i-j+1)
	}
	return peak
}
