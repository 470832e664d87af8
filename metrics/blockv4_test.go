package metrics

import (
	"fmt"
	"runtime"
	"syscall"
	"testing"
)

// setBlockVersion makes the recorder's next flushes write blocks of the
// given version: blockVersion3 writes them as binaries before version 4
// did, with the same encoder code path.
func (r *Recorder) setBlockVersion(t testing.TB, v byte) {
	t.Helper()
	if v != blockVersion3 && v != blockVersion4 {
		t.Fatalf("the encoder writes versions 3 and 4, not %d", v)
	}
	r.flushMu.Lock()
	defer r.flushMu.Unlock()
	r.enc.version = v
}

func BenchmarkV4KeyRead(b *testing.B) {
	recs := benchRecords(maxBlockRecords, 100)
	for _, v := range []byte{blockVersion3, blockVersion4} {
		dict := newMemDict()
		enc := newBlockEncoder()
		enc.version = v
		block, err := enc.encode(nil, sortedPointers(recs), dict.intern)
		if err != nil {
			b.Fatal(err)
		}
		h, body, _ := parseBlockHeader(block)
		key := recs[len(recs)/2].KeyID
		id, _ := dict.intern(key)
		q := RecordQuery{KeyID: key}
		f := recordFilter{q: &q, fromMicro: -1 << 62, toMicro: 1 << 62}
		f.strs[filterKey] = stringFilter{col: colKey, s: key, id: id, inDict: true}
		var dec blockDecoder
		sel := make([]bool, h.count)
		b.Run(fmt.Sprintf("v%d", v), func(b *testing.B) {
			var out []Record
			var ru0, ru1 syscall.Rusage
			_ = syscall.Getrusage(syscall.RUSAGE_THREAD, &ru0)
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			for b.Loop() {
				view, err := dec.open(h, body)
				if err != nil {
					b.Fatal(err)
				}
				hit, err := f.selectRows(h, &view.cols, sel)
				if err != nil || !hit {
					b.Fatal(err, hit)
				}
				if err := dec.load(view, sel); err != nil {
					b.Fatal(err)
				}
				if out, err = decodeColumns(view, dict.resolve, out[:0], sel); err != nil {
					b.Fatal(err)
				}
			}
			_ = syscall.Getrusage(syscall.RUSAGE_THREAD, &ru1)
			b.ReportMetric(float64(ru1.Utime.Nano()+ru1.Stime.Nano()-ru0.Utime.Nano()-ru0.Stime.Nano())/1e6/float64(b.N), "cpu-ms/op")
			b.ReportMetric(float64(len(out)), "rows")
		})
	}
}
