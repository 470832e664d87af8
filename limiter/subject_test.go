package limiter

import (
	"net/netip"
	"testing"
)

// TestSubjectSpelling pins the bytes of subjects and route buckets. They
// are the keys of snapshots already on disk and of buckets already in
// Redis: if this test fails, an upgrade forgets every saved bucket.
func TestSubjectSpelling(t *testing.T) {
	for _, tc := range []struct {
		name string
		got  string
		want string
	}{
		{"key", string(KeySubject("key_01HZX")), "key_01HZX"},
		{"IPv4", string(IPSubject(netip.MustParseAddr("192.0.2.7"))), "ip:192.0.2.7"},
		{"IPv6", string(IPSubject(netip.MustParseAddr("2001:db8::1"))), "ip:2001:db8::1"},
		{"IPv4-mapped", string(IPSubject(netip.MustParseAddr("::ffff:192.0.2.7"))), "ip:::ffff:192.0.2.7"},
		{"zone", string(IPSubject(netip.MustParseAddr("fe80::1%eth0"))), "ip:fe80::1%eth0"},
		{"IPv6 /64", string(NetworkSubject(netip.MustParsePrefix("2001:db8:1:2::/64"))), "ip:2001:db8:1:2::/64"},
		{"IPv6 /128 as an address", string(NetworkSubject(netip.MustParsePrefix("2001:db8::1/128"))), "ip:2001:db8::1"},
		{"IPv4 /32 as an address", string(NetworkSubject(netip.MustParsePrefix("192.0.2.7/32"))), "ip:192.0.2.7"},
		{"route", string(RouteBucketOf("GET /v1/forms/{id}")), "route:GET /v1/forms/{id}"},
		{"catch-all route", string(RouteBucketOf("*")), "route:*"},
		{"snapshot key", string(appendKey(nil, entryKey{
			subject: IPSubject(netip.MustParseAddr("10.0.0.1")), route: RouteBucketOf("*"),
		})), "\x0bip:10.0.0.1route:*"},
		{"redis tier key", (&Redis{prefix: "p:"}).tierKey(IPSubject(netip.MustParseAddr("10.0.0.1"))), "p:{ip:10.0.0.1}"},
		{"redis route key", (&Redis{prefix: "p:"}).routeKey(KeySubject("key_1"), RouteBucketOf("POST /v1/x")), "p:{key_1}:r:route:POST /v1/x"},
	} {
		if tc.got != tc.want {
			t.Errorf("%s: %q, want %q", tc.name, tc.got, tc.want)
		}
	}
}

func TestSubjectAccessors(t *testing.T) {
	addr := netip.MustParseAddr("2001:db8::1")
	ip := IPSubject(addr)
	if got, ok := ip.IP(); !ok || got != addr {
		t.Errorf("IPSubject(%v).IP() = %v, %v", addr, got, ok)
	}
	if id, ok := ip.KeyID(); ok {
		t.Errorf("IPSubject(%v).KeyID() = %q, true; want not a key", addr, id)
	}
	key := KeySubject("key_abc")
	if id, ok := key.KeyID(); !ok || id != "key_abc" {
		t.Errorf("KeySubject.KeyID() = %q, %v", id, ok)
	}
	if got, ok := key.IP(); ok {
		t.Errorf("KeySubject.IP() = %v, true; want not an address", got)
	}
	if got, ok := Subject("ip:not-an-address").IP(); ok {
		t.Errorf("malformed address subject parsed as %v", got)
	}
}

func TestNetworkSubjectAccessors(t *testing.T) {
	for _, want := range []netip.Prefix{netip.MustParsePrefix("2001:db8:1:2::/64"), netip.MustParsePrefix("192.0.2.7/32")} {
		s := NetworkSubject(want)
		if got, ok := s.Network(); !ok || got != want {
			t.Errorf("NetworkSubject(%v).Network() = %v, %v", want, got, ok)
		}
	}
	if _, ok := NetworkSubject(netip.MustParsePrefix("2001:db8:1:2::/64")).IP(); ok {
		t.Error("a network subject reads as one address")
	}
	if got, ok := KeySubject("key_abc").Network(); ok {
		t.Errorf("KeySubject.Network() = %v, true; want not a network", got)
	}
}

func TestIPSubjectAllocatesOnce(t *testing.T) {
	addr := netip.MustParseAddr("2001:db8:85a3::8a2e:370:7334")
	if n := testing.AllocsPerRun(100, func() { _ = IPSubject(addr) }); n > 1 {
		t.Errorf("IPSubject allocates %v times, want at most 1", n)
	}
	network := netip.MustParsePrefix("2001:db8:85a3::/64")
	if n := testing.AllocsPerRun(100, func() { _ = NetworkSubject(network) }); n > 1 {
		t.Errorf("NetworkSubject allocates %v times, want at most 1", n)
	}
}
