package apptest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/PuerkitoBio/goquery"

	"permsync/devkinde"
)

// Client is a browser-like HTTP client: a cookie jar, redirects followed,
// and the CSRF token of the last page it saw. It is safe for concurrent use.
type Client struct {
	// HTTP is the underlying client; its Jar holds the cookies of both the
	// app and devkinde (cookies ignore ports, so they share 127.0.0.1).
	HTTP *http.Client
	// BaseURL is the app's URL.
	BaseURL string

	mu   *sync.Mutex
	csrf *string
}

// NewClient returns a signed-out client.
func (e *Env) NewClient(t testing.TB) *Client {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return e.newClient(jar, e.URL)
}

// newClient returns a client for the app at baseURL with jar.
func (e *Env) newClient(jar http.CookieJar, baseURL string) *Client {
	return &Client{
		HTTP: &http.Client{Jar: jar, Timeout: requestTimeout,
			// Never follow a redirect off the test servers (devkinde and the
			// app's replicas): an open redirect becomes a test failure, not
			// a request to the internet.
			CheckRedirect: func(req *http.Request, via []*http.Request) error {
				if !e.allowedHost(req.URL.Host) {
					return fmt.Errorf("%w: %s", ErrOffSiteRedirect, req.URL)
				}
				if len(via) >= 10 {
					return errors.New("apptest: too many redirects")
				}
				return nil
			}},
		BaseURL: baseURL,
		mu:      &sync.Mutex{},
		csrf:    new(string),
	}
}

// Login returns a client signed in as email (password devkinde.DemoPassword)
// through the real sign-in form. It fails the test unless the sign-in ends
// on /dashboard.
func (e *Env) Login(t testing.TB, email string) *Client {
	t.Helper()
	return login(t, e.NewClient(t), email)
}

func login(t testing.TB, c *Client, email string) *Client {
	t.Helper()
	resp := c.SignIn(t, "/login", email, devkinde.DemoPassword)
	if resp.StatusCode != http.StatusOK || resp.Request.URL.Path != "/dashboard" {
		t.Fatalf("apptest: sign-in as %s ended at %s with %d:\n%s", email, resp.Request.URL, resp.StatusCode, snippet(resp.Body))
	}
	return c
}

// SignIn starts at path (e.g. "/login?return_to=/reports"), fills devkinde's
// sign-in form with email and password, submits it and follows the redirects
// back. It returns the final response.
func (c *Client) SignIn(t testing.TB, path, email, password string) *Response {
	t.Helper()
	page := c.Get(t, path)
	form := page.Doc(t).Find("form").FilterFunction(func(_ int, s *goquery.Selection) bool {
		return s.Find(`input[name="email"]`).Length() > 0
	}).First()
	if form.Length() == 0 {
		t.Fatalf("apptest: no sign-in form at %s (status %d):\n%s", page.Request.URL, page.StatusCode, snippet(page.Body))
	}
	vals := url.Values{}
	form.Find("input[name]").Each(func(_ int, in *goquery.Selection) {
		name, _ := in.Attr("name")
		val, _ := in.Attr("value")
		vals.Set(name, val)
	})
	vals.Set("email", email)
	vals.Set("password", password)
	action, _ := form.Attr("action")
	target, err := page.Request.URL.Parse(action)
	if err != nil {
		t.Fatalf("apptest: form action %q: %v", action, err)
	}
	return c.do(t, http.MethodPost, target.String(), strings.NewReader(vals.Encode()), http.Header{
		"Content-Type": {"application/x-www-form-urlencoded"},
	})
}

// At returns a client sharing this one's cookies and CSRF token that sends
// its requests to the app at baseURL: another replica (Replica.URL), as a
// load balancer without sticky sessions would. Cookies are per host, not per
// port, so replicas on 127.0.0.1 see the same cookies.
func (c *Client) At(baseURL string) *Client {
	return &Client{HTTP: c.HTTP, BaseURL: strings.TrimRight(baseURL, "/"), mu: c.mu, csrf: c.csrf}
}

// NoRedirect returns a client sharing this one's cookies that does not follow
// redirects, to inspect Location headers.
func (c *Client) NoRedirect() *Client {
	hc := *c.HTTP
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &Client{HTTP: &hc, BaseURL: c.BaseURL, mu: c.mu, csrf: c.csrf}
}

// Get fetches a path of the app (or an absolute URL).
func (c *Client) Get(t testing.TB, path string) *Response {
	t.Helper()
	return c.do(t, http.MethodGet, c.abs(path), nil, nil)
}

// PostForm posts a form to the app, adding the CSRF token (_csrf) of the last
// page seen unless vals has one; with no page seen yet it loads / first.
func (c *Client) PostForm(t testing.TB, path string, vals url.Values) *Response {
	t.Helper()
	if vals == nil {
		vals = url.Values{}
	}
	if !vals.Has("_csrf") {
		vals.Set("_csrf", c.CSRF(t))
	}
	return c.do(t, http.MethodPost, c.abs(path), strings.NewReader(vals.Encode()), http.Header{
		"Content-Type": {"application/x-www-form-urlencoded"},
	})
}

// DeletePermission deletes the permission with that id through the admin
// panel, as the admin's browser would: its page, then the delete form with
// the typed key. It returns the path of the fan-out page the answer
// redirects to, and fails the test on any other answer.
func (c *Client) DeletePermission(t testing.TB, permID, key string) (fanoutPath string) {
	t.Helper()
	path := "/admin/permissions/" + permID
	c.Get(t, path)
	resp := c.NoRedirect().PostForm(t, path+"/delete", url.Values{"confirm": {key}})
	fanoutPath = resp.Header.Get("Location")
	if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(fanoutPath, "/admin/fanouts/") {
		t.Fatalf("apptest: delete %s at %s = %d, Location %q; want 303 to its fan-out", key, c.BaseURL,
			resp.StatusCode, fanoutPath)
	}
	return fanoutPath
}

// HTMX sends a request as htmx would: HX-Request, HX-Current-URL and the
// X-CSRF-Token header from the last page's meta tag.
func (c *Client) HTMX(t testing.TB, method, path string, vals url.Values) *Response {
	t.Helper()
	h := http.Header{
		"Hx-Request":     {"true"},
		"Hx-Current-Url": {c.BaseURL + "/dashboard"},
		"X-Csrf-Token":   {c.CSRF(t)},
	}
	var body io.Reader
	if vals != nil {
		body = strings.NewReader(vals.Encode())
		h.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	return c.do(t, method, c.abs(path), body, h)
}

// LiveSync sends the live update a signed-in page at path asks for when a
// claims-changed event arrives: GET path from #live-sync, as htmx would,
// with the permission keys the page showed (space-separated).
func (c *Client) LiveSync(t testing.TB, path, shown string) *Response {
	t.Helper()
	sep := "?"
	if strings.Contains(path, "?") {
		sep = "&"
	}
	h := http.Header{
		"Hx-Request":     {"true"},
		"Hx-Trigger":     {"live-sync"},
		"Hx-Current-Url": {c.BaseURL + path},
	}
	return c.do(t, http.MethodGet, c.abs(path+sep+url.Values{"shown": {shown}}.Encode()), nil, h)
}

// Do sends an arbitrary request to the app with extra headers.
func (c *Client) Do(t testing.TB, method, path string, body io.Reader, h http.Header) *Response {
	t.Helper()
	return c.do(t, method, c.abs(path), body, h)
}

// CSRF returns the CSRF token from the last page's <meta name="csrf-token">,
// loading / when no page has been seen.
func (c *Client) CSRF(t testing.TB) string {
	t.Helper()
	c.mu.Lock()
	tok := *c.csrf
	c.mu.Unlock()
	if tok == "" {
		c.Get(t, "/")
		c.mu.Lock()
		tok = *c.csrf
		c.mu.Unlock()
	}
	return tok
}

// Cookie returns the app's cookie of that name, or nil.
func (c *Client) Cookie(name string) *http.Cookie {
	u, _ := url.Parse(c.BaseURL)
	for _, ck := range c.HTTP.Jar.Cookies(u) {
		if ck.Name == name {
			return ck
		}
	}
	return nil
}

// SetCookie sets a cookie for the app's URL.
func (c *Client) SetCookie(name, value string) {
	u, _ := url.Parse(c.BaseURL)
	c.HTTP.Jar.SetCookies(u, []*http.Cookie{{Name: name, Value: value, Path: "/"}})
}

func (c *Client) abs(path string) string {
	if strings.HasPrefix(path, "http://") || strings.HasPrefix(path, "https://") {
		return path
	}
	return c.BaseURL + path
}

func (c *Client) do(t testing.TB, method, u string, body io.Reader, h http.Header) *Response {
	t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), method, u, body)
	if err != nil {
		t.Fatalf("apptest: %s %s: %v", method, u, err)
	}
	for k, vs := range h {
		req.Header[k] = vs
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		t.Fatalf("apptest: %s %s: %v", method, u, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("apptest: read %s %s: %v", method, u, err)
	}
	r := &Response{Response: resp, Body: string(b)}
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") &&
		strings.HasPrefix(resp.Request.URL.String(), c.BaseURL) {
		if doc, err := goquery.NewDocumentFromReader(bytes.NewReader(b)); err == nil {
			r.doc = doc
			if tok, ok := doc.Find(`meta[name="csrf-token"]`).Attr("content"); ok && tok != "" {
				c.mu.Lock()
				*c.csrf = tok
				c.mu.Unlock()
			}
		}
	}
	return r
}

// ErrOffSiteRedirect is the error a Client returns instead of following a
// redirect to a host other than the app or devkinde.
var ErrOffSiteRedirect = errors.New("apptest: redirect off the test servers")

func hostOf(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return ""
	}
	return p.Host
}

// Response is a fully read response.
type Response struct {
	*http.Response
	Body string
	doc  *goquery.Document
}

// Doc parses the body as HTML.
func (r *Response) Doc(t testing.TB) *goquery.Document {
	t.Helper()
	if r.doc != nil {
		return r.doc
	}
	doc, err := goquery.NewDocumentFromReader(strings.NewReader(r.Body))
	if err != nil {
		t.Fatalf("apptest: parse HTML: %v", err)
	}
	r.doc = doc
	return doc
}

// Permissions returns the data-key of every [data-testid="permission"] item
// on the page that is not marked revoked.
func (r *Response) Permissions(t testing.TB) []string {
	t.Helper()
	var keys []string
	r.Doc(t).Find(`[data-testid="permission"]`).Each(func(_ int, s *goquery.Selection) {
		if s.AttrOr("data-revoked", "") == "true" {
			return
		}
		if k, ok := s.Attr("data-key"); ok {
			keys = append(keys, k)
		}
	})
	return keys
}

// TestID returns the elements with data-testid=id.
func (r *Response) TestID(t testing.TB, id string) *goquery.Selection {
	t.Helper()
	return r.Doc(t).Find(`[data-testid="` + id + `"]`)
}

func snippet(s string) string {
	if len(s) > 2000 {
		return s[:2000] + "…"
	}
	return s
}
