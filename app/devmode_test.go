package app

import (
	"strings"
	"testing"
	"time"
)

// TestDevModeOnlyOnLoopback: with no KINDE_ISSUER_URL, permsync starts the
// demo provider only when every address is on this machine, or when the
// operator says so; otherwise one line says what to set.
func TestDevModeOnlyOnLoopback(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		env     map[string]string
		refused string // the setting the error names; "" = dev mode starts
	}{
		{"nothing set", nil, ""},
		{"loopback addresses", map[string]string{"PERMSYNC_ADDR": "127.0.0.1:9000", "PERMSYNC_DEVKINDE_ADDR": "[::1]:7000",
			"KINDE_SITE_URL": "http://localhost:9000"}, ""},
		{"localhost by name", map[string]string{"PERMSYNC_ADDR": "localhost:9000", "KINDE_SITE_URL": "http://127.0.0.1:9000"}, ""},
		{"app on every interface", map[string]string{"PERMSYNC_ADDR": "0.0.0.0:8080"}, "PERMSYNC_ADDR"},
		{"app with no host", map[string]string{"PERMSYNC_ADDR": ":8080"}, "PERMSYNC_ADDR"},
		{"app on a LAN address", map[string]string{"PERMSYNC_ADDR": "192.168.1.5:8080"}, "PERMSYNC_ADDR"},
		{"devkinde on every interface", map[string]string{"PERMSYNC_DEVKINDE_ADDR": "0.0.0.0:7070"}, "PERMSYNC_DEVKINDE_ADDR"},
		{"devkinde with no host", map[string]string{"PERMSYNC_DEVKINDE_ADDR": ":7070"}, "PERMSYNC_DEVKINDE_ADDR"},
		{"public site URL", map[string]string{"KINDE_SITE_URL": "https://app.example.com"}, "KINDE_SITE_URL"},
		{"opted in", map[string]string{"PERMSYNC_DEV": "1", "PERMSYNC_ADDR": "0.0.0.0:8080",
			"PERMSYNC_DEVKINDE_ADDR": "0.0.0.0:7070", "KINDE_SITE_URL": "https://app.example.com"}, ""},
		{"opted out explicitly", map[string]string{"PERMSYNC_DEV": "0", "PERMSYNC_ADDR": "0.0.0.0:8080"}, "PERMSYNC_ADDR"},
		{"bad opt-in value", map[string]string{"PERMSYNC_DEV": "maybe"}, "PERMSYNC_DEV"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := LoadConfig(envOf(tt.env))
			if tt.refused == "" {
				if err != nil || !cfg.Dev {
					t.Fatalf("dev = %v, err = %v; want dev mode", cfg.Dev, err)
				}
				return
			}
			if err == nil {
				t.Fatalf("dev mode started; want it refused naming %s", tt.refused)
			}
			msg := err.Error()
			if strings.Contains(msg, "\n") || !strings.Contains(msg, tt.refused) {
				t.Fatalf("error %q: want one line naming %s", msg, tt.refused)
			}
			if tt.refused != "PERMSYNC_DEV" && (!strings.Contains(msg, "KINDE_ISSUER_URL") || !strings.Contains(msg, "PERMSYNC_DEV=1")) {
				t.Fatalf("error %q: want it to say what to set (KINDE_ISSUER_URL or PERMSYNC_DEV=1)", msg)
			}
		})
	}
	// A real deployment is not dev mode, whatever its addresses.
	if _, err := LoadConfig(envOf(prod(map[string]string{"PERMSYNC_ADDR": "0.0.0.0:8080"}))); err != nil {
		t.Fatalf("production on every interface: %v", err)
	}
}

// TestRedactURL: every credential in every URL or DSN is hidden, and the
// rest stays readable.
func TestRedactURL(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{"", ""},
		{"https://acme.kinde.com", "https://acme.kinde.com"},
		{"https://user:hunter2@acme.kinde.com/x", "https://<redacted>@acme.kinde.com/x"},
		{"https://tok3n@acme.kinde.com", "https://<redacted>@acme.kinde.com"},
		{"postgres://app:hunter2@db:5432/permsync?sslmode=require", "postgres://app:<redacted>@db:5432/permsync?sslmode=require"},
		{"postgresql://app@db/permsync?password=hunter2", "postgresql://app@db/permsync?password=<redacted>"},
		{"postgres://db/permsync?sslpassword=hunter2&sslmode=verify-full", "postgres://db/permsync?sslmode=verify-full&sslpassword=<redacted>"},
		{"sqlite:data/permsync.db", "sqlite:data/permsync.db"},
		{"sqlite:data/p.db?_auth_pass=hunter2&_auth=1", "sqlite:data/p.db?_auth_pass=<redacted>&_auth=1"},
		{"file:/var/lib/p.db?_auth_user=u&_auth_pass=hunter2", "file:///var/lib/p.db?_auth=&_auth_pass=<redacted>&_auth_user=<redacted>"},
		{"host=db user=app password=hunter2 dbname=p", "host=db user=app password=<redacted> dbname=p"},
		{"host=db password='hunter 2' dbname=p", "host=db password=<redacted> dbname=p"},
		{"/dashboard", "/dashboard"},
	}
	for _, tt := range tests {
		got := RedactURL(tt.in)
		if strings.Contains(got, "hunter") || strings.Contains(got, "tok3n") {
			t.Errorf("RedactURL(%q) = %q: leaks the credential", tt.in, got)
		}
		if tt.want != "" && !strings.HasPrefix(tt.in, "file:") && got != tt.want {
			t.Errorf("RedactURL(%q) = %q; want %q", tt.in, got, tt.want)
		}
	}
}

// TestConfigDumpRedactsEveryURL: config-dump shows no credential from any URL.
func TestConfigDumpRedactsEveryURL(t *testing.T) {
	t.Parallel()
	for _, db := range []string{"postgres://u:pw-db-1@db/p", "sqlite:x.db?_auth_pass=pw-db-2", "file:x.db?_auth_pass=pw-db-3"} {
		cfg, _ := LoadConfig(envOf(prod(map[string]string{
			"KINDE_ISSUER_URL": "https://u:pw-issuer@auth.example.com", "KINDE_DOMAIN": "https://u:pw-domain@acme.kinde.com",
			"KINDE_POST_LOGOUT_REDIRECT_URL": "https://u:pw-logout@app.example.com/", "DATABASE_URL": db})))
		var b strings.Builder
		cfg.Dump(&b)
		if strings.Contains(b.String(), "pw-") {
			t.Fatalf("dump leaks a password:\n%s", b.String())
		}
		if !strings.Contains(b.String(), "auth.example.com") {
			t.Fatalf("dump hides the issuer's host:\n%s", b.String())
		}
	}
}

// TestSecurityLimitsConfig: trusted proxies, the idle timeout and the
// per-user session cap parse, default and refuse bad values.
func TestSecurityLimitsConfig(t *testing.T) {
	t.Parallel()
	cfg, err := LoadConfig(envOf(nil))
	if err != nil || len(cfg.TrustedProxies) != 0 || cfg.SessionIdleTimeout != 8*time.Hour || cfg.MaxSessionsPerUser != 10 {
		t.Fatalf("defaults: proxies %v, idle %s, cap %d, %v", cfg.TrustedProxies, cfg.SessionIdleTimeout, cfg.MaxSessionsPerUser, err)
	}
	cfg, err = LoadConfig(envOf(map[string]string{"PERMSYNC_TRUSTED_PROXIES": "10.0.0.0/8, 192.168.1.7,::1",
		"PERMSYNC_SESSION_IDLE_TIMEOUT": "30m", "PERMSYNC_MAX_SESSIONS_PER_USER": "3"}))
	if err != nil {
		t.Fatal(err)
	}
	if got := joinPrefixes(cfg.TrustedProxies); got != "10.0.0.0/8,192.168.1.7/32,::1/128" ||
		cfg.SessionIdleTimeout != 30*time.Minute || cfg.MaxSessionsPerUser != 3 {
		t.Fatalf("parsed: proxies %s, idle %s, cap %d", got, cfg.SessionIdleTimeout, cfg.MaxSessionsPerUser)
	}
	for name, v := range map[string]string{"PERMSYNC_TRUSTED_PROXIES": "10.0.0.0/33", "PERMSYNC_SESSION_IDLE_TIMEOUT": "0",
		"PERMSYNC_MAX_SESSIONS_PER_USER": "0"} {
		if _, err := LoadConfig(envOf(map[string]string{name: v})); err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("%s=%s: %v; want an error naming it", name, v, err)
		}
	}
}
