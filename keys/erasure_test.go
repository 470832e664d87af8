package keys_test

import (
	"testing"
	"time"

	"github.com/apiwarden/apiwarden/keys"
	"github.com/apiwarden/apiwarden/store/storetest"
)

// An erasure is recorded on a revoked key too, blanks name and meta when
// asked, and its event says who and how much, with the detail given.
func TestRecordErasure(t *testing.T) {
	clk := newClock(t0)
	svc := newService(t, storetest.MustOpen(t), clk)
	k, _ := mustCreate(t, svc, keys.CreateParams{Tier: "free", Name: "Jane's wedding site", Meta: map[string]string{"email": "jane@example.com"}})
	clk.Add(time.Second)
	if _, err := svc.Revoke(k.ID, "carol", "customer left"); err != nil {
		t.Fatal(err)
	}
	clk.Add(time.Second)
	got, err := svc.RecordErasure(k.ID, "dpo", "raw_records=12 rollup_cells=0", true)
	if err != nil {
		t.Fatal(err)
	}
	if got.Name != "" || len(got.Meta) != 0 {
		t.Errorf("name %q and meta %v left after blanking", got.Name, got.Meta)
	}
	if got.Status != keys.StatusRevoked {
		t.Errorf("status %s, want revoked", got.Status)
	}
	evs, _, err := svc.Events(k.ID, "", 1)
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 1 || evs[0].Type != keys.EventErased || evs[0].Actor != "dpo" ||
		evs[0].Detail != "raw_records=12 rollup_cells=0; name and meta blanked" {
		t.Fatalf("newest event %+v", evs)
	}
	if _, err := svc.RecordErasure("key_missing", "dpo", "", false); err == nil {
		t.Error("an erasure of a missing key was recorded")
	}
}
