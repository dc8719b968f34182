// Package app wires permsync together: configuration, database, Kinde clients,
// services and the HTTP server. cmd/permsync parses the environment and calls it;
// tests build an App the same way.
package app

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"permsync/admin"
	"permsync/auth"
)

// Config is everything permsync reads from its environment. It is parsed once
// at start by LoadConfig and validated there; a wrong value stops the program
// with one clear line.
type Config struct {
	// Kinde, with the Kinde SDKs' variable names.
	IssuerURL string // KINDE_ISSUER_URL; empty starts devkinde in-process
	// KindeDomain is KINDE_DOMAIN: the Kinde domain (https://<sub>.kinde.com)
	// for M2M tokens, the Management API (<domain>/api/v1, audience
	// <domain>/api) and webhook keys. Kinde serves these only on its own
	// domain, even when sign-in uses a custom domain (KINDE_ISSUER_URL).
	// Empty in the environment means the issuer.
	KindeDomain        string
	ClientID           string // KINDE_CLIENT_ID
	ClientSecret       string // KINDE_CLIENT_SECRET (or _FILE)
	SiteURL            string // KINDE_SITE_URL: the public URL of this app
	PostLoginRedirect  string // KINDE_POST_LOGIN_REDIRECT_URL: a path, or a URL on the site (kept as its path)
	PostLogoutRedirect string // KINDE_POST_LOGOUT_REDIRECT_URL: absolute URL Kinde sends users to after logout
	Audience           string // KINDE_AUDIENCE (space-separated)
	Scope              string // KINDE_SCOPE
	M2MClientID        string // KINDE_MANAGEMENT_CLIENT_ID, or its alias KINDE_M2M_CLIENT_ID
	M2MClientSecret    string // KINDE_MANAGEMENT_CLIENT_SECRET (or _FILE), or its alias KINDE_M2M_CLIENT_SECRET

	// permsync's own.
	Addr            string        // PERMSYNC_ADDR
	Secrets         []string      // PERMSYNC_SECRET (or _FILE): comma-separated, newest first
	AdminPermission string        // PERMSYNC_ADMIN_PERMISSION
	KindeRate       float64       // PERMSYNC_KINDE_RATE: Management API calls per second
	DatabaseURL     string        // DATABASE_URL: "" or sqlite path/URL, or postgres://
	DataDir         string        // PERMSYNC_DATA_DIR
	LogLevel        slog.Level    // PERMSYNC_LOG_LEVEL
	LogFormat       string        // PERMSYNC_LOG_FORMAT: text or json
	DevKindeAddr    string        // PERMSYNC_DEVKINDE_ADDR: where the embedded devkinde listens
	DevAccessTTL    time.Duration // PERMSYNC_DEVKINDE_ACCESS_TTL: access-token lifetime in dev mode
	// DevGenerate is PERMSYNC_DEVKINDE_GENERATE: in dev mode, add a generated
	// tenant of ORGSxUSERS[@SEED] (e.g. 1000x5000) to devkinde's demo seed.
	DevGenerate string
	// ReconcileInterval is PERMSYNC_RECONCILE_INTERVAL: the time between the
	// end of one full directory sync and the start of the next, which
	// compares Kinde with the local copy.
	ReconcileInterval time.Duration
	// JobTimeout is PERMSYNC_JOB_TIMEOUT: how long one attempt of a
	// background job (a fan-out's refresh_claims, Kinde retries included)
	// may run before it is cancelled and retried.
	JobTimeout time.Duration
	// JobRescueAfter is PERMSYNC_JOB_RESCUE_AFTER: how long a job left
	// running by a process that died (SIGKILL, OOM, power loss) waits before
	// another process retries it. At least JobTimeout, so a live job is
	// never run twice at once; unset, 10m or JobTimeout if that is longer.
	JobRescueAfter time.Duration
	// MetricsAddr is PERMSYNC_METRICS_ADDR: "" serves GET /metrics on the
	// main listener to clients on this machine only, MetricsOff serves no
	// metrics, and host:port serves /metrics alone on its own listener.
	MetricsAddr string
	// ClaimsRefreshInterval is PERMSYNC_CLAIMS_REFRESH_INTERVAL: "Refresh
	// session" calls refresh_claims at most once per user per interval;
	// clicks in between refresh tokens only. 0: every click.
	ClaimsRefreshInterval time.Duration
	// UndoWindow is PERMSYNC_UNDO_WINDOW: how long a deletion waits before
	// Kinde is called, while its fan-out page offers Undo. 0: at once.
	UndoWindow time.Duration

	// TrustedProxies is PERMSYNC_TRUSTED_PROXIES: comma-separated CIDRs (or
	// addresses) of the proxies in front of the app, whose X-Forwarded-For
	// names the client. Empty: the socket's peer is the client, whatever
	// the headers say.
	TrustedProxies []netip.Prefix
	// SessionIdleTimeout is PERMSYNC_SESSION_IDLE_TIMEOUT: a session unused
	// for this long ends.
	SessionIdleTimeout time.Duration
	// MaxSessionsPerUser is PERMSYNC_MAX_SESSIONS_PER_USER: a sign-in past
	// it ends the user's oldest session.
	MaxSessionsPerUser int

	// Dev is true when no KINDE_ISSUER_URL is set: devkinde runs in-process.
	Dev bool
	// DevOptIn is PERMSYNC_DEV (or `permsync serve --dev`): run devkinde,
	// with its demo passwords, even when an address or the site URL is not
	// on this machine. Without it, dev mode runs only all-loopback.
	DevOptIn bool
}

// Defaults of PERMSYNC_JOB_TIMEOUT, PERMSYNC_JOB_RESCUE_AFTER and
// PERMSYNC_RECONCILE_INTERVAL.
const (
	DefaultReconcileInterval = 15 * time.Minute
	DefaultJobTimeout        = 2 * time.Minute
	DefaultJobRescueAfter    = 10 * time.Minute
)

// MetricsOff is the PERMSYNC_METRICS_ADDR value that turns metrics off.
const MetricsOff = "off"

// secretNames are the variables that may hold secrets; each also has a _FILE twin.
var secretNames = map[string]bool{
	"KINDE_CLIENT_SECRET":            true,
	"KINDE_MANAGEMENT_CLIENT_SECRET": true,
	"KINDE_M2M_CLIENT_SECRET":        true,
	"PERMSYNC_SECRET":                true,
	"DATABASE_URL":                   true,
}

// env reads a variable, preferring NAME_FILE for secrets. Trailing newlines of
// files are trimmed.
type env struct {
	getenv func(string) string
	errs   []error
}

func (e *env) str(name, def string) string {
	if secretNames[name] {
		if path := e.getenv(name + "_FILE"); path != "" {
			b, err := os.ReadFile(path)
			if err != nil {
				e.errs = append(e.errs, fmt.Errorf("%s_FILE: %w", name, err))
				return ""
			}
			return strings.TrimRight(string(b), "\r\n")
		}
	}
	if v := strings.TrimSpace(e.getenv(name)); v != "" {
		return v
	}
	return def
}

// alias reads a variable that has an older alias: Kinde's name first, then
// permsync's earlier one. Both set to different values is an error, as one
// of them would be silently ignored.
func (e *env) alias(name, old string) string {
	v, o := e.str(name, ""), e.str(old, "")
	if v != "" && o != "" && v != o {
		e.errs = append(e.errs, fmt.Errorf("%s and %s (its older alias) are both set, to different values: set only %s", name, old, name))
	}
	return firstNonEmpty(v, o)
}

// firstNonEmpty returns the first of vals that is not empty.
func firstNonEmpty(vals ...string) string {
	for _, v := range vals {
		if v != "" {
			return v
		}
	}
	return ""
}

func (e *env) float(name string, def float64) float64 {
	s := e.str(name, "")
	if s == "" {
		return def
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f <= 0 {
		e.errs = append(e.errs, fmt.Errorf("%s: want a positive number, got %q", name, s))
		return def
	}
	return f
}

func (e *env) duration(name string, def time.Duration) time.Duration {
	s := e.str(name, "")
	if s == "" {
		return def
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		e.errs = append(e.errs, fmt.Errorf("%s: want a positive duration such as 5m, got %q", name, s))
		return def
	}
	return d
}

// prefixes reads comma-separated CIDRs; a bare address is one host.
func (e *env) prefixes(name string) []netip.Prefix {
	var out []netip.Prefix
	for _, part := range strings.Split(e.str(name, ""), ",") {
		if part = strings.TrimSpace(part); part == "" {
			continue
		}
		p, err := netip.ParsePrefix(part)
		if err != nil {
			a, aerr := netip.ParseAddr(part)
			if aerr != nil {
				e.errs = append(e.errs, fmt.Errorf("%s: want CIDRs such as 10.0.0.0/8,127.0.0.1/32, got %q", name, part))
				continue
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		out = append(out, p.Masked())
	}
	return out
}

// positiveInt reads a whole number of at least 1.
func (e *env) positiveInt(name string, def int) int {
	s := e.str(name, "")
	if s == "" {
		return def
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 {
		e.errs = append(e.errs, fmt.Errorf("%s: want a whole number of at least 1, got %q", name, s))
		return def
	}
	return n
}

// boolean reads a yes/no variable: 1, true, yes or on; 0, false, no, off
// or unset.
func (e *env) boolean(name string) bool {
	switch strings.ToLower(e.str(name, "")) {
	case "", "0", "false", "no", "off":
		return false
	case "1", "true", "yes", "on":
		return true
	default:
		e.errs = append(e.errs, fmt.Errorf("%s: want 1 or 0, got %q", name, e.str(name, "")))
		return false
	}
}

// durationOrZero is duration, accepting 0 as well ("0" or "0s").
func (e *env) durationOrZero(name string, def time.Duration) time.Duration {
	s := e.str(name, "")
	if s == "" {
		return def
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		e.errs = append(e.errs, fmt.Errorf("%s: want a duration such as 30s (or 0), got %q", name, s))
		return def
	}
	return d
}

// LoadConfig reads and validates the configuration.
func LoadConfig(getenv func(string) string) (Config, error) {
	e := &env{getenv: getenv}
	c := Config{
		IssuerURL:          strings.TrimRight(e.str("KINDE_ISSUER_URL", ""), "/"),
		KindeDomain:        strings.TrimRight(e.str("KINDE_DOMAIN", ""), "/"),
		ClientID:           e.str("KINDE_CLIENT_ID", ""),
		ClientSecret:       e.str("KINDE_CLIENT_SECRET", ""),
		SiteURL:            strings.TrimRight(e.str("KINDE_SITE_URL", ""), "/"),
		PostLoginRedirect:  e.str("KINDE_POST_LOGIN_REDIRECT_URL", "/dashboard"),
		PostLogoutRedirect: e.str("KINDE_POST_LOGOUT_REDIRECT_URL", ""),
		Audience:           e.str("KINDE_AUDIENCE", ""),
		Scope:              e.str("KINDE_SCOPE", "openid profile email offline"),
		M2MClientID:        e.alias("KINDE_MANAGEMENT_CLIENT_ID", "KINDE_M2M_CLIENT_ID"),
		M2MClientSecret:    e.alias("KINDE_MANAGEMENT_CLIENT_SECRET", "KINDE_M2M_CLIENT_SECRET"),
		Addr:               e.str("PERMSYNC_ADDR", "127.0.0.1:8080"),
		AdminPermission:    e.str("PERMSYNC_ADMIN_PERMISSION", "admin:permissions"),
		KindeRate:          e.float("PERMSYNC_KINDE_RATE", 5),
		DatabaseURL:        e.str("DATABASE_URL", ""),
		DataDir:            e.str("PERMSYNC_DATA_DIR", "data"),
		LogFormat:          e.str("PERMSYNC_LOG_FORMAT", "text"),
		DevKindeAddr:       e.str("PERMSYNC_DEVKINDE_ADDR", "127.0.0.1:7070"),
		DevAccessTTL:       e.duration("PERMSYNC_DEVKINDE_ACCESS_TTL", 5*time.Minute),
		DevGenerate:        e.str("PERMSYNC_DEVKINDE_GENERATE", ""),
		ReconcileInterval:  e.duration("PERMSYNC_RECONCILE_INTERVAL", DefaultReconcileInterval),
		MetricsAddr:        e.str("PERMSYNC_METRICS_ADDR", ""),
		JobTimeout:         e.duration("PERMSYNC_JOB_TIMEOUT", DefaultJobTimeout),
		JobRescueAfter:     e.duration("PERMSYNC_JOB_RESCUE_AFTER", 0),
		ClaimsRefreshInterval: e.durationOrZero("PERMSYNC_CLAIMS_REFRESH_INTERVAL",
			auth.DefaultClaimsRefreshInterval),
		UndoWindow:         e.durationOrZero("PERMSYNC_UNDO_WINDOW", admin.DefaultUndoWindow),
		TrustedProxies:     e.prefixes("PERMSYNC_TRUSTED_PROXIES"),
		SessionIdleTimeout: e.duration("PERMSYNC_SESSION_IDLE_TIMEOUT", auth.DefaultIdleTimeout),
		MaxSessionsPerUser: e.positiveInt("PERMSYNC_MAX_SESSIONS_PER_USER", auth.DefaultMaxSessionsPerUser),
	}
	if s := e.str("PERMSYNC_SECRET", ""); s != "" {
		for _, part := range strings.Split(s, ",") {
			if part = strings.TrimSpace(part); part != "" {
				c.Secrets = append(c.Secrets, part)
			}
		}
	}
	if err := c.LogLevel.UnmarshalText([]byte(e.str("PERMSYNC_LOG_LEVEL", "info"))); err != nil {
		e.errs = append(e.errs, fmt.Errorf("PERMSYNC_LOG_LEVEL: %w", err))
	}
	if c.JobRescueAfter == 0 {
		// Unset: the default, or the job timeout when that is longer.
		c.JobRescueAfter = max(DefaultJobRescueAfter, c.JobTimeout)
	}
	c.Dev = c.IssuerURL == ""
	c.DevOptIn = e.boolean("PERMSYNC_DEV")
	if c.Dev && !c.DevOptIn {
		if why := c.notLocal(); why != "" {
			e.errs = append(e.errs, fmt.Errorf("no KINDE_ISSUER_URL is set, so permsync would start devkinde, "+
				"the demo identity provider with known passwords, but %s: set KINDE_ISSUER_URL (with the other KINDE_* "+
				"variables) for a real deployment, or PERMSYNC_DEV=1 (permsync serve --dev) to run the demo anyway", why))
		}
	}
	if c.KindeDomain == "" {
		c.KindeDomain = c.IssuerURL
	}
	e.errs = append(e.errs, c.validate()...)
	if len(e.errs) > 0 {
		return c, errors.Join(e.errs...)
	}
	return c, nil
}

func (c *Config) validate() []error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }

	if c.ReconcileInterval < time.Second {
		bad("PERMSYNC_RECONCILE_INTERVAL: want a duration of at least 1s such as 15m, got %s", c.ReconcileInterval)
	}
	if _, _, err := net.SplitHostPort(c.Addr); err != nil {
		bad("PERMSYNC_ADDR: want host:port, got %q", c.Addr)
	}
	if c.MetricsAddr != "" && c.MetricsAddr != MetricsOff {
		if _, _, err := net.SplitHostPort(c.MetricsAddr); err != nil {
			bad("PERMSYNC_METRICS_ADDR: want host:port such as 127.0.0.1:9090, or off, got %q", c.MetricsAddr)
		} else if c.MetricsAddr == c.Addr {
			bad("PERMSYNC_METRICS_ADDR must differ from PERMSYNC_ADDR (leave it empty to serve /metrics on the main listener)")
		}
	}
	if !c.Dev {
		if u, err := url.Parse(c.IssuerURL); err != nil || u.Host == "" || (u.Scheme != "https" && !isLoopbackURL(u)) {
			bad("KINDE_ISSUER_URL: want an https URL such as https://yourbusiness.kinde.com, got %q", c.IssuerURL)
		}
		if c.ClientID == "" {
			bad("KINDE_CLIENT_ID is required when KINDE_ISSUER_URL is set")
		}
		if c.SiteURL == "" {
			bad("KINDE_SITE_URL is required when KINDE_ISSUER_URL is set (the public URL of this app)")
		}
		if len(c.Secrets) == 0 {
			bad("PERMSYNC_SECRET is required when KINDE_ISSUER_URL is set (32+ random characters; comma-separate several to rotate)")
		}
		if (c.M2MClientID == "") != (c.M2MClientSecret == "") {
			bad("KINDE_MANAGEMENT_CLIENT_ID and KINDE_MANAGEMENT_CLIENT_SECRET (or KINDE_M2M_*) must be set together")
		}
		if u, err := url.Parse(c.KindeDomain); err != nil || u.Host == "" || (u.Scheme != "https" && !isLoopbackURL(u)) {
			bad("KINDE_DOMAIN: want your Kinde domain as an https URL such as https://yourbusiness.kinde.com, got %q", c.KindeDomain)
		}
	} else if c.KindeDomain != "" {
		bad("KINDE_DOMAIN is set but KINDE_ISSUER_URL is not: set both, or neither for devkinde")
	}
	if c.SiteURL != "" {
		if u, err := url.Parse(c.SiteURL); err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
			bad("KINDE_SITE_URL: want an absolute http(s) URL, got %q", c.SiteURL)
		}
	}
	if p, err := auth.RedirectPath(c.PostLoginRedirect, c.SiteURL); err != nil {
		bad("KINDE_POST_LOGIN_REDIRECT_URL: want a path such as /dashboard or a URL on KINDE_SITE_URL, got %q: %v", c.PostLoginRedirect, err)
	} else {
		c.PostLoginRedirect = p
	}
	if !strings.Contains(" "+c.Scope+" ", " openid ") {
		bad("KINDE_SCOPE must include openid, got %q", c.Scope)
	}
	for i, s := range c.Secrets {
		if len(s) < 32 {
			bad("PERMSYNC_SECRET: key %d is %d characters; use at least 32", i+1, len(s))
		}
	}
	if c.AdminPermission == "" {
		bad("PERMSYNC_ADMIN_PERMISSION must not be empty")
	}
	if c.LogFormat != "text" && c.LogFormat != "json" {
		bad("PERMSYNC_LOG_FORMAT: want text or json, got %q", c.LogFormat)
	}
	if c.JobTimeout > 0 && c.JobRescueAfter > 0 && c.JobRescueAfter < c.JobTimeout {
		bad("PERMSYNC_JOB_RESCUE_AFTER (%s) must be at least PERMSYNC_JOB_TIMEOUT (%s): a job still running would be started again",
			c.JobRescueAfter, c.JobTimeout)
	}
	if c.DatabaseURL != "" && !strings.HasPrefix(c.DatabaseURL, "postgres://") &&
		!strings.HasPrefix(c.DatabaseURL, "postgresql://") && !strings.HasPrefix(c.DatabaseURL, "sqlite:") &&
		!strings.HasPrefix(c.DatabaseURL, "file:") {
		bad("DATABASE_URL: want postgres://… or sqlite:path, got a value of another kind")
	}
	return errs
}

// notLocal says which of the addresses dev mode would use reaches beyond
// this machine ("" when all are loopback): the app's listener, devkinde's
// listener and the site URL.
func (c *Config) notLocal() string {
	for _, a := range []struct{ name, addr string }{{"PERMSYNC_ADDR", c.Addr}, {"PERMSYNC_DEVKINDE_ADDR", c.DevKindeAddr}} {
		host, _, err := net.SplitHostPort(a.addr)
		if err != nil {
			continue // reported by validate
		}
		if !isLoopbackHost(host) {
			return fmt.Sprintf("%s=%s listens beyond this machine", a.name, a.addr)
		}
	}
	if c.SiteURL != "" {
		if u, err := url.Parse(c.SiteURL); err == nil && !isLoopbackHost(u.Hostname()) {
			return fmt.Sprintf("KINDE_SITE_URL=%s is not on this machine", c.SiteURL)
		}
	}
	return ""
}

// isLoopbackURL reports a plain-http URL on this machine.
func isLoopbackURL(u *url.URL) bool {
	return u.Scheme == "http" && isLoopbackHost(u.Hostname())
}

// isLoopbackHost reports localhost or a loopback address.
func isLoopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// DevSecret returns the secret kept in the data folder for dev mode, creating
// it on first use.
func DevSecret(dataDir string) (string, error) {
	path := filepath.Join(dataDir, "dev-secret")
	if b, err := os.ReadFile(path); err == nil && len(strings.TrimSpace(string(b))) >= 32 {
		return strings.TrimSpace(string(b)), nil
	}
	buf := make([]byte, 32)
	if _, err := rand.Read(buf); err != nil {
		return "", err
	}
	s := hex.EncodeToString(buf)
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return "", err
	}
	if err := os.WriteFile(path, []byte(s+"\n"), 0o600); err != nil {
		return "", err
	}
	return s, nil
}

// Dump writes the configuration with secrets redacted.
func (c Config) Dump(w io.Writer) {
	redact := func(s string) string {
		if s == "" {
			return ""
		}
		return "<redacted>"
	}
	rows := [][2]string{
		{"KINDE_ISSUER_URL", RedactURL(c.IssuerURL)},
		{"KINDE_DOMAIN", RedactURL(c.KindeDomain)},
		{"KINDE_CLIENT_ID", c.ClientID},
		{"KINDE_CLIENT_SECRET", redact(c.ClientSecret)},
		{"KINDE_SITE_URL", RedactURL(c.SiteURL)},
		{"KINDE_POST_LOGIN_REDIRECT_URL", RedactURL(c.PostLoginRedirect)},
		{"KINDE_POST_LOGOUT_REDIRECT_URL", RedactURL(c.PostLogoutRedirect)},
		{"KINDE_AUDIENCE", c.Audience},
		{"KINDE_SCOPE", c.Scope},
		{"KINDE_MANAGEMENT_CLIENT_ID", c.M2MClientID},
		{"KINDE_MANAGEMENT_CLIENT_SECRET", redact(c.M2MClientSecret)},
		{"PERMSYNC_ADDR", c.Addr},
		{"PERMSYNC_SECRET", redact(strings.Join(c.Secrets, ","))},
		{"PERMSYNC_ADMIN_PERMISSION", c.AdminPermission},
		{"PERMSYNC_KINDE_RATE", strconv.FormatFloat(c.KindeRate, 'g', -1, 64)},
		{"DATABASE_URL", RedactURL(c.DatabaseURL)},
		{"PERMSYNC_DATA_DIR", c.DataDir},
		{"PERMSYNC_LOG_LEVEL", c.LogLevel.String()},
		{"PERMSYNC_LOG_FORMAT", c.LogFormat},
		{"PERMSYNC_METRICS_ADDR", c.MetricsAddr},
		{"PERMSYNC_DEV", strconv.FormatBool(c.DevOptIn)},
		{"PERMSYNC_TRUSTED_PROXIES", joinPrefixes(c.TrustedProxies)},
		{"PERMSYNC_SESSION_IDLE_TIMEOUT", c.SessionIdleTimeout.String()},
		{"PERMSYNC_MAX_SESSIONS_PER_USER", strconv.Itoa(c.MaxSessionsPerUser)},
		{"PERMSYNC_DEVKINDE_ADDR", c.DevKindeAddr},
		{"PERMSYNC_JOB_TIMEOUT", c.JobTimeout.String()},
		{"PERMSYNC_JOB_RESCUE_AFTER", c.JobRescueAfter.String()},
		{"PERMSYNC_CLAIMS_REFRESH_INTERVAL", c.ClaimsRefreshInterval.String()},
		{"PERMSYNC_UNDO_WINDOW", c.UndoWindow.String()},
	}
	for _, r := range rows {
		fmt.Fprintf(w, "%s=%s\n", r[0], r[1])
	}
}

func joinPrefixes(ps []netip.Prefix) string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.String()
	}
	return strings.Join(out, ",")
}

// secretParam matches the names of URL query parameters and DSN keywords
// that carry a credential (password=, sslpassword=, _auth_pass=, token=, …).
var secretParam = regexp.MustCompile(`(?i)(pass|pwd|secret|token|key|auth)`)

// dsnSecret matches keyword=value pairs of a key/value DSN whose keyword
// names a credential, quoted or not.
var dsnSecret = regexp.MustCompile(`(?i)\b([a-z_]*(?:pass|pwd|secret|token|key)[a-z_]*)\s*=\s*('(?:[^'\\]|\\.)*'|[^\s&]+)`)

// RedactURL returns s with every credential in it replaced by <redacted>:
// the user info of a URL (a database URL keeps its user name), query
// parameters that name a secret, and keyword=value secrets of a key/value
// DSN. What cannot be parsed as a URL is redacted whole unless it is a
// plain path.
func RedactURL(s string) string {
	if s == "" {
		return ""
	}
	u, err := url.Parse(s)
	if err != nil {
		if strings.Contains(s, "=") || strings.Contains(s, "@") {
			return "<redacted>"
		}
		return s
	}
	if u.Scheme == "" || u.Opaque != "" {
		// A path, "sqlite:path?…", "file:path?…" or a key/value DSN.
		return dsnSecret.ReplaceAllString(s, "$1=<redacted>")
	}
	if u.User != nil {
		_, hasPass := u.User.Password()
		switch {
		case !strings.HasPrefix(u.Scheme, "postgres"):
			u.User = url.User("redacted") // a user name alone may be a token
		case hasPass:
			u.User = url.UserPassword(u.User.Username(), "redacted")
		}
	}
	if u.RawQuery != "" {
		q := u.Query()
		for k := range q {
			if secretParam.MatchString(k) {
				q[k] = []string{"redacted"}
			}
		}
		u.RawQuery = q.Encode()
	}
	out := u.String()
	out = strings.Replace(out, ":redacted@", ":<redacted>@", 1)
	out = strings.Replace(out, "//redacted@", "//<redacted>@", 1)
	return strings.ReplaceAll(out, "=redacted", "=<redacted>")
}
