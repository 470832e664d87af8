package enforce

import (
	"net/netip"
	"strings"
)

// TrustedProxies decides whose X-Forwarded-For to believe.
type TrustedProxies []netip.Prefix

// Contains reports whether addr is a trusted proxy.
func (t TrustedProxies) Contains(addr netip.Addr) bool {
	addr = addr.Unmap()
	for _, p := range t {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}

// ClientIP returns the address a request should be attributed to. The
// socket peer is the client unless it is a trusted proxy; then the
// X-Forwarded-For hops are read from the right, skipping trusted proxies,
// and the first untrusted one is the client. Hops to the left of it were
// written by the client itself and cannot be believed. A malformed hop
// ends the walk at the last good address.
//
// xff holds the X-Forwarded-For header values in order (a request may
// carry several).
func (t TrustedProxies) ClientIP(peer netip.Addr, xff []string) netip.Addr {
	client := peer.Unmap()
	if !t.Contains(client) {
		return client
	}
	for i := len(xff) - 1; i >= 0; i-- {
		hops := xff[i]
		for hops != "" {
			var hop string
			if j := strings.LastIndexByte(hops, ','); j >= 0 {
				hop, hops = hops[j+1:], hops[:j]
			} else {
				hop, hops = hops, ""
			}
			addr, ok := parseHop(strings.TrimSpace(hop))
			if !ok {
				return client
			}
			client = addr
			if !t.Contains(addr) {
				return addr
			}
		}
	}
	return client
}

// DefaultIPv6Prefix is how many leading bits of an IPv6 address name one
// client: a /64 is what one subscriber, one VM or one container commonly
// holds, and hands out addresses from at will.
const DefaultIPv6Prefix = 64

// ClientNetwork is the network a client address is counted as, for
// per-client limits: an IPv4 address alone (a /32), an IPv6 address as
// its network of ipv6Prefix bits (0 means DefaultIPv6Prefix; the zone is
// dropped). An invalid address is returned as the zero Prefix.
func ClientNetwork(addr netip.Addr, ipv6Prefix int) netip.Prefix {
	addr = addr.Unmap()
	bits := addr.BitLen()
	if addr.Is6() {
		bits = ipv6Prefix
		if bits <= 0 || bits > 128 {
			bits = DefaultIPv6Prefix
		}
	}
	p, _ := addr.Prefix(bits)
	return p
}

// parseHop reads an address as proxies write it: "1.2.3.4",
// "2001:db8::1", "[2001:db8::1]:443" or "1.2.3.4:5678".
func parseHop(s string) (netip.Addr, bool) {
	if a, err := netip.ParseAddr(s); err == nil {
		return a.Unmap(), true
	}
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap(), true
	}
	return netip.Addr{}, false
}

// CleanPath returns the canonical form of a request path: one leading
// slash, no empty, "." or ".." segments, the trailing slash kept. Routes
// are matched against it, and the proxy forwards it, so that
// "/api/forms/../admin" cannot reach an admin route under a public pattern.
func CleanPath(p string) string {
	if p == "" {
		return "/"
	}
	if isClean(p) {
		return p
	}
	trailing := strings.HasSuffix(p, "/")
	var out []string
	for _, seg := range strings.Split(p, "/") {
		switch seg {
		case "", ".":
		case "..":
			if len(out) > 0 {
				out = out[:len(out)-1]
			}
		default:
			out = append(out, seg)
		}
	}
	c := "/" + strings.Join(out, "/")
	if trailing && c != "/" {
		c += "/"
	}
	return c
}

// isClean is the allocation-free check for the common, already clean path.
func isClean(p string) bool {
	if p[0] != '/' {
		return false
	}
	for i := 1; i < len(p); i++ {
		if p[i] != '/' {
			continue
		}
		seg := p[strings.LastIndexByte(p[:i], '/')+1 : i]
		if seg == "" || seg == "." || seg == ".." {
			return false
		}
	}
	last := p[strings.LastIndexByte(p, '/')+1:]
	return last != "." && last != ".."
}
