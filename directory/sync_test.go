package directory_test

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"net/http"
	"net/url"
	"os"
	"reflect"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"permsync/devkinde"
	"permsync/directory"
	"permsync/kinde"
	"permsync/store"
)

// openDB opens a fresh database: SQLite in a temp folder, or a fresh schema
// in the Postgres database PERMSYNC_TEST_DATABASE_URL names.
func openDB(t testing.TB) *store.DB {
	t.Helper()
	ctx := context.Background()
	opts := store.Options{DataDir: t.TempDir()}
	if u := os.Getenv("PERMSYNC_TEST_DATABASE_URL"); u != "" {
		b := make([]byte, 6)
		_, _ = rand.Read(b)
		schema := "directory_test_" + hex.EncodeToString(b)
		pg, err := sql.Open("pgx", u)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := pg.ExecContext(ctx, "CREATE SCHEMA "+schema); err != nil {
			pg.Close()
			t.Fatalf("create schema: %v", err)
		}
		t.Cleanup(func() {
			_, _ = pg.ExecContext(context.Background(), "DROP SCHEMA "+schema+" CASCADE")
			pg.Close()
		})
		pu, err := url.Parse(u)
		if err != nil {
			t.Fatal(err)
		}
		q := pu.Query()
		q.Set("search_path", schema)
		pu.RawQuery = q.Encode()
		opts.URL = pu.String()
	}
	db, err := store.Open(ctx, opts)
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// startDevkinde runs devkinde from seed over real loopback HTTP.
func startDevkinde(t testing.TB, seed *devkinde.Seed) *devkinde.Server {
	t.Helper()
	s, err := devkinde.New(devkinde.Config{Seed: seed})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// client returns a Management API client for dk; hc may be nil.
func client(dk *devkinde.Server, hc *http.Client) *kinde.Client {
	return kinde.New(kinde.Config{IssuerURL: dk.URL(), ClientID: devkinde.M2MClientID,
		ClientSecret: devkinde.M2MClientSecret, Rate: 2000, Burst: 100, MaxRetries: -1, HTTPClient: hc})
}

// expectedGrants computes, from a seed, every (user, org, key) held and how.
func expectedGrants(sd *devkinde.Seed) map[store.DirGrant][]string {
	rolePerms := map[string][]string{}
	for _, r := range sd.Roles {
		rolePerms[r.Key] = r.Permissions
	}
	out := map[store.DirGrant][]string{}
	for _, u := range sd.Users {
		for _, m := range u.Organizations {
			for _, rk := range m.Roles {
				for _, k := range rolePerms[rk] {
					g := store.DirGrant{UserID: u.ID, OrgCode: m.Code, Key: k}
					out[g] = append(out[g], "role:"+rk)
				}
			}
			for _, k := range m.Permissions {
				g := store.DirGrant{UserID: u.ID, OrgCode: m.Code, Key: k}
				if len(out[g]) == 0 { // a direct grant shadowed by a role reads as the role
					out[g] = append(out[g], "direct")
				}
			}
		}
	}
	for g := range out {
		slices.Sort(out[g])
		out[g] = slices.Compact(out[g])
	}
	return out
}

// checkHolders compares the directory's holders of key with the seed's.
func checkHolders(t *testing.T, dir *directory.Directory, sd *devkinde.Seed, key string) int {
	t.Helper()
	ctx := context.Background()
	want := map[string][]string{} // user|org → paths
	wantIDs := map[string]bool{}
	for g, paths := range expectedGrants(sd) {
		if g.Key == key {
			want[g.UserID+"|"+g.OrgCode] = paths
			wantIDs[g.UserID] = true
		}
	}
	holders, err := dir.AllHolders(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string][]string{}
	for _, h := range holders {
		var paths []string
		for _, p := range h.Via {
			paths = append(paths, p.String())
		}
		slices.Sort(paths)
		got[h.UserID+"|"+h.OrgCode] = paths
	}
	if len(got) != len(want) {
		t.Errorf("%s: %d holders (user, org), want %d", key, len(got), len(want))
	}
	for k, w := range want {
		if !slices.Equal(got[k], w) {
			t.Errorf("%s: holder %s holds it via %v, want %v", key, k, got[k], w)
		}
	}
	ids, err := dir.HolderIDs(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	if len(ids) != len(wantIDs) {
		t.Errorf("%s: HolderIDs gave %d users, want %d", key, len(ids), len(wantIDs))
	}
	for _, id := range ids {
		if !wantIDs[id] {
			t.Errorf("%s: HolderIDs has %s, who does not hold it", key, id)
		}
	}
	return len(wantIDs)
}

func TestSyncDemoTenant(t *testing.T) {
	ctx := context.Background()
	sd := devkinde.DefaultSeed()
	dk := startDevkinde(t, sd)
	db := openDB(t)
	dir := directory.New(db, nil)

	st, err := dir.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Synced() || st.Summary(time.Now()) != "never synced" {
		t.Fatalf("fresh directory: synced %v, summary %q", st.Synced(), st.Summary(time.Now()))
	}
	if err := directory.NewSyncer(db, client(dk, nil), nil, directory.SyncOptions{}).RunOnce(ctx); err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"read:reports", "export:reports", "delete:reports", "admin:permissions"} {
		checkHolders(t, dir, sd, key)
	}

	carol := sd.UserIDByEmail("carol@acme.test")
	grants, err := dir.UserGrants(ctx, carol, devkinde.DefaultOrgCode)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, g := range grants {
		var via []string
		for _, p := range g.Via {
			via = append(via, p.String())
		}
		got = append(got, g.Key+"="+strings.Join(via, "+"))
	}
	if want := []string{"export:reports=direct", "read:reports=role:viewer"}; !slices.Equal(got, want) {
		t.Errorf("carol's grants in %s: %v, want %v", devkinde.DefaultOrgCode, got, want)
	}

	st, err = dir.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !st.Synced() || st.Running() || st.Counts.Users != 4 || st.Counts.Organizations != 1 || st.LastCalls == 0 {
		t.Errorf("after a sync: %+v", st)
	}
	if s := st.Summary(st.CompletedAt.Add(14 * time.Second)); s != "synced 14 s ago" {
		t.Errorf("summary %q, want synced 14 s ago", s)
	}
}

// TestSyncGeneratedTenant syncs a 100-organization, 500-user tenant and
// checks every holder of every permission against the seed, and the paging
// of a permission held by hundreds.
func TestSyncGeneratedTenant(t *testing.T) {
	ctx := context.Background()
	sd := devkinde.GenerateSeed(devkinde.GenerateOptions{Seed: 3, Organizations: 100, Users: 500})
	dk := startDevkinde(t, sd)
	db := openDB(t)
	dir := directory.New(db, nil)
	if err := directory.NewSyncer(db, client(dk, nil), nil, directory.SyncOptions{}).RunOnce(ctx); err != nil {
		t.Fatal(err)
	}
	for _, p := range sd.Permissions {
		checkHolders(t, dir, sd, p.Key)
	}
	if err := db.DirVerifyDerived(ctx); err != nil {
		t.Fatal(err)
	}
	checkPages(t, dir, "export:reports", "")
	checkPages(t, dir, "export:reports", "customer004")
	exp, err := dir.PermissionByKey(ctx, "export:reports")
	if err != nil {
		t.Fatal(err)
	}
	page, err := dir.HolderUsers(ctx, exp.ID, directory.HolderQuery{Limit: 50})
	if err != nil {
		t.Fatal(err)
	}
	if page.Users < 300 || len(page.Holders) != 50 || page.Matched != page.Users {
		t.Errorf("export:reports page: %d users, %d on the page, %d matched", page.Users, len(page.Holders), page.Matched)
	}
	page, err = dir.HolderUsers(ctx, exp.ID, directory.HolderQuery{Search: "USER0042@", Limit: 50})
	if err != nil {
		t.Fatal(err)
	}
	if page.Matched != 1 || len(page.Holders) != 1 || page.Holders[0].Email != "user0042@customer0042.test" {
		t.Errorf("search user0042@: %d matched, %+v", page.Matched, page.Holders)
	}
	users, err := dir.Users(ctx, "customer0007", 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	if users.Total != 504 || users.Matched == 0 || len(users.Users[0].Memberships) == 0 {
		t.Errorf("users page: total %d, matched %d, %+v", users.Total, users.Matched, users.Users)
	}
}

// failingTransport fails every request once `after` requests have gone
// through, until healed: Kinde becoming unreachable mid-sync.
type failingTransport struct {
	after atomic.Int64
	seen  atomic.Int64
}

func (f *failingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if f.seen.Add(1) > f.after.Load() {
		return nil, errors.New("connection refused (test)")
	}
	return http.DefaultTransport.RoundTrip(r)
}

// TestSyncResumesAfterFailure cuts Kinde off half-way through a sync: the
// directory keeps what it had, the state says where it stopped, and the
// next run resumes from there instead of starting over.
func TestSyncResumesAfterFailure(t *testing.T) {
	ctx := context.Background()
	sd := devkinde.GenerateSeed(devkinde.GenerateOptions{Seed: 5, Organizations: 30, Users: 90})
	dk := startDevkinde(t, sd)
	db := openDB(t)
	dir := directory.New(db, nil)
	ft := &failingTransport{}
	ft.after.Store(40)
	err := directory.NewSyncer(db, client(dk, &http.Client{Transport: ft}), nil, directory.SyncOptions{}).RunOnce(ctx)
	if err == nil {
		t.Fatal("a sync cut off half-way succeeded")
	}
	st, err := dir.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !st.Running() || st.Synced() || st.ResumeAfter == "" || st.OrgsDone == 0 || st.OrgsDone >= st.OrgsTotal ||
		st.LastError == "" {
		t.Fatalf("after the failure: %+v", st)
	}
	if !strings.Contains(st.Summary(time.Now()), "last attempt failed") {
		t.Errorf("summary %q does not say the last attempt failed", st.Summary(time.Now()))
	}
	done, resumeAfter := st.OrgsDone, st.ResumeAfter

	dk.ResetRequests()
	if err := directory.NewSyncer(db, client(dk, nil), nil, directory.SyncOptions{}).RunOnce(ctx); err != nil {
		t.Fatal(err)
	}
	for _, r := range dk.Requests() {
		if code, ok := strings.CutPrefix(r.Path, "/api/v1/organizations/"); ok {
			code, _, _ = strings.Cut(code, "/")
			if code <= resumeAfter {
				t.Errorf("the resumed sync read %s again (it had finished up to %s)", r.Path, resumeAfter)
			}
		}
	}
	st, err = dir.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !st.Synced() || st.Running() || st.OrgsDone != st.OrgsTotal || st.LastError != "" || done == 0 {
		t.Fatalf("after resuming: %+v", st)
	}
	for _, p := range sd.Permissions {
		checkHolders(t, dir, sd, p.Key)
	}
}

// TestSyncKindeUnreachable: a failed run changes nothing already synced.
func TestSyncKindeUnreachable(t *testing.T) {
	ctx := context.Background()
	sd := devkinde.DefaultSeed()
	dk := startDevkinde(t, sd)
	db := openDB(t)
	dir := directory.New(db, nil)
	if err := directory.NewSyncer(db, client(dk, nil), nil, directory.SyncOptions{}).RunOnce(ctx); err != nil {
		t.Fatal(err)
	}
	before, err := dir.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ft := &failingTransport{} // fails at once
	err = directory.NewSyncer(db, client(dk, &http.Client{Transport: ft}), nil, directory.SyncOptions{}).RunOnce(ctx)
	if err == nil {
		t.Fatal("a sync with Kinde unreachable succeeded")
	}
	after, err := dir.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !after.CompletedAt.Equal(before.CompletedAt) || after.Counts != before.Counts || after.LastError == "" {
		t.Errorf("before %+v\nafter %+v", before, after)
	}
	checkHolders(t, dir, sd, "export:reports")
}

// checkPages walks the pages of a permission's holders (one per user) and
// checks them, and their counts, against every holder read in one go and
// folded and filtered here.
func checkPages(t *testing.T, dir *directory.Directory, key, search string) {
	t.Helper()
	ctx := context.Background()
	p, err := dir.PermissionByKey(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	all, err := dir.AllHolders(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	// AllHolders is by email, user and organization: fold it per user, in
	// that order, keeping the users with a holder the search matches.
	var want []directory.HolderUser
	matched := map[string]bool{}
	kinds := map[string]int{} // bit 1: through a role, bit 2: directly
	for _, h := range all {
		if n := len(want); n == 0 || want[n-1].UserID != h.UserID {
			want = append(want, directory.HolderUser{UserID: h.UserID, Email: h.Email, Name: h.Name})
		}
		u := &want[len(want)-1]
		u.Orgs = append(u.Orgs, h.OrgCode)
		for _, v := range h.Via {
			if !slices.Contains(u.Via, v) {
				u.Via = append(u.Via, v)
			}
			if v.Kind == directory.ViaRole {
				kinds[h.UserID] |= 1
			} else {
				kinds[h.UserID] |= 2
			}
		}
		if search == "" || strings.Contains(strings.ToLower(h.Email+" "+h.Name+" "+h.UserID+" "+h.OrgCode), search) {
			matched[h.UserID] = true
		}
	}
	want = slices.DeleteFunc(want, func(u directory.HolderUser) bool { return !matched[u.UserID] })
	for _, u := range want {
		// Roles first, by key, then direct.
		slices.SortFunc(u.Via, func(a, b directory.Path) int {
			if a.Kind != b.Kind {
				if a.Kind == directory.ViaRole {
					return -1
				}
				return 1
			}
			return strings.Compare(a.RoleKey, b.RoleKey)
		})
	}
	counts := directory.HolderCounts{Users: len(kinds), Grants: len(all)}
	for _, k := range kinds {
		if k&1 != 0 {
			counts.ViaRoles++
		}
		if k&2 != 0 {
			counts.Direct++
		}
		if k == 2 {
			counts.DirectOnly++
		}
	}
	var got []directory.HolderUser
	for off := 0; ; off += 41 {
		page, err := dir.HolderUsers(ctx, p.ID, directory.HolderQuery{Search: search, Offset: off, Limit: 41})
		if err != nil {
			t.Fatal(err)
		}
		if page.HolderCounts != counts || page.Matched != len(want) {
			t.Fatalf("%s %q: counts %+v, matched %d; want %+v, %d", key, search, page.HolderCounts,
				page.Matched, counts, len(want))
		}
		if len(page.Holders) == 0 {
			break
		}
		got = append(got, page.Holders...)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%s %q: the pages hold %d users, all at once %d (or in another order, or other organizations or paths)",
			key, search, len(got), len(want))
	}
}
