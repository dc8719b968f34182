package kinde_test

// Integration tests of the Management API client and the webhook verifier
// against devkinde, over real loopback HTTP.

import (
	"encoding/base64"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"permsync/devkinde"
	"permsync/kinde"
)

// startDevkinde runs a devkinde with cfg (default seed when cfg.Seed is nil).
func startDevkinde(t *testing.T, cfg devkinde.Config) *devkinde.Server {
	t.Helper()
	s, err := devkinde.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// newClient returns a client for s with the default M2M credentials; fast
// retries unless cfg says otherwise.
func newClient(s *devkinde.Server, cfg kinde.Config) *kinde.Client {
	cfg.IssuerURL = s.URL()
	if cfg.ClientID == "" {
		cfg.ClientID, cfg.ClientSecret = devkinde.M2MClientID, devkinde.M2MClientSecret
	}
	if cfg.Rate == 0 {
		cfg.Rate = 500
		cfg.Burst = 50
	}
	if cfg.RetryBase == 0 {
		cfg.RetryBase = 10 * time.Millisecond
	}
	return kinde.New(cfg)
}

// apiRequests returns devkinde's Management API request log.
func apiRequests(s *devkinde.Server) []devkinde.RequestRecord {
	var out []devkinde.RequestRecord
	for _, r := range s.Requests() {
		if strings.HasPrefix(r.Path, "/api/v1/") {
			out = append(out, r)
		}
	}
	return out
}

func countRequests(recs []devkinde.RequestRecord, method, path string, status int) int {
	n := 0
	for _, r := range recs {
		if r.Method == method && r.Path == path && (status == 0 || r.Status == status) {
			n++
		}
	}
	return n
}

func keysOf(ps []kinde.Permission) []string {
	var keys []string
	for _, p := range ps {
		keys = append(keys, p.Key)
	}
	slices.Sort(keys)
	return keys
}

func TestDevkindeListsAndPagination(t *testing.T) {
	s := startDevkinde(t, devkinde.Config{})
	c := newClient(s, kinde.Config{PageSize: 2})
	ctx := t.Context()
	seed := devkinde.DefaultSeed()
	alice, bob, carol := seed.UserIDByEmail("alice@acme.test"), seed.UserIDByEmail("bob@acme.test"), seed.UserIDByEmail("carol@acme.test")

	perms, err := c.AllPermissions(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := keysOf(perms), []string{"admin:permissions", "delete:reports", "export:reports", "read:reports"}; !slices.Equal(got, want) {
		t.Fatalf("permissions = %v, want %v", got, want)
	}
	if n := countRequests(apiRequests(s), "GET", "/api/v1/permissions", 200); n < 2 {
		t.Fatalf("4 permissions at page_size 2 took %d requests, want at least 2", n)
	}

	roles, err := c.AllRoles(ctx)
	if err != nil {
		t.Fatal(err)
	}
	byKey := map[string]kinde.Role{}
	for _, r := range roles {
		byKey[r.Key] = r
	}
	analyst, ok := byKey["analyst"]
	if !ok || len(roles) != 3 {
		t.Fatalf("roles = %+v", roles)
	}
	role, err := c.Role(ctx, analyst.ID)
	if err != nil || role.Key != "analyst" {
		t.Fatalf("Role = %+v, %v", role, err)
	}
	rp, err := c.AllRolePermissions(ctx, analyst.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got := keysOf(rp); !slices.Equal(got, []string{"export:reports", "read:reports"}) {
		t.Fatalf("analyst permissions = %v", got)
	}
	ru, err := c.AllRoleUsers(ctx, analyst.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(ru) != 1 || ru[0].ID != alice || !slices.Contains(ru[0].OrgCodes, devkinde.DefaultOrgCode) {
		t.Fatalf("analyst holders = %+v, want alice in %s", ru, devkinde.DefaultOrgCode)
	}

	users, err := c.AllUsers(ctx, kinde.UserFilter{})
	if err != nil || len(users) != 4 {
		t.Fatalf("users = %d, %v; want 4", len(users), err)
	}
	found, err := c.AllUsers(ctx, kinde.UserFilter{Emails: []string{"alice@acme.test"}})
	if err != nil || len(found) != 1 || found[0].ID != alice {
		t.Fatalf("users by email = %+v, %v", found, err)
	}
	found, err = c.AllUsers(ctx, kinde.UserFilter{UserIDs: []string{strings.Replace(bob, "kp_", "kp:", 1), carol}})
	if err != nil || len(found) != 2 {
		t.Fatalf("users by id = %+v, %v", found, err)
	}
	u, err := c.User(ctx, alice)
	if err != nil || u.Email != "alice@acme.test" || u.ID != alice {
		t.Fatalf("User = %+v, %v", u, err)
	}

	orgs, err := c.AllOrganizations(ctx)
	if err != nil || len(orgs) != 1 || orgs[0].Code != devkinde.DefaultOrgCode {
		t.Fatalf("organizations = %+v, %v", orgs, err)
	}
	members, err := c.AllOrganizationUsers(ctx, devkinde.DefaultOrgCode, kinde.OrgUserFilter{})
	if err != nil || len(members) != 4 {
		t.Fatalf("members = %d, %v; want 4", len(members), err)
	}
	viewers, err := c.AllOrganizationUsers(ctx, devkinde.DefaultOrgCode, kinde.OrgUserFilter{Roles: []string{"viewer"}})
	if err != nil {
		t.Fatal(err)
	}
	var viewerIDs []string
	for _, v := range viewers {
		viewerIDs = append(viewerIDs, v.ID)
	}
	slices.Sort(viewerIDs)
	want := []string{bob, carol}
	slices.Sort(want)
	if !slices.Equal(viewerIDs, want) {
		t.Fatalf("viewers = %v, want %v", viewerIDs, want)
	}
	exporters, err := c.AllOrganizationUsers(ctx, devkinde.DefaultOrgCode, kinde.OrgUserFilter{Permissions: []string{"export:reports"}})
	if err != nil || !slices.ContainsFunc(exporters, func(u kinde.OrganizationUser) bool { return u.ID == carol }) {
		t.Fatalf("direct export:reports holders = %+v, %v; want carol", exporters, err)
	}
	ur, err := c.OrganizationUserRoles(ctx, devkinde.DefaultOrgCode, alice)
	if err != nil || len(ur) != 1 || ur[0].Key != "analyst" {
		t.Fatalf("alice roles = %+v, %v", ur, err)
	}
	up, err := c.OrganizationUserPermissions(ctx, devkinde.DefaultOrgCode, carol)
	if err != nil {
		t.Fatal(err)
	}
	var upKeys []string
	for _, p := range up {
		upKeys = append(upKeys, p.Key)
	}
	if !slices.Contains(upKeys, "export:reports") || !slices.Contains(upKeys, "read:reports") {
		t.Fatalf("carol permissions = %v", upKeys)
	}

	// Stopping early stops fetching pages.
	s.ResetRequests()
	for _, err := range c.Permissions(ctx) {
		if err != nil {
			t.Fatal(err)
		}
		break
	}
	if n := countRequests(apiRequests(s), "GET", "/api/v1/permissions", 0); n != 1 {
		t.Fatalf("early break made %d requests, want 1", n)
	}

	if _, err := c.Role(ctx, "no-such-role"); !kinde.IsUnknownID(err) {
		t.Fatalf("unknown role: err = %v, want 400 or 404", err)
	}
}

func TestDevkindePermissionLifecycle(t *testing.T) {
	s := startDevkinde(t, devkinde.Config{})
	c := newClient(s, kinde.Config{})
	ctx := t.Context()

	if _, err := c.CreatePermission(ctx, kinde.PermissionInput{Key: "tmp:thing", Name: "Temp", Description: "d"}); err != nil {
		t.Fatal(err)
	}
	_, err := c.CreatePermission(ctx, kinde.PermissionInput{Key: "tmp:thing", Name: "Temp"})
	if !kinde.IsBadRequest(err) {
		t.Fatalf("duplicate create: err = %v, want 400", err)
	}
	perms, err := c.AllPermissions(ctx)
	if err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(perms, func(p kinde.Permission) bool { return p.Key == "tmp:thing" })
	if i < 0 {
		t.Fatalf("created permission not listed: %v", keysOf(perms))
	}
	id := perms[i].ID
	if err := c.UpdatePermission(ctx, id, kinde.PermissionInput{Name: "Renamed"}); err != nil {
		t.Fatal(err)
	}

	if err := c.DeletePermission(ctx, id); err != nil {
		t.Fatal(err)
	}
	if n := countRequests(apiRequests(s), "DELETE", "/api/v1/permissions/"+id, 200); n != 1 {
		t.Fatalf("DELETE recorded %d times, want 1", n)
	}
	perms, err = c.AllPermissions(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if slices.Contains(keysOf(perms), "tmp:thing") {
		t.Fatal("permission still listed after delete")
	}
	if err := c.DeletePermission(ctx, id); !kinde.IsUnknownID(err) {
		t.Fatalf("second delete: err = %v, want 404", err)
	}
}

func TestDevkindeRefreshClaimsAndSessions(t *testing.T) {
	s := startDevkinde(t, devkinde.Config{})
	c := newClient(s, kinde.Config{})
	ctx := t.Context()
	alice := devkinde.DefaultSeed().UserIDByEmail("alice@acme.test")

	// The token form "kp:<hex>" is normalised before the call.
	if err := c.RefreshUserClaims(ctx, strings.Replace(alice, "kp_", "kp:", 1)); err != nil {
		t.Fatal(err)
	}
	if n := countRequests(apiRequests(s), "POST", "/api/v1/users/"+alice+"/refresh_claims", 200); n != 1 {
		t.Fatalf("refresh_claims recorded %d times, want 1", n)
	}
	if _, err := c.UserSessions(ctx, alice); err != nil {
		t.Fatal(err)
	}
	if err := c.DeleteUserSessions(ctx, alice); err != nil {
		t.Fatal(err)
	}
}

// maxPerWindow returns the largest number of records within any window
// [t, t+w) that starts at a record.
func maxPerWindow(recs []devkinde.RequestRecord, w time.Duration) int {
	times := make([]time.Time, len(recs))
	for i, r := range recs {
		times[i] = r.Time
	}
	slices.SortFunc(times, func(a, b time.Time) int { return a.Compare(b) })
	best := 0
	for i := range times {
		j := i
		for j < len(times) && times[j].Sub(times[i]) < w {
			j++
		}
		best = max(best, j-i)
	}
	return best
}

// callConcurrently makes n calls at once, call(0) to call(n-1), and fails the
// test if any of them fails.
func callConcurrently(t *testing.T, n int, call func(i int) error) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() { errs <- call(i) })
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("call failed: %v", err)
		}
	}
}

func TestDevkindeClientRateNeverExceeded(t *testing.T) {
	s := startDevkinde(t, devkinde.Config{})
	s.SetRateLimit(5)
	const rps, burst = 5, 1
	c := newClient(s, kinde.Config{Rate: rps, Burst: burst})
	ctx := t.Context()
	alice := devkinde.DefaultSeed().UserIDByEmail("alice@acme.test")

	// Warm the token so the first second is not spent on it.
	if err := c.RefreshUserClaims(ctx, alice); err != nil {
		t.Fatal(err)
	}
	s.ResetRequests()
	callConcurrently(t, 15, func(int) error { return c.RefreshUserClaims(ctx, alice) })
	recs := apiRequests(s)
	if got := countRequests(recs, "POST", "/api/v1/users/"+alice+"/refresh_claims", 200); got != 15 {
		t.Fatalf("%d successful refresh_claims recorded, want 15", got)
	}
	// Every request, retries included, goes through the limiter: at most
	// burst + rate in any one-second window.
	if n := maxPerWindow(recs, time.Second); n > rps+burst {
		t.Fatalf("%d requests within one second, limit %d + burst %d", n, rps, burst)
	}
}

func TestDevkindeRateLimitedRetriesSucceed(t *testing.T) {
	s := startDevkinde(t, devkinde.Config{})
	s.SetRateLimit(5)
	// The client is configured faster than the server allows, so it meets
	// 429s and must wait for RateLimit-Reset.
	c := newClient(s, kinde.Config{Rate: 50, Burst: 10, MaxRetries: 10})
	ctx := t.Context()
	seed := devkinde.DefaultSeed()
	ids := []string{
		seed.UserIDByEmail("admin@acme.test"), seed.UserIDByEmail("alice@acme.test"),
		seed.UserIDByEmail("bob@acme.test"), seed.UserIDByEmail("carol@acme.test"),
	}
	callConcurrently(t, 16, func(i int) error { return c.RefreshUserClaims(ctx, ids[i%len(ids)]) })
	recs := apiRequests(s)
	ok, throttled := 0, 0
	for _, r := range recs {
		switch r.Status {
		case http.StatusOK:
			ok++
		case http.StatusTooManyRequests:
			throttled++
		}
	}
	if ok != 16 {
		t.Fatalf("%d successful requests, want 16", ok)
	}
	if throttled == 0 {
		t.Fatal("no 429 seen; the test did not exercise rate limiting")
	}
	t.Logf("16 calls: %d throttled attempts retried", throttled)
}

func TestDevkindeServerErrorsRetried(t *testing.T) {
	s := startDevkinde(t, devkinde.Config{})
	c := newClient(s, kinde.Config{MaxRetries: 10})
	ctx := t.Context()
	alice := devkinde.DefaultSeed().UserIDByEmail("alice@acme.test")
	if _, err := c.AllPermissions(ctx); err != nil { // token and warm-up, no faults yet
		t.Fatal(err)
	}
	s.SetFaultRate(0.3)
	for range 20 {
		if err := c.RefreshUserClaims(ctx, alice); err != nil {
			t.Fatalf("refresh_claims: %v", err)
		}
		if ps, err := c.AllPermissions(ctx); err != nil || len(ps) != 4 {
			t.Fatalf("permissions: %d, %v", len(ps), err)
		}
	}
	recs := apiRequests(s)
	if n := countRequests(recs, "POST", "/api/v1/users/"+alice+"/refresh_claims", 500) +
		countRequests(recs, "GET", "/api/v1/permissions", 500); n == 0 {
		t.Fatal("no 500 seen; the test did not exercise retries")
	}
	if n := countRequests(recs, "POST", "/api/v1/users/"+alice+"/refresh_claims", 200); n != 20 {
		t.Fatalf("%d successful refresh_claims, want 20", n)
	}

	// Creates are not retried after a 500.
	s.SetFaultRate(1)
	s.ResetRequests()
	_, err := c.CreatePermission(ctx, kinde.PermissionInput{Key: "tmp:faulty", Name: "F"})
	if !kinde.IsServerError(err) {
		t.Fatalf("create under faults: err = %v, want 500", err)
	}
	if n := countRequests(apiRequests(s), "POST", "/api/v1/permissions", 0); n != 1 {
		t.Fatalf("create attempted %d times, want 1", n)
	}
}

func TestDevkindeScopeErrorsAreTyped(t *testing.T) {
	seed := devkinde.DefaultSeed()
	seed.Clients = append(seed.Clients, devkinde.SeedClient{
		ID: "readonly_m2m", Secret: "readonly_m2m_secret", Name: "read only", Type: devkinde.ClientTypeM2M,
		Scopes: []string{"read:permissions"},
	})
	s := startDevkinde(t, devkinde.Config{Seed: seed})
	c := newClient(s, kinde.Config{ClientID: "readonly_m2m", ClientSecret: "readonly_m2m_secret"})
	ctx := t.Context()

	if _, err := c.AllPermissions(ctx); err != nil {
		t.Fatal(err)
	}
	err := c.DeletePermission(ctx, "anything")
	if !kinde.IsForbidden(err) {
		t.Fatalf("err = %v, want 403", err)
	}
	apiErr, ok := errors.AsType[*kinde.APIError](err)
	if !ok || apiErr.Code == "" || !strings.Contains(apiErr.Message, "delete:permissions") {
		t.Fatalf("APIError = %+v, want a code and the missing scope", apiErr)
	}
	if err := c.RefreshUserClaims(ctx, "kp_x"); !kinde.IsForbidden(err) {
		t.Fatalf("refresh_claims: err = %v, want 403", err)
	}

	bad := newClient(s, kinde.Config{ClientID: devkinde.M2MClientID, ClientSecret: "wrong"})
	if _, err := bad.AllRoles(ctx); err == nil || strings.Contains(err.Error(), "wrong") {
		t.Fatalf("bad secret: err = %v", err)
	}
}

// delivery is one webhook POST received from devkinde.
type delivery struct {
	contentType, id string
	body            []byte
}

func TestDevkindeWebhookVerified(t *testing.T) {
	s := startDevkinde(t, devkinde.Config{WebhookRetryBase: 50 * time.Millisecond})
	c := newClient(s, kinde.Config{})
	ctx := t.Context()

	got := make(chan delivery, 16)
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if err != nil {
			http.Error(w, "read", http.StatusBadRequest)
			return
		}
		got <- delivery{r.Header.Get("Content-Type"), r.Header.Get("webhook-id"), body}
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(recv.Close)

	wh, err := c.CreateWebhook(ctx, kinde.WebhookInput{
		Endpoint: recv.URL + "/webhooks/kinde", Name: "permsync test",
		EventTypes: []string{kinde.EventPermissionCreated, kinde.EventPermissionDeleted, kinde.EventUserUpdated},
	})
	if err != nil || wh.ID == "" {
		t.Fatalf("CreateWebhook = %+v, %v", wh, err)
	}
	hooks, err := c.Webhooks(ctx)
	if err != nil || !slices.ContainsFunc(hooks, func(h kinde.Webhook) bool { return h.ID == wh.ID }) {
		t.Fatalf("Webhooks = %+v, %v", hooks, err)
	}

	// Change something, as an admin would in Kinde's dashboard.
	if _, err := c.CreatePermission(ctx, kinde.PermissionInput{Key: "tmp:hooked", Name: "Hooked"}); err != nil {
		t.Fatal(err)
	}
	perms, err := c.AllPermissions(ctx)
	if err != nil {
		t.Fatal(err)
	}
	id := perms[slices.IndexFunc(perms, func(p kinde.Permission) bool { return p.Key == "tmp:hooked" })].ID
	if err := c.DeletePermission(ctx, id); err != nil {
		t.Fatal(err)
	}

	v := kinde.NewWebhookVerifier(s.URL(), nil)
	seen := map[string]*kinde.Event{}
	var raw []byte
	deadline := time.After(15 * time.Second) // a test deadline, not a speed assertion
	for len(seen) < 2 {
		select {
		case d := <-got:
			if d.contentType != "application/jwt" || d.id == "" {
				t.Errorf("delivery headers: Content-Type %q, webhook-id %q", d.contentType, d.id)
			}
			ev, err := v.Decode(ctx, d.body)
			if err != nil {
				t.Fatalf("Decode(devkinde webhook): %v", err)
			}
			seen[ev.Type] = ev
			raw = d.body
		case <-deadline:
			t.Fatalf("webhooks not delivered; got %v", seen)
		}
	}
	created, deleted := seen[kinde.EventPermissionCreated], seen[kinde.EventPermissionDeleted]
	if created == nil || deleted == nil {
		t.Fatalf("events = %v", seen)
	}
	p, err := created.Permission()
	if err != nil || p.Key != "tmp:hooked" || p.ID != id {
		t.Fatalf("created permission = %+v, %v", p, err)
	}
	p, err = deleted.Permission()
	if err != nil || p.ID != id {
		t.Fatalf("deleted permission = %+v, %v", p, err)
	}
	if deleted.Timestamp.IsZero() || deleted.EventID == "" || deleted.Source == "" {
		t.Fatalf("deleted event = %+v", deleted)
	}

	// The event can be fetched back from the API.
	ev, err := c.Event(ctx, deleted.EventID)
	if err != nil || ev.Type != kinde.EventPermissionDeleted || ev.EventID != deleted.EventID {
		t.Fatalf("Event = %+v, %v", ev, err)
	}

	// The same delivery with its payload altered is refused.
	parts := strings.Split(string(raw), ".")
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	forged := strings.Replace(string(payload), "permission.", "role.", 1)
	parts[1] = base64.RawURLEncoding.EncodeToString([]byte(forged))
	if _, err := v.Decode(ctx, []byte(strings.Join(parts, "."))); !errors.Is(err, kinde.ErrBadSignature) {
		t.Fatalf("forged delivery: err = %v, want ErrBadSignature", err)
	}

	if err := c.DeleteWebhook(ctx, wh.ID); err != nil {
		t.Fatal(err)
	}
	hooks, err = c.Webhooks(ctx)
	if err != nil || slices.ContainsFunc(hooks, func(h kinde.Webhook) bool { return h.ID == wh.ID }) {
		t.Fatalf("webhook still listed after delete: %+v, %v", hooks, err)
	}
}
