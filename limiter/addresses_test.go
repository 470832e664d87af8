package limiter

import (
	"bytes"
	"net/netip"
	"testing"

	"github.com/apiwarden/apiwarden/store"
	"github.com/apiwarden/apiwarden/store/storetest"
)

// With AddressesInMemory a snapshot stores key subjects but no client
// address, and deletes the address records an earlier run stored once
// their buckets change.
func TestAddressesInMemoryKeepsAddressesOffDisk(t *testing.T) {
	s := storetest.MustOpen(t)
	addr := IPSubject(netip.MustParseAddr("203.0.113.77"))
	stored := func() (keys, addresses int) {
		t.Helper()
		err := s.View(func(tx *store.Tx) error {
			return tx.Bucket(store.BucketLimiter).ForEach(func(k, _ []byte) error {
				if bytes.Contains(k, []byte(ipPrefix)) {
					addresses++
				} else {
					keys++
				}
				return nil
			})
		})
		if err != nil {
			t.Fatal(err)
		}
		return keys, addresses
	}

	before := newTestLimiter(t, Options{Store: s}) // an earlier run, storing addresses
	before.AllowAt(t0, Request{Subject: addr, Tier: "free"})
	if err := before.Snapshot(); err != nil {
		t.Fatal(err)
	}
	if _, addresses := stored(); addresses != 1 {
		t.Fatalf("%d address records without the option; the test needs one", addresses)
	}
	before.Stop()

	l := newTestLimiter(t, Options{Store: s, AddressesInMemory: true})
	l.AllowAt(t0, Request{Subject: addr, Tier: "free"})
	l.AllowAt(t0, Request{Subject: NetworkSubject(netip.MustParsePrefix("2001:db8:1:2::/64")), Tier: "free"})
	l.AllowAt(t0, Request{Subject: "key_1", Tier: "free"})
	if err := l.Snapshot(); err != nil {
		t.Fatal(err)
	}
	if keys, addresses := stored(); keys != 1 || addresses != 0 {
		t.Fatalf("stored %d key and %d address records, want 1 and 0", keys, addresses)
	}
	// In memory the address still has its own, partly used bucket.
	if u := l.Peek(t0, addr, "free"); u.Minute.Remaining != u.Minute.Limit-2 {
		t.Errorf("the address's bucket in memory: %+v", u.Minute)
	}
}
