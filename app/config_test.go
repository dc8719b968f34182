package app

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func envOf(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestLoadConfigDefaultsToDevMode(t *testing.T) {
	t.Parallel()
	cfg, err := LoadConfig(envOf(nil))
	if err != nil {
		t.Fatal(err)
	}
	if !cfg.Dev || cfg.Scope != "openid profile email offline" || cfg.AdminPermission != "admin:permissions" {
		t.Fatalf("unexpected defaults: %+v", cfg)
	}
}

func TestLoadConfigErrors(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("k", 32)
	tests := []struct {
		name string
		env  map[string]string
		want string
	}{
		{"http issuer", map[string]string{"KINDE_ISSUER_URL": "http://acme.kinde.com", "KINDE_CLIENT_ID": "c", "KINDE_SITE_URL": "https://app", "PERMSYNC_SECRET": long}, "KINDE_ISSUER_URL"},
		{"missing client id", map[string]string{"KINDE_ISSUER_URL": "https://acme.kinde.com", "KINDE_SITE_URL": "https://app", "PERMSYNC_SECRET": long}, "KINDE_CLIENT_ID"},
		{"short secret", map[string]string{"PERMSYNC_SECRET": "short"}, "at least 32"},
		{"absolute post-login redirect", map[string]string{"KINDE_POST_LOGIN_REDIRECT_URL": "https://evil.example/"}, "KINDE_POST_LOGIN_REDIRECT_URL"},
		{"protocol-relative post-login redirect", map[string]string{"KINDE_POST_LOGIN_REDIRECT_URL": "//evil.example/"}, "KINDE_POST_LOGIN_REDIRECT_URL"},
		{"bad rate", map[string]string{"PERMSYNC_KINDE_RATE": "fast"}, "PERMSYNC_KINDE_RATE"},
		{"bad addr", map[string]string{"PERMSYNC_ADDR": "8080"}, "PERMSYNC_ADDR"},
		{"m2m half set", map[string]string{"KINDE_ISSUER_URL": "https://acme.kinde.com", "KINDE_CLIENT_ID": "c", "KINDE_SITE_URL": "https://app", "PERMSYNC_SECRET": long, "KINDE_M2M_CLIENT_ID": "m"}, "KINDE_MANAGEMENT_CLIENT_SECRET"},
		{"no openid scope", map[string]string{"KINDE_SCOPE": "profile email"}, "openid"},
		{"mysql url", map[string]string{"DATABASE_URL": "mysql://x"}, "DATABASE_URL"},
		{"bad metrics addr", map[string]string{"PERMSYNC_METRICS_ADDR": "9090"}, "PERMSYNC_METRICS_ADDR"},
		{"bad job timeout", map[string]string{"PERMSYNC_JOB_TIMEOUT": "soon"}, "PERMSYNC_JOB_TIMEOUT"},
		{"zero job timeout", map[string]string{"PERMSYNC_JOB_TIMEOUT": "0s"}, "PERMSYNC_JOB_TIMEOUT"},
		{"negative rescue", map[string]string{"PERMSYNC_JOB_RESCUE_AFTER": "-1m"}, "PERMSYNC_JOB_RESCUE_AFTER"},
		{"rescue before timeout", map[string]string{"PERMSYNC_JOB_TIMEOUT": "5m", "PERMSYNC_JOB_RESCUE_AFTER": "4m"}, "at least PERMSYNC_JOB_TIMEOUT"},
		{"metrics on the main addr", map[string]string{"PERMSYNC_METRICS_ADDR": "127.0.0.1:8080"}, "PERMSYNC_METRICS_ADDR"},
		{"negative claims interval", map[string]string{"PERMSYNC_CLAIMS_REFRESH_INTERVAL": "-5s"}, "PERMSYNC_CLAIMS_REFRESH_INTERVAL"},
		{"bad claims interval", map[string]string{"PERMSYNC_CLAIMS_REFRESH_INTERVAL": "often"}, "PERMSYNC_CLAIMS_REFRESH_INTERVAL"},
		{"negative undo window", map[string]string{"PERMSYNC_UNDO_WINDOW": "-1s"}, "PERMSYNC_UNDO_WINDOW"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := LoadConfig(envOf(tt.env))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want mention of %q", err, tt.want)
			}
		})
	}
}

func TestSecretFromFile(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "secret")
	secret := strings.Repeat("s", 40)
	if err := os.WriteFile(path, []byte(secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := LoadConfig(envOf(map[string]string{"PERMSYNC_SECRET_FILE": path, "PERMSYNC_SECRET": "ignored-because-file-wins-xxxxxxxxxxxx"}))
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Secrets) != 1 || cfg.Secrets[0] != secret {
		t.Fatalf("secrets = %q", cfg.Secrets)
	}
}

func TestConfigDumpRedactsSecrets(t *testing.T) {
	t.Parallel()
	secret := strings.Repeat("z", 40)
	cfg, err := LoadConfig(envOf(map[string]string{"PERMSYNC_SECRET": secret, "KINDE_CLIENT_SECRET": "topsecret"}))
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	cfg.Dump(&b)
	if strings.Contains(b.String(), secret) || strings.Contains(b.String(), "topsecret") {
		t.Fatalf("dump leaks a secret:\n%s", b.String())
	}
}

func TestDevSecretIsKept(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	a, err := DevSecret(dir)
	if err != nil {
		t.Fatal(err)
	}
	b, err := DevSecret(dir)
	if err != nil || a != b || len(a) < 32 {
		t.Fatalf("dev secret not kept: %q %q %v", a, b, err)
	}
}

func TestMetricsAddr(t *testing.T) {
	t.Parallel()
	for _, v := range []string{"", MetricsOff, "127.0.0.1:9090", ":9090", "[::1]:0"} {
		cfg, err := LoadConfig(envOf(map[string]string{"PERMSYNC_METRICS_ADDR": v}))
		if err != nil || cfg.MetricsAddr != v {
			t.Errorf("PERMSYNC_METRICS_ADDR=%q: got %q, %v", v, cfg.MetricsAddr, err)
		}
	}
}

func TestJobRecoveryConfig(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name                 string
		env                  map[string]string
		timeout, rescueAfter time.Duration
	}{
		{"defaults", nil, 2 * time.Minute, 10 * time.Minute},
		{"both set", map[string]string{"PERMSYNC_JOB_TIMEOUT": "3s", "PERMSYNC_JOB_RESCUE_AFTER": "4s"}, 3 * time.Second, 4 * time.Second},
		{"equal", map[string]string{"PERMSYNC_JOB_TIMEOUT": "1m", "PERMSYNC_JOB_RESCUE_AFTER": "1m"}, time.Minute, time.Minute},
		{"long timeout lifts the default rescue", map[string]string{"PERMSYNC_JOB_TIMEOUT": "15m"}, 15 * time.Minute, 15 * time.Minute},
		{"rescue alone", map[string]string{"PERMSYNC_JOB_RESCUE_AFTER": "30m"}, 2 * time.Minute, 30 * time.Minute},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := LoadConfig(envOf(tt.env))
			if err != nil {
				t.Fatal(err)
			}
			if cfg.JobTimeout != tt.timeout || cfg.JobRescueAfter != tt.rescueAfter {
				t.Fatalf("job timeout %s, rescue after %s; want %s, %s", cfg.JobTimeout, cfg.JobRescueAfter, tt.timeout, tt.rescueAfter)
			}
		})
	}
}

// prod is a valid production environment plus extra.
func prod(extra map[string]string) map[string]string {
	m := map[string]string{"KINDE_ISSUER_URL": "https://auth.example.com", "KINDE_CLIENT_ID": "c",
		"KINDE_SITE_URL": "https://app.example.com", "PERMSYNC_SECRET": strings.Repeat("k", 32)}
	for k, v := range extra {
		m[k] = v
	}
	return m
}

func TestKindeNamesAndDomain(t *testing.T) {
	cfg, err := LoadConfig(envOf(prod(map[string]string{"KINDE_DOMAIN": "https://acme.kinde.com/",
		"KINDE_MANAGEMENT_CLIENT_ID": "m", "KINDE_MANAGEMENT_CLIENT_SECRET": "s",
		"KINDE_POST_LOGIN_REDIRECT_URL": "https://app.example.com/reports?x=1"})))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.KindeDomain != "https://acme.kinde.com" || cfg.IssuerURL != "https://auth.example.com" ||
		cfg.M2MClientID != "m" || cfg.M2MClientSecret != "s" || cfg.PostLoginRedirect != "/reports?x=1" {
		t.Fatalf("config = %+v", cfg)
	}

	// KINDE_DOMAIN defaults to the issuer; the older names still work.
	cfg, err = LoadConfig(envOf(prod(map[string]string{"KINDE_M2M_CLIENT_ID": "m", "KINDE_M2M_CLIENT_SECRET": "s"})))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.KindeDomain != cfg.IssuerURL || cfg.M2MClientID != "m" || cfg.M2MClientSecret != "s" {
		t.Fatalf("config = %+v", cfg)
	}
	// Both names with the same value is fine.
	if _, err := LoadConfig(envOf(prod(map[string]string{"KINDE_M2M_CLIENT_ID": "m", "KINDE_MANAGEMENT_CLIENT_ID": "m",
		"KINDE_MANAGEMENT_CLIENT_SECRET": "s"}))); err != nil {
		t.Fatal(err)
	}

	refused := []struct {
		name string
		env  map[string]string
		want string
	}{
		{"different ids", map[string]string{"KINDE_M2M_CLIENT_ID": "a", "KINDE_MANAGEMENT_CLIENT_ID": "b",
			"KINDE_MANAGEMENT_CLIENT_SECRET": "s"}, "KINDE_MANAGEMENT_CLIENT_ID and KINDE_M2M_CLIENT_ID"},
		{"different secrets", map[string]string{"KINDE_MANAGEMENT_CLIENT_ID": "m", "KINDE_M2M_CLIENT_SECRET": "a",
			"KINDE_MANAGEMENT_CLIENT_SECRET": "b"}, "KINDE_MANAGEMENT_CLIENT_SECRET and KINDE_M2M_CLIENT_SECRET"},
		{"http domain", map[string]string{"KINDE_DOMAIN": "http://acme.kinde.com"}, "KINDE_DOMAIN"},
		{"another host", map[string]string{"KINDE_POST_LOGIN_REDIRECT_URL": "https://evil.example/dashboard"}, "not on this site"},
		{"another scheme", map[string]string{"KINDE_POST_LOGIN_REDIRECT_URL": "http://app.example.com/dashboard"}, "not on this site"},
		{"protocol-relative", map[string]string{"KINDE_POST_LOGIN_REDIRECT_URL": "//evil.example"}, "//"},
		{"backslash", map[string]string{"KINDE_POST_LOGIN_REDIRECT_URL": `/\evil.example`}, "backslash"},
		{"backslash x", map[string]string{"KINDE_POST_LOGIN_REDIRECT_URL": `/\x`}, "backslash"},
	}
	for _, tt := range refused {
		t.Run(tt.name, func(t *testing.T) {
			_, err := LoadConfig(envOf(prod(tt.env)))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want mention of %q", err, tt.want)
			}
			if strings.Count(err.Error(), "\n") != 0 {
				t.Fatalf("want one line, got %q", err)
			}
		})
	}
	if _, err := LoadConfig(envOf(map[string]string{"KINDE_DOMAIN": "https://acme.kinde.com"})); err == nil {
		t.Fatal("KINDE_DOMAIN without KINDE_ISSUER_URL was accepted")
	}
}
