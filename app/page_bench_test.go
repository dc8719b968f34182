package app_test

import (
	"bytes"
	"net/http"
	"testing"

	"permsync/app/apptest"
)

// BenchmarkPageRequest measures a signed-in page request end to end over
// loopback HTTP: the client sends alice's session cookie, the app loads the
// session row and decrypts it, the guard reads the cached permission state
// (PermCache; nothing changes during the run, so no refresh happens) and the
// page is rendered with templ and sent back. GET /healthz, which needs no
// session, is the floor: routing, middleware and one tiny response.
//
// "serial" is one request at a time (latency per request); "parallel" is
// b.RunParallel with GOMAXPROCS client goroutines (throughput). Client and
// server share the process, so ns/op, B/op and allocs/op include both
// sides of the loopback connection. req/s is b.N over the measured time.
func BenchmarkPageRequest(b *testing.B) {
	env := startBenchEnv(b, apptest.Options{})
	alice := env.Login(b, "alice@acme.test")
	signedIn := newBenchClient(b, env, alice)
	anon := newBenchClient(b, env, nil)

	pages := []struct {
		name, path string
		c          *benchClient
		marker     string // proves the page really rendered for alice
	}{
		{"dashboard", "/dashboard", signedIn, `data-testid="permission"`},
		{"reports", "/reports", signedIn, `data-testid="reports"`},
		{"healthz", "/healthz", anon, "ok"},
	}
	for _, p := range pages {
		status, body, err := p.c.do(http.MethodGet, p.path, nil, nil, true)
		if err != nil || status != http.StatusOK || !bytes.Contains(body, []byte(p.marker)) {
			b.Fatalf("GET %s = %d, %v; want 200 with %s:\n%.1000s", p.path, status, err, p.marker, body)
		}
		size := float64(len(body))
		env.ResetGrants()

		b.Run(p.name+"/serial", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if status, err := p.c.get(p.path); err != nil || status != http.StatusOK {
					b.Fatalf("GET %s = %d, %v", p.path, status, err)
				}
			}
			b.ReportMetric(perSecond(b.N, b.Elapsed()), "req/s")
			b.ReportMetric(size, "resp-bytes")
		})
		b.Run(p.name+"/parallel", func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if status, err := p.c.get(p.path); err != nil || status != http.StatusOK {
						b.Errorf("GET %s = %d, %v", p.path, status, err)
						return
					}
				}
			})
			b.ReportMetric(perSecond(b.N, b.Elapsed()), "req/s")
			b.ReportMetric(size, "resp-bytes")
		})

		// The guard must have served every request from the cached state:
		// a refresh grant would mean the runs measured something else.
		if n := env.Grants("refresh_token"); n != 0 {
			b.Errorf("GET %s: %d refresh grants during the run; want 0", p.path, n)
		}
	}
}
