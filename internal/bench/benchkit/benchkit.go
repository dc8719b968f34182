// Package benchkit holds what the benchmark programs under cmd/ share:
// signing in through devkinde's form like a browser, and summarising
// samples. It is for benchmarks only; permsync itself never imports it.
package benchkit

import (
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/PuerkitoBio/goquery"
)

// SignIn signs in at base (GET base/login, devkinde's form, the callback)
// with email and password, as a browser would, and returns the Cookie
// header the signed-in browser sends to base, and the page the sign-in
// ended on (which must be /dashboard).
func SignIn(hc *http.Client, base, email, password string) (cookie string, body []byte, err error) {
	jar, _ := cookiejar.New(nil)
	c := *hc
	c.Jar = jar
	if c.Timeout == 0 {
		c.Timeout = 30 * time.Second
	}
	resp, err := c.Get(base + "/login")
	if err != nil {
		return "", nil, err
	}
	doc, err := goquery.NewDocumentFromReader(resp.Body)
	resp.Body.Close()
	if err != nil {
		return "", nil, err
	}
	form := doc.Find("form").FilterFunction(func(_ int, s *goquery.Selection) bool {
		return s.Find(`input[name="email"]`).Length() > 0
	}).First()
	if form.Length() == 0 {
		return "", nil, fmt.Errorf("no sign-in form at %s (status %d)", resp.Request.URL, resp.StatusCode)
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
	to, err := resp.Request.URL.Parse(action)
	if err != nil {
		return "", nil, err
	}
	resp, err = c.PostForm(to.String(), vals)
	if err != nil {
		return "", nil, err
	}
	body, err = io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return "", nil, err
	}
	if resp.StatusCode != http.StatusOK || resp.Request.URL.Path != "/dashboard" {
		return "", nil, fmt.Errorf("sign-in as %s ended at %s with %d", email, resp.Request.URL, resp.StatusCode)
	}
	u, _ := url.Parse(base)
	var parts []string
	for _, ck := range jar.Cookies(u) {
		parts = append(parts, ck.Name+"="+ck.Value)
	}
	return strings.Join(parts, "; "), body, nil
}

// Median returns the median of xs (0 for none).
func Median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if n := len(s); n%2 == 1 {
		return s[n/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// Percentile returns the p-th percentile (0..100, nearest rank) of ds.
func Percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(float64(len(s))*p/100+0.999999) - 1
	return s[max(0, min(i, len(s)-1))]
}
