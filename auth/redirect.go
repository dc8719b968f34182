package auth

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
)

// maxRedirectLen bounds a redirect target.
const maxRedirectLen = 2048

// RedirectPath is the one check for every place permsync redirects to a
// target it was given: return_to on sign-in and admin forms, and
// KINDE_POST_LOGIN_REDIRECT_URL. It accepts a path on this site ("/reports",
// "/reports?sort=name") or an absolute URL on the site's own origin
// ("https://app.example.com/dashboard", which Kinde's SDKs put in
// KINDE_POST_LOGIN_REDIRECT_URL), and returns the relative path to redirect
// to, so a redirect never leaves the site. It refuses another host, another
// scheme or port, "//evil.example", "/\evil.example" (browsers read a
// backslash as a slash), user info, and control characters. siteURL may be
// "" to accept paths only. The error is one line saying why.
func RedirectPath(raw, siteURL string) (string, error) {
	switch {
	case raw == "":
		return "", errors.New("empty")
	case len(raw) > maxRedirectLen:
		return "", fmt.Errorf("longer than %d characters", maxRedirectLen)
	case strings.ContainsAny(raw, "\\"):
		return "", errors.New("contains a backslash")
	}
	for _, r := range raw {
		if r < 0x20 || r == 0x7f {
			return "", errors.New("contains a control character")
		}
	}
	if raw[0] != '/' {
		return absoluteOnSite(raw, siteURL)
	}
	if strings.HasPrefix(raw, "//") {
		return "", errors.New("starts with // (a URL on another host)")
	}
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil || !strings.HasPrefix(u.Path, "/") {
		return "", errors.New("not a plain path")
	}
	return raw, nil
}

// absoluteOnSite accepts an absolute URL on siteURL's origin and returns its
// path, query and fragment.
func absoluteOnSite(raw, siteURL string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return "", errors.New("neither a path starting with / nor an absolute URL")
	}
	if siteURL == "" {
		return "", errors.New("an absolute URL, and no site URL is known to compare it with")
	}
	site, err := url.Parse(siteURL)
	if err != nil || site.Host == "" {
		return "", errors.New("the site URL is not an absolute URL")
	}
	if u.User != nil {
		return "", errors.New("carries user info")
	}
	if origin(u) != origin(site) {
		return "", fmt.Errorf("on %s, not on this site (%s)", origin(u), origin(site))
	}
	rest := u.EscapedPath()
	if rest == "" {
		rest = "/"
	}
	if u.RawQuery != "" {
		rest += "?" + u.RawQuery
	}
	if u.Fragment != "" {
		rest += "#" + u.EscapedFragment()
	}
	// The path part must itself be a safe path ("https://site//evil" is not).
	return RedirectPath(rest, "")
}

// origin is scheme://host[:port] in lower case, without a default port.
func origin(u *url.URL) string {
	scheme, host, port := strings.ToLower(u.Scheme), strings.ToLower(u.Hostname()), u.Port()
	if (scheme == "https" && port == "443") || (scheme == "http" && port == "80") {
		port = ""
	}
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	if port != "" {
		host += ":" + port
	}
	return scheme + "://" + host
}

// SafeReturnTo accepts only a relative path on this site (RedirectPath with
// no site URL). "//evil.example", "/\evil.example" and
// "https://evil.example" are all refused.
func SafeReturnTo(s string) (string, bool) {
	p, err := RedirectPath(s, "")
	return p, err == nil
}
