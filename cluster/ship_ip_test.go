package cluster_test

import (
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/apiwarden/apiwarden/cluster"
	"github.com/apiwarden/apiwarden/metrics"
)

// A client address ships as PostgreSQL's inet, which has no IPv6 zone:
// a zone names an interface of the host that saw the request and means
// nothing on another, so shipping drops it (ship_rows.go) and the
// cluster's records show the address without it. Every other address
// reads back as it was recorded.
func TestClientAddressesShip(t *testing.T) {
	n := newShipNode(t, pg.Database(t), "node-a", nil)
	start := time.Now().Add(-time.Hour).Truncate(time.Hour)
	cases := []struct{ recorded, shipped string }{
		{"fe80::1%eth0", "fe80::1"},
		{"fe80::2%3", "fe80::2"},
		{"2001:db8::1", "2001:db8::1"},
		{"10.1.2.3", "10.1.2.3"},
		{"::ffff:10.1.2.3", "::ffff:10.1.2.3"},
		{"", ""},
	}
	for i, tc := range cases {
		rec := metrics.Record{Time: start.Add(time.Duration(i) * time.Second), RequestID: fmt.Sprint("ip-", i),
			Method: "GET", Route: "/", Path: "/", Status: 200}
		if tc.recorded != "" {
			rec.ClientIP = netip.MustParseAddr(tc.recorded)
		}
		if !n.rec.Record(&rec) {
			t.Fatal("record dropped")
		}
	}
	if err := n.rec.Flush(); err != nil {
		t.Fatal(err)
	}
	n.drain(t)
	src, err := cluster.NewSource(n.cluster, cluster.SourceOptions{Now: func() time.Time { return start.Add(time.Hour) }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(src.Close)
	page, err := src.Records(ctxFor(t, 30*time.Second), metrics.RecordQuery{From: start, Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, r := range page.Records {
		got[r.RequestID] = ""
		if r.ClientIP.IsValid() {
			got[r.RequestID] = r.ClientIP.String()
		}
	}
	for i, tc := range cases {
		if ip, ok := got[fmt.Sprint("ip-", i)]; !ok || ip != tc.shipped {
			t.Errorf("recorded %q: read back %q (found %v), want %q", tc.recorded, ip, ok, tc.shipped)
		}
	}
}
