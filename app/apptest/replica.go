package apptest

import (
	"net/http/cookiejar"
	"os"
	"testing"

	"permsync/app"
	"permsync/store"
)

// Replica is another permsync process serving the same deployment as an
// Env's app: the same devkinde, the same Postgres database and
// schema, the same PERMSYNC_SECRET keys (so a cookie issued by one replica
// is accepted by every other), its own listener, broker, permission cache,
// events bridge and River client.
//
// Each replica's site URL is its own address (http://127.0.0.1:<port>),
// where production replicas share one public URL. This is what lets them
// share a browser here: cookies are per host, not per port, so one cookie
// jar is signed in on every replica, as behind a load balancer; each
// replica's canonical-host redirect sees requests to its own host:port and
// leaves them alone (a shared loopback site URL would send every request
// for B back to A); and a plain-http loopback site URL gives cookies without
// the Secure flag on all of them. A user signing in on a replica is called
// back on that replica.
type Replica struct {
	// App is the running replica.
	App *app.App
	// URL is the replica's base URL (no trailing slash).
	URL string
	// DB is the replica's own connection pool to the shared database.
	DB *store.DB
	// Config is the replica's configuration.
	Config app.Config

	env *Env
}

// RequirePostgres skips the test unless PERMSYNC_TEST_DATABASE_URL names a
// Postgres database: replicas share state through Postgres only (SQLite
// serves a single instance).
func RequirePostgres(t testing.TB) {
	t.Helper()
	if os.Getenv("PERMSYNC_TEST_DATABASE_URL") == "" {
		t.Skip("needs Postgres: replicas share sessions, jobs and events only through Postgres; " +
			"set PERMSYNC_TEST_DATABASE_URL (make test does, in its Postgres pass)")
	}
}

// StartReplica starts another app replica beside e's app, configured like it
// (same Options, devkinde, database and secret) except for its address and
// site URL. Its URL is allowed at devkinde, so users can sign in on it. It
// stops in t.Cleanup. The Env must run on Postgres (see RequirePostgres).
func (e *Env) StartReplica(t testing.TB) *Replica {
	t.Helper()
	if e.Config.DatabaseURL == "" || !e.DB.Shared() {
		t.Fatal("apptest: StartReplica needs Postgres (call RequirePostgres first)")
	}
	ln := listen(t)
	r := &Replica{URL: "http://" + ln.Addr().String(), env: e}
	vars := make(map[string]string, len(e.vars))
	for k, v := range e.vars {
		vars[k] = v
	}
	vars["PERMSYNC_ADDR"] = ln.Addr().String()
	vars["KINDE_SITE_URL"] = r.URL
	vars["KINDE_POST_LOGOUT_REDIRECT_URL"] = r.URL + "/"
	vars["PERMSYNC_DATA_DIR"] = t.TempDir()
	e.allowSite(r.URL)
	r.App, r.Config = e.startApp(t, vars, ln)
	r.DB = r.App.DB()
	return r
}

// NewClient returns a signed-out client of this replica.
func (r *Replica) NewClient(t testing.TB) *Client {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return r.env.newClient(jar, r.URL)
}

// Login returns a client signed in as email through this replica.
func (r *Replica) Login(t testing.TB, email string) *Client {
	t.Helper()
	return login(t, r.NewClient(t), email)
}
