package metrics

import (
	"context"
	"fmt"
	"net/netip"
	"reflect"
	"testing"
	"time"

	"github.com/apiwarden/apiwarden/store/storetest"
)

// eraseFixture is traffic of a few keys over two days, written in many
// small flushes (blocks that small are stored uncompressed, so a byte scan
// sees what they hold) and a few large ones. The subject's records carry
// user agents and addresses no other record has.
type eraseFixture struct {
	t0      time.Time
	needles map[string][]byte // the subject's distinctive values, as stored
}

func writeEraseFixture(t *testing.T, rec *Recorder, subjectKey, subjectOwner string) eraseFixture {
	t.Helper()
	f := eraseFixture{t0: time.Date(2026, 11, 30, 22, 0, 0, 0, time.UTC), needles: map[string][]byte{}}
	keys := []struct{ key, owner string }{
		{subjectKey, subjectOwner}, {"key_other1", "org_other"}, {"key_other2", subjectOwner + "_not"}, {"key_other3", "org_other"},
	}
	at := f.t0
	for flush := range 40 {
		perFlush := 5
		if flush%10 == 9 {
			perFlush = 3000 // a few large, compressed blocks too
		}
		for i := range perFlush {
			k := keys[(flush+i)%len(keys)]
			r := Record{Time: at, RequestID: fmt.Sprintf("req-%d-%d", flush, i), Method: "GET", Route: "/api/forms/*",
				Path: "/api/forms/" + fmt.Sprint(i), Status: 200 + (i%3)*100, Latency: time.Duration(1+i%50) * time.Millisecond,
				KeyID: k.key, OwnerID: k.owner, Tier: "basic", UserAgent: "shared-agent/1.0",
				ClientIP: netip.AddrFrom4([4]byte{198, 51, 100, byte(i % 200)})}
			if k.key == subjectKey {
				n := (flush*7 + i) % 13
				r.UserAgent = fmt.Sprintf("ErasureSubjectAgent/%02d (distinctive)", n)
				r.ClientIP = netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 0xe5, 0xa5, 0xe0, 0x00, 0, 0, 0, 0, 0xfe, 0xed, 0xfa, byte(n)})
				f.needles[r.UserAgent] = []byte(r.UserAgent)
				f.needles[r.ClientIP.String()] = r.ClientIP.AsSlice()
			}
			rec.Record(&r)
			at = at.Add(37 * time.Second)
		}
		if err := rec.Flush(); err != nil {
			t.Fatal(err)
		}
	}
	return f
}

func keyCellSum(t *testing.T, rd *Reader, dim Dimension, value string) Cell {
	t.Helper()
	sum, err := rd.Sum(context.Background(), CellQuery{Interval: Hourly, Dimension: dim, Value: value})
	if err != nil {
		t.Fatal(err)
	}
	return sum
}

// without returns the records not matching drop, in order.
func without(recs []Record, drop func(*Record) bool) []Record {
	var out []Record
	for i := range recs {
		if !drop(&recs[i]) {
			out = append(out, recs[i])
		}
	}
	return out
}

// Erasing a key removes its raw records from the API and every byte of
// its user agents and addresses from the file; every other record reads
// back exactly as before, and rollups still sum unless asked otherwise.
func TestEraseKeyRemovesItsRecordsAndTheirBytes(t *testing.T) {
	for _, rollups := range []bool{false, true} {
		t.Run(fmt.Sprintf("rollups=%v", rollups), func(t *testing.T) {
			st := storetest.MustOpen(t)
			rec, rd := newTestRecorder(t, Options{Store: st})
			f := writeEraseFixture(t, rec, "key_subject", "org_subject")
			q := RecordQuery{Order: OldestFirst}
			before := allRecords(t, rd, q)
			subject := func(r *Record) bool { return r.KeyID == "key_subject" }
			want := without(before, subject)
			erased := len(before) - len(want)
			if found := fileHolds(t, st, f.needles); len(found) == 0 {
				t.Fatal("before the erasure a byte scan finds none of the subject's values: it could not tell")
			}
			totalBefore := keyCellSum(t, rd, DimTotal, "")
			keyBefore := keyCellSum(t, rd, DimKey, "key_subject")

			res, err := NewEraser(st, rec, nil).Erase(context.Background(), EraseRequest{KeyID: "key_subject", Rollups: rollups})
			if err != nil {
				t.Fatal(err)
			}
			if res.RawRecords != erased || res.BlocksRewritten+res.BlocksDeleted == 0 || res.ScrubbedPages == 0 {
				t.Fatalf("result %+v; want %d raw records erased, blocks touched and pages scrubbed", res, erased)
			}
			after := allRecords(t, rd, q)
			if !reflect.DeepEqual(after, want) {
				t.Fatalf("other records changed: %d after, want %d", len(after), len(want))
			}
			if got := allRecords(t, rd, RecordQuery{KeyID: "key_subject"}); len(got) != 0 {
				t.Fatalf("the records API still returns %d of the key's records", len(got))
			}
			if found := fileHolds(t, st, f.needles); len(found) > 0 {
				t.Fatalf("the file still holds the erased key's %v", found)
			}
			if got := keyCellSum(t, rd, DimTotal, ""); got.Count != totalBefore.Count {
				t.Errorf("total count %d, want %d unchanged", got.Count, totalBefore.Count)
			}
			keyAfter := keyCellSum(t, rd, DimKey, "key_subject")
			if rollups && keyAfter.Count != 0 {
				t.Errorf("the key's rollup cells still count %d", keyAfter.Count)
			}
			if !rollups && keyAfter.Count != keyBefore.Count {
				t.Errorf("the key's rollups count %d, want %d: billing must still sum", keyAfter.Count, keyBefore.Count)
			}
			if rollups && res.RollupCells == 0 {
				t.Errorf("result %+v names no rollup cells", res)
			}
			// Erasing again finds nothing.
			again, err := NewEraser(st, rec, nil).Erase(context.Background(), EraseRequest{KeyID: "key_subject", Rollups: rollups})
			if err != nil || again.RawRecords != 0 || again.RollupCells != 0 {
				t.Fatalf("second erasure: %+v, %v", again, err)
			}
		})
	}
}

// Erasing an owner removes the records of every key it owns, and with
// rollups its cells and its keys' cells; another owner's stay.
func TestEraseOwner(t *testing.T) {
	st := storetest.MustOpen(t)
	rec, rd := newTestRecorder(t, Options{Store: st})
	f := writeEraseFixture(t, rec, "key_owned", "org_subject")
	before := allRecords(t, rd, RecordQuery{Order: OldestFirst})
	want := without(before, func(r *Record) bool { return r.OwnerID == "org_subject" })
	res, err := NewEraser(st, rec, nil).Erase(context.Background(), EraseRequest{OwnerID: "org_subject", Rollups: true})
	if err != nil {
		t.Fatal(err)
	}
	if res.RawRecords != len(before)-len(want) {
		t.Fatalf("erased %d raw records, want %d", res.RawRecords, len(before)-len(want))
	}
	if after := allRecords(t, rd, RecordQuery{Order: OldestFirst}); !reflect.DeepEqual(after, want) {
		t.Fatalf("other records changed: %d after, want %d", len(after), len(want))
	}
	if found := fileHolds(t, st, f.needles); len(found) > 0 {
		t.Fatalf("the file still holds the erased owner's %v", found)
	}
	for _, c := range []struct {
		dim   Dimension
		value string
	}{{DimOwner, "org_subject"}, {DimKey, "key_owned"}} {
		if got := keyCellSum(t, rd, c.dim, c.value); got.Count != 0 {
			t.Errorf("%s %s cells still count %d", c.dim, c.value, got.Count)
		}
	}
	if got := keyCellSum(t, rd, DimOwner, "org_other"); got.Count == 0 {
		t.Error("another owner's cells went too")
	}
	if !reflect.DeepEqual(res.KeyIDs, []string{"key_owned"}) {
		t.Errorf("result names keys %v, want [key_owned]", res.KeyIDs)
	}
}

func TestEraseRefusesAnUnclearRequest(t *testing.T) {
	st := storetest.MustOpen(t)
	e := NewEraser(st, nil, nil)
	for _, req := range []EraseRequest{{}, {KeyID: "a", OwnerID: "b"}} {
		if _, err := e.Erase(context.Background(), req); err == nil {
			t.Errorf("Erase(%+v) succeeded", req)
		}
	}
}
