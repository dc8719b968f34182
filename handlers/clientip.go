package handlers

import (
	"net"
	"net/http"
	"net/netip"

	"github.com/labstack/echo/v4"
)

// clientIPExtractor is how the app learns a client's address (c.RealIP()),
// for logs, refused webhooks and the /metrics check. Echo's default reads
// X-Forwarded-For and X-Real-IP from anyone, so a client could name any
// address it liked. Here, with no trusted proxies the address is the
// socket's peer, whatever the headers say; with trusted proxies
// (PERMSYNC_TRUSTED_PROXIES), X-Forwarded-For is read from the right,
// skipping only hops inside those ranges, and the first address outside
// them is the client. Loopback, link-local and private ranges are not
// trusted unless listed.
func clientIPExtractor(trusted []netip.Prefix) echo.IPExtractor {
	if len(trusted) == 0 {
		return echo.ExtractIPDirect()
	}
	opts := []echo.TrustOption{echo.TrustLoopback(false), echo.TrustLinkLocal(false), echo.TrustPrivateNet(false)}
	for _, p := range trusted {
		p = p.Masked()
		opts = append(opts, echo.TrustIPRange(&net.IPNet{
			IP: net.IP(p.Addr().AsSlice()), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen()),
		}))
	}
	return echo.ExtractIPFromXFFHeader(opts...)
}

// forwardingHeaders are the headers proxies and CDNs use to pass a client's
// address on. Their mere presence, even empty, means the request may have
// come through a proxy.
var forwardingHeaders = []string{
	"Forwarded", "X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto", "X-Real-Ip", "X-Client-Ip",
	"Cf-Connecting-Ip", "True-Client-Ip", "X-Cluster-Client-Ip", "Fastly-Client-Ip", "X-Original-Forwarded-For",
	"Client-Ip", "Via",
}

// forwarded reports whether r carries any forwarding header.
func forwarded(r *http.Request) bool {
	for _, h := range forwardingHeaders {
		if _, ok := r.Header[h]; ok {
			return true
		}
	}
	return false
}
