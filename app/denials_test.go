package app

import (
	"testing"
	"time"

	"github.com/apiwarden/apiwarden/keys"
	"github.com/apiwarden/apiwarden/metrics"
	"github.com/apiwarden/apiwarden/store/storetest"
)

// An ip_denied audit event keeps the address only as precisely as
// client_ip allows.
func TestDenialEventsAreMinimised(t *testing.T) {
	for _, c := range []struct {
		policy metrics.ClientIPPolicy
		want   string
	}{
		{metrics.ClientIPFull, "203.0.113.77"},
		{metrics.ClientIPTruncated, "203.0.113.0"},
		{metrics.ClientIPNone, ""},
	} {
		svc, err := keys.New(keys.Options{Store: storetest.MustOpen(t), Secret: []byte("denials-test-secret-0123456789"), Policy: keys.Policy{Tiers: []string{"free"}, DefaultTier: "free"}})
		if err != nil {
			t.Fatal(err)
		}
		k, _, err := svc.Create(keys.CreateParams{Tier: "free"}, "test")
		if err != nil {
			t.Fatal(err)
		}
		minimisedDenials{svc, c.policy}.RecordDenial(time.Now(), k.ID, keys.EventIPDenied, "203.0.113.77")
		if err := svc.Flush(); err != nil {
			t.Fatal(err)
		}
		evs, _, err := svc.Events(k.ID, "", 1)
		if err != nil || len(evs) != 1 || evs[0].Type != keys.EventIPDenied || evs[0].Detail != c.want {
			t.Errorf("%s: events %+v, %v; want an ip_denied with %q", c.policy, evs, err, c.want)
		}
		svc.Close()
	}
}
