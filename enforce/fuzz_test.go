package enforce

import (
	"net/netip"
	"path"
	"slices"
	"strings"
	"testing"
)

// FuzzCleanPath checks CleanPath against path.Clean, and that its
// allocation-free fast path never accepts a path the slow path would
// change: a "/../" slipping through would let a public pattern reach an
// admin route. Seeds: testdata/fuzz/FuzzCleanPath.
func FuzzCleanPath(f *testing.F) {
	f.Fuzz(func(t *testing.T, p string) {
		got := CleanPath(p)
		want := path.Clean("/" + p)
		if strings.HasSuffix(p, "/") && want != "/" {
			want += "/"
		}
		if got != want {
			t.Fatalf("CleanPath(%q) = %q, want %q", p, got, want)
		}
		if again := CleanPath(got); again != got {
			t.Fatalf("CleanPath is not idempotent: %q -> %q -> %q", p, got, again)
		}
		for _, seg := range strings.Split(strings.Trim(got, "/"), "/") {
			if seg == "." || seg == ".." || (seg == "" && got != "/") {
				t.Fatalf("CleanPath(%q) = %q keeps segment %q", p, got, seg)
			}
		}
	})
}

// FuzzClientIP checks that X-Forwarded-For is believed only behind a
// trusted proxy, and that the answer is always the peer or a hop someone
// actually wrote. Seeds: testdata/fuzz/FuzzClientIP.
func FuzzClientIP(f *testing.F) {
	trusted := TrustedProxies{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("fd00::/8")}
	f.Fuzz(func(t *testing.T, peer string, xff1, xff2 string) {
		p, err := netip.ParseAddr(peer)
		if err != nil {
			return
		}
		got := trusted.ClientIP(p, []string{xff1, xff2})
		if !trusted.Contains(p) {
			if got != p.Unmap() {
				t.Fatalf("untrusted peer %s attributed to %s", p, got)
			}
			return
		}
		if got == p.Unmap() {
			return
		}
		var hops []netip.Addr
		for _, h := range strings.Split(xff1+","+xff2, ",") {
			if a, ok := parseHop(strings.TrimSpace(h)); ok {
				hops = append(hops, a)
			}
		}
		if !slices.Contains(hops, got) {
			t.Fatalf("client %s is neither the peer %s nor a hop of %q, %q", got, p, xff1, xff2)
		}
	})
}
