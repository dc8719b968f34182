package admin_test

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"permsync/admin"
	"permsync/devkinde"
	"permsync/directory"
	"permsync/events"
	"permsync/fanout"
	"permsync/internal/testsupport"
	"permsync/kinde"
	"permsync/store"
)

// openDB opens a fresh database: SQLite in a temp folder, or a fresh
// Postgres schema (testsupport.DatabaseURL), so River's tables start empty.
func openDB(t testing.TB) *store.DB {
	t.Helper()
	db, err := store.Open(context.Background(), store.Options{DataDir: t.TempDir(), URL: testsupport.DatabaseURL(t)})
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// recorder is a Publisher that keeps every event.
type recorder struct {
	mu     sync.Mutex
	events map[string][]events.Event
}

func newRecorder() *recorder { return &recorder{events: map[string][]events.Event{}} }

func (r *recorder) Publish(topic string, e events.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events[topic] = append(r.events[topic], e)
}

// named returns the events of a topic with the given name.
func (r *recorder) named(topic, name string) []events.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []events.Event
	for _, e := range r.events[topic] {
		if e.Name == name {
			out = append(out, e)
		}
	}
	return out
}

// harnessOpts shape a harness.
type harnessOpts struct {
	extraUsers int     // analysts added to the default seed: user00@acme.test, …
	kindeRate  float64 // client-side rate; 0 → 100/s, burst 10
	kindeBurst int
	river      fanout.Options
	noStart    bool // do not start River; call h.start()
	undoWindow time.Duration
}

// harness is devkinde, a kinde client over real HTTP, a database, River and
// the admin service, wired as app.go wires them.
type harness struct {
	t     *testing.T
	dk    *devkinde.Server
	seed  *devkinde.Seed
	kc    *kinde.Client
	db    *store.DB
	pub   *recorder
	log   *slog.Logger
	svc   *admin.Service
	river *fanout.Engine
	ropts fanout.Options
	admin admin.Actor
}

func newHarness(t *testing.T, o harnessOpts) *harness {
	t.Helper()
	seed := devkinde.DefaultSeed()
	for i := range o.extraUsers {
		seed.Users = append(seed.Users, devkinde.SeedUser{
			Email: fmt.Sprintf("user%02d@acme.test", i), FirstName: "User", LastName: fmt.Sprint(i),
			Password:      devkinde.DemoPassword,
			Organizations: []devkinde.SeedMembership{{Code: devkinde.DefaultOrgCode, Roles: []string{"analyst"}}},
		})
	}
	dk, err := devkinde.New(devkinde.Config{Seed: seed, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatalf("devkinde: %v", err)
	}
	if err := dk.Start(); err != nil {
		t.Fatalf("devkinde start: %v", err)
	}
	t.Cleanup(func() { dk.Close() })

	h := &harness{t: t, dk: dk, seed: seed, db: openDB(t), pub: newRecorder(), log: testsupport.Logger(t)}
	if o.kindeRate == 0 {
		o.kindeRate, o.kindeBurst = 100, 10
	}
	h.kc = kinde.New(kinde.Config{
		IssuerURL: dk.URL(), ClientID: devkinde.M2MClientID, ClientSecret: devkinde.M2MClientSecret,
		Rate: o.kindeRate, Burst: o.kindeBurst, RetryBase: 50 * time.Millisecond, MaxRetryWait: 3 * time.Second,
	})
	h.ropts = o.river
	if h.ropts.FetchPollInterval == 0 {
		h.ropts.FetchPollInterval = 50 * time.Millisecond
	}
	if h.ropts.RetryBase == 0 {
		h.ropts.RetryBase, h.ropts.RetryMax = 100*time.Millisecond, time.Second
	}
	h.river = h.newRiver()
	h.svc, err = admin.NewService(h.db, h.kc, h.db, h.pub, h.river, admin.Options{
		Directory: directory.New(h.db, h.log), Logger: h.log, UndoWindow: o.undoWindow,
	})
	if err != nil {
		t.Fatal(err)
	}
	h.river.HandleKindeChanges(admin.FanoutRBACEdit, h.svc.EditChanges())
	h.sync()
	h.admin = admin.Actor{
		UserID: seed.UserIDByEmail("admin@acme.test"), Email: "admin@acme.test",
		Permissions: []string{"read:reports", "export:reports", "delete:reports", "admin:permissions"},
	}
	if !o.noStart {
		h.start(h.river)
	}
	return h
}

// sync brings the directory the admin pages read up to date with devkinde.
func (h *harness) sync() {
	h.t.Helper()
	if err := directory.NewSyncer(h.db, h.kc, nil, directory.SyncOptions{Logger: h.log}).RunOnce(context.Background()); err != nil {
		h.t.Fatalf("directory sync: %v", err)
	}
}

// newRiver builds another fan-out engine on the harness's database.
func (h *harness) newRiver() *fanout.Engine {
	h.t.Helper()
	c, err := fanout.New(h.db, fanout.Deps{Kinde: h.kc, Events: h.pub, Logger: h.log}, h.ropts)
	if err != nil {
		h.t.Fatalf("fan-out engine: %v", err)
	}
	return c
}

// start starts a fan-out engine and stops it when the test ends.
func (h *harness) start(c *fanout.Engine) {
	h.t.Helper()
	if err := c.Start(context.Background()); err != nil {
		h.t.Fatalf("river start: %v", err)
	}
	h.t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		_ = c.Stop(ctx, 5*time.Second)
	})
}

func (h *harness) userID(email string) string { return h.seed.UserIDByEmail(email) }

// permissionID finds a permission's id by key through the service.
func (h *harness) permissionID(key string) string {
	h.t.Helper()
	list, err := h.svc.Permissions(context.Background(), h.admin, key)
	if err != nil {
		h.t.Fatalf("permissions: %v", err)
	}
	for _, p := range list.Permissions {
		if p.Key == key {
			return p.ID
		}
	}
	h.t.Fatalf("permission %q not found", key)
	return ""
}

// waitFanout waits for a fan-out to finish and returns its last snapshot.
func (h *harness) waitFanout(id string, timeout time.Duration) *admin.FanoutProgress {
	h.t.Helper()
	var p *admin.FanoutProgress
	testsupport.Eventually(h.t, timeout, "fan-out "+id+" to finish", func() bool {
		var err error
		p, err = h.svc.Fanout(context.Background(), h.admin, id)
		if err != nil {
			h.t.Fatalf("fanout: %v", err)
		}
		return p.Finished
	})
	return p
}

// refreshCalls counts devkinde's refresh_claims requests per user id, only
// those with the given status (0 = any).
func (h *harness) refreshCalls(status int) map[string]int {
	out := map[string]int{}
	for _, r := range h.dk.Requests() {
		id, ok := strings.CutPrefix(r.Path, "/api/v1/users/")
		if !ok || r.Method != "POST" {
			continue
		}
		id, ok = strings.CutSuffix(id, "/refresh_claims")
		if !ok || (status != 0 && r.Status != status) {
			continue
		}
		out[id]++
	}
	return out
}

// epochs returns the claims epoch of each user.
func (h *harness) epochs(ids []string) map[string]int64 {
	h.t.Helper()
	out := map[string]int64{}
	for _, id := range ids {
		e, err := h.db.UserEpoch(context.Background(), id)
		if err != nil {
			h.t.Fatal(err)
		}
		out[id] = e
	}
	return out
}

// itemUsers returns the user ids of a fan-out's items.
func itemUsers(p *admin.FanoutProgress) []string {
	var ids []string
	for _, it := range p.Items {
		ids = append(ids, it.UserID)
	}
	slices.Sort(ids)
	return ids
}

// addSession stores a live permsync session for a user carrying perms.
func (h *harness) addSession(userID, email string, perms ...string) {
	h.t.Helper()
	now := time.Now()
	err := h.db.CreateSession(context.Background(), &store.Session{
		ID: "test_" + testsupport.RandomHex(16), UserID: userID, OrgCode: devkinde.DefaultOrgCode, Email: email,
		Tokens: []byte("opaque"), Permissions: perms, CreatedAt: now, LastSeenAt: now,
		AccessIssuedAt: now, AccessExpiresAt: now.Add(time.Hour), ExpiresAt: now.Add(24 * time.Hour),
	})
	if err != nil {
		h.t.Fatalf("create session: %v", err)
	}
}
