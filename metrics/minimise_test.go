package metrics

import (
	"net/netip"
	"testing"
	"time"

	"github.com/apiwarden/apiwarden/store"
	"github.com/apiwarden/apiwarden/store/storetest"
)

// fileHolds reports which of needles occur anywhere in the store's file.
func fileHolds(t testing.TB, st *store.Store, needles map[string][]byte) []string {
	t.Helper()
	return storetest.FileHolds(t, st.Path(), needles)
}

// addressForms are the ways an address can sit on disk: the binary form
// raw blocks use (4 or 16 bytes) and its text.
func addressForms(ip netip.Addr) map[string][]byte {
	bin, _ := ip.MarshalBinary()
	return map[string][]byte{ip.String() + " (binary)": bin, ip.String() + " (text)": []byte(ip.String())}
}

func TestTruncateClientIP(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"203.0.113.77", "203.0.113.0"},
		{"::ffff:203.0.113.77", "203.0.113.0"},
		{"2001:db8:dead:beef:1:2:3:4", "2001:db8:dead::"},
		{"fe80::1%eth0", "fe80::"},
	} {
		if got := TruncateClientIP(netip.MustParseAddr(c.in)); got.String() != c.want {
			t.Errorf("TruncateClientIP(%s) = %s, want %s", c.in, got, c.want)
		}
	}
	if got := TruncateClientIP(netip.Addr{}); got.IsValid() {
		t.Errorf("an invalid address came back as %s", got)
	}
}

// With client_ip "truncated" or "none" no full address reaches the file
// in any form; with "full" the same scan finds them, so the scan can see
// what it looks for. The caller's record keeps the full address.
func TestMinimisationKeepsAddressesOffDisk(t *testing.T) {
	clients := []netip.Addr{
		netip.MustParseAddr("203.0.113.77"),
		netip.MustParseAddr("2001:db8:dead:beef:cafe:f00d:1234:5678"),
	}
	const agent = "distinctive-agent/7.7 (minimisation test)"
	for _, c := range []struct {
		policy    ClientIPPolicy
		dropAgent bool
		want      []string // stored addresses, in request order
	}{
		{ClientIPFull, false, []string{"203.0.113.77", "2001:db8:dead:beef:cafe:f00d:1234:5678"}},
		{ClientIPTruncated, false, []string{"203.0.113.0", "2001:db8:dead::"}},
		{ClientIPNone, true, []string{"invalid IP", "invalid IP"}},
	} {
		t.Run(c.policy.String(), func(t *testing.T) {
			st := storetest.MustOpen(t)
			rec, rd := newTestRecorder(t, Options{Store: st, Minimise: Minimisation{ClientIP: c.policy, DropUserAgent: c.dropAgent}})
			t0 := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
			for i, ip := range clients {
				// One record per flush: a block that small is stored
				// uncompressed, so anything kept is visible to a scan.
				in := Record{Time: t0.Add(time.Duration(i) * time.Second), KeyID: "key_min", Status: 200, ClientIP: ip, UserAgent: agent}
				rec.Record(&in)
				if in.ClientIP != ip {
					t.Fatalf("Record changed the caller's address to %s", in.ClientIP)
				}
				if err := rec.Flush(); err != nil {
					t.Fatal(err)
				}
			}
			got := allRecords(t, rd, RecordQuery{From: t0, To: t0.Add(time.Hour), Order: OldestFirst})
			if len(got) != len(clients) {
				t.Fatalf("%d records, want %d", len(got), len(clients))
			}
			for i, r := range got {
				if r.ClientIP.String() != c.want[i] {
					t.Errorf("record %d: client_ip %s, want %s", i, r.ClientIP, c.want[i])
				}
				if wantAgent := !c.dropAgent; (r.UserAgent == agent) != wantAgent {
					t.Errorf("record %d: user agent %q stored: want stored %v", i, r.UserAgent, wantAgent)
				}
			}
			needles := map[string][]byte{}
			for _, ip := range clients {
				for k, v := range addressForms(ip) {
					needles[k] = v
				}
			}
			found := fileHolds(t, st, needles)
			if c.policy == ClientIPFull {
				if len(found) == 0 {
					t.Fatal("the scan finds no full address even when they are stored: it cannot tell")
				}
				return
			}
			if len(found) > 0 {
				t.Errorf("full addresses on disk with client_ip %q: %v", c.policy, found)
			}
			if holds := fileHolds(t, st, map[string][]byte{"agent": []byte(agent)}); c.dropAgent && len(holds) > 0 {
				t.Errorf("user agent on disk with user_agent = false")
			}
		})
	}
}

func TestParseClientIPPolicy(t *testing.T) {
	for _, name := range []string{"full", "truncated", "none"} {
		p, err := ParseClientIPPolicy(name)
		if err != nil || p.String() != name {
			t.Errorf("ParseClientIPPolicy(%q) = %v, %v", name, p, err)
		}
	}
	if p, err := ParseClientIPPolicy(""); err != nil || p != ClientIPFull {
		t.Errorf(`ParseClientIPPolicy("") = %v, %v; want full`, p, err)
	}
	if _, err := ParseClientIPPolicy("partial"); err == nil {
		t.Error("ParseClientIPPolicy accepted \"partial\"")
	}
}
