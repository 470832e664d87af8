package metrics

import (
	"bytes"
	"compress/flate"
	"encoding/binary"
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/apiwarden/apiwarden/decision"
	"github.com/apiwarden/apiwarden/store"
	"github.com/apiwarden/apiwarden/store/storetest"
)

// Golden blocks pin the on-disk formats that existing data files hold, so
// a change to the codec cannot silently stop old files from reading:
// testdata/block-v<N>.bin is a block of goldenTraffic as the version-N
// encoder wrote it, testdata/block-v<N>.dict.json the dictionary it refers
// to (element i is id i+1) and testdata/golden-records.json the records
// every golden block decodes to. Only the current version can be
// rewritten (-write-golden); older ones stay as their encoder left them.

var writeGolden = flag.Bool("write-golden", false, "write testdata/block-v<blockVersion>.* from the current encoder")

const goldenRecordsPath = "testdata/golden-records.json"

// goldenRecord spells a Record in plain JSON types, so the file does not
// depend on how Record's fields marshal.
type goldenRecord struct {
	Time          string `json:"time"`
	RequestID     string `json:"request_id"`
	Method        string `json:"method"`
	Route         string `json:"route"`
	Path          string `json:"path"`
	Status        int    `json:"status"`
	LatencyUS     int64  `json:"latency_us"`
	UpstreamUS    int64  `json:"upstream_us"`
	RequestBytes  int64  `json:"request_bytes"`
	ResponseBytes int64  `json:"response_bytes"`
	KeyID         string `json:"key_id"`
	OwnerID       string `json:"owner_id"`
	Tier          string `json:"tier"`
	ClientIP      string `json:"client_ip"`
	Country       string `json:"country"`
	UserAgent     string `json:"user_agent"`
	ErrorCategory uint8  `json:"error_category"`
	CacheStatus   uint8  `json:"cache_status"`
	Decision      string `json:"decision"`
}

func toGolden(r *Record) goldenRecord {
	ip := ""
	if r.ClientIP.IsValid() {
		ip = r.ClientIP.String()
	}
	return goldenRecord{
		Time: r.Time.Format(time.RFC3339Nano), RequestID: r.RequestID, Method: r.Method, Route: r.Route,
		Path: r.Path, Status: r.Status, LatencyUS: r.Latency.Microseconds(), UpstreamUS: r.UpstreamLatency.Microseconds(),
		RequestBytes: r.RequestBytes, ResponseBytes: r.ResponseBytes, KeyID: r.KeyID, OwnerID: r.OwnerID,
		Tier: r.Tier, ClientIP: ip, Country: r.Country, UserAgent: r.UserAgent,
		ErrorCategory: uint8(r.ErrorCategory), CacheStatus: uint8(r.CacheStatus), Decision: r.Decision.String(),
	}
}

func (g *goldenRecord) record(t *testing.T) Record {
	t.Helper()
	tm, err := time.Parse(time.RFC3339Nano, g.Time)
	if err != nil {
		t.Fatal(err)
	}
	var ip netip.Addr
	if g.ClientIP != "" {
		if ip, err = netip.ParseAddr(g.ClientIP); err != nil {
			t.Fatal(err)
		}
	}
	return Record{
		Time: tm.UTC(), RequestID: g.RequestID, Method: g.Method, Route: g.Route, Path: g.Path, Status: g.Status,
		Latency: time.Duration(g.LatencyUS) * time.Microsecond, UpstreamLatency: time.Duration(g.UpstreamUS) * time.Microsecond,
		RequestBytes: g.RequestBytes, ResponseBytes: g.ResponseBytes, KeyID: g.KeyID, OwnerID: g.OwnerID,
		Tier: g.Tier, ClientIP: ip, Country: g.Country, UserAgent: g.UserAgent,
		ErrorCategory: ErrorCategory(g.ErrorCategory), CacheStatus: CacheStatus(g.CacheStatus), Decision: mustParseDecision(g.Decision),
	}
}

// goldenTraffic is realistic traffic plus what an attacker sends: random
// user agents, odd methods and country header values. It is built from its
// own fixed lists so that changes to trafficGen do not matter.
func goldenTraffic() []Record {
	rng := rand.New(rand.NewPCG(2026, 11))
	methods := []string{"GET", "GET", "GET", "POST", "PATCH", "DELETE"}
	uas := []string{"curl/8.5.0", "python-requests/2.32.3", "Go-http-client/1.1", ""}
	countries := []string{"US", "DE", "", "GB"}
	start := time.Date(2026, 3, 14, 9, 0, 0, 0, time.UTC)
	recs := make([]Record, 200)
	for i := range recs {
		k := rng.IntN(20)
		rec := Record{
			Time:            start.Add(time.Duration(i)*137*time.Millisecond + time.Duration(rng.IntN(1000))*time.Nanosecond),
			RequestID:       fmt.Sprintf("aw1-%d", 1000+i),
			Method:          methods[rng.IntN(len(methods))],
			Route:           fmt.Sprintf("/api/r%d/*", rng.IntN(5)),
			Path:            fmt.Sprintf("/api/r%d/%d", rng.IntN(5), rng.IntN(100)),
			Status:          []int{200, 200, 201, 404, 429, 502}[rng.IntN(6)],
			Latency:         time.Duration(rng.IntN(200_000)) * time.Microsecond,
			RequestBytes:    int64(rng.IntN(5000)),
			ResponseBytes:   int64(rng.IntN(50000)),
			KeyID:           fmt.Sprintf("key_%02d", k),
			OwnerID:         fmt.Sprintf("org_%d", k%7),
			Tier:            []string{"free", "basic", "premium"}[k%3],
			ClientIP:        netip.AddrFrom4([4]byte{10, 0, byte(k), byte(rng.IntN(4))}),
			Country:         countries[k%len(countries)],
			UserAgent:       uas[k%len(uas)],
			ErrorCategory:   ErrorCategory(rng.IntN(int(errorCategoryCount))),
			CacheStatus:     CacheStatus(rng.IntN(int(cacheStatusCount))),
			Decision:        []decision.Code{decision.Valid, decision.Valid, decision.RateLimited, decision.NotFound}[rng.IntN(4)],
			UpstreamLatency: time.Duration(rng.IntN(1000)) * time.Microsecond,
		}
		if i%3 == 0 { // the attacker's share
			rec.UserAgent = fmt.Sprintf("evil/%016x", rng.Uint64())
			rec.Method = []string{"GET", "FOO", "X-" + fmt.Sprint(rng.IntN(1e6)), "propfind"}[rng.IntN(4)]
			rec.Country = []string{"US", "zz", "<script>", "\x00\x01"}[rng.IntN(4)]
		}
		if i%50 == 7 {
			rec.ClientIP = netip.MustParseAddr("2a02:db8::1")
		}
		recs[i] = rec
	}
	return recs
}

func goldenPaths(version int) (bin, dict string) {
	base := filepath.Join("testdata", fmt.Sprintf("block-v%d", version))
	return base + ".bin", base + ".dict.json"
}

func TestWriteGoldenBlock(t *testing.T) {
	if !*writeGolden {
		t.Skip("run with -write-golden to rewrite testdata/block-v<N>.*")
	}
	ptrs := sortedPointers(goldenTraffic())
	dict := newMemDict()
	block, err := newBlockEncoder().encode(nil, ptrs, dict.intern)
	if err != nil {
		t.Fatal(err)
	}
	dictJSON, err := json.Marshal(dict.strs[1:])
	if err != nil {
		t.Fatal(err)
	}
	// One record a line keeps the file small and its diffs readable.
	js := []byte("[")
	for i, p := range ptrs {
		line, err := json.Marshal(toGolden(p))
		if err != nil {
			t.Fatal(err)
		}
		if i > 0 {
			js = append(js, ',')
		}
		js = append(append(js, '\n'), line...)
	}
	js = append(js, "\n]\n"...)
	binPath, dictPath := goldenPaths(blockVersion)
	for path, data := range map[string][]byte{binPath: block, dictPath: append(dictJSON, '\n'), goldenRecordsPath: js} {
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// readGolden loads a golden block, a memDict holding its dictionary (ids as
// in the file) and the records it must decode to.
func readGolden(t *testing.T, version int) ([]byte, *memDict, []Record) {
	t.Helper()
	binPath, dictPath := goldenPaths(version)
	block, err := os.ReadFile(binPath)
	if err != nil {
		t.Fatal(err)
	}
	var strs []string
	var golden []goldenRecord
	for path, v := range map[string]any{dictPath: &strs, goldenRecordsPath: &golden} {
		js, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(js, v); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
	}
	dict := newMemDict()
	for i, s := range strs {
		if id, _ := dict.intern(s); id != uint64(i+1) {
			t.Fatalf("golden dictionary: %q got id %d, want %d", s, id, i+1)
		}
	}
	want := make([]Record, len(golden))
	for i := range golden {
		want[i] = golden[i].record(t)
	}
	return block, dict, want
}

func TestGoldenBlocksDecode(t *testing.T) {
	for _, tc := range []struct {
		version int
		// clientInDict: the block interns the strings clients choose
		// (user agent, method, country).
		clientInDict bool
	}{
		{blockVersion1, true},
		{2, false},
		{blockVersion3, false},
		{blockVersion4, false},
	} {
		t.Run(fmt.Sprintf("v%d", tc.version), func(t *testing.T) {
			block, dict, want := readGolden(t, tc.version)
			interned := map[string]bool{}
			for _, s := range dict.strs {
				interned[s] = true
			}
			clientInDict := false
			for i := range want {
				for _, s := range []string{want[i].UserAgent, want[i].Method, want[i].Country} {
					clientInDict = clientInDict || (s != "" && interned[s])
				}
			}
			if clientInDict != tc.clientInDict {
				t.Errorf("client-chosen strings in the dictionary: %v, want %v", clientInDict, tc.clientInDict)
			}
			if block[0] != byte(tc.version) {
				t.Fatalf("golden block has version %d", block[0])
			}
			var dec blockDecoder
			got, err := dec.decode(block, dict.resolve, nil)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(want) {
				t.Fatalf("%d records, want %d", len(got), len(want))
			}
			for i := range want {
				if !reflect.DeepEqual(got[i], want[i]) {
					t.Fatalf("record %d:\n got %+v\nwant %+v", i, got[i], want[i])
				}
			}
		})
	}
}

// A data file written before version 2 keeps its version-1 blocks until
// retention drops them, while new flushes add version-2 blocks to the same
// days. Queries must see both, also when they filter on a column that
// moved out of the dictionary.
func TestRecordsReadsMixedBlockVersions(t *testing.T) {
	block, dict, old := readGolden(t, blockVersion1)
	st := storetest.MustOpen(t)
	err := st.Update(func(tx *store.Tx) error {
		b := tx.Bucket(store.BucketDict)
		w := newDictWriter()
		for id, s := range dict.strs[1:] {
			if got, err := w.intern(b, s); err != nil || got != uint64(id+1) {
				return fmt.Errorf("intern %q: id %d, %v; want %d", s, got, err, id+1)
			}
		}
		raw := tx.Bucket(store.BucketRaw)
		day, err := raw.CreateBucketIfNotExists(dayName(Daily.number(old[0].Time)))
		if err != nil {
			return err
		}
		seq, err := raw.NextSequence()
		if err != nil {
			return err
		}
		return day.Put(blockKey(seq), block)
	})
	if err != nil {
		t.Fatal(err)
	}

	// The same traffic again, and a method no version-1 block has.
	fresh := goldenTraffic()
	for i := range fresh {
		if i%10 == 0 {
			fresh[i].Method = "BREW"
		}
	}
	r, rd := newTestRecorder(t, Options{Store: st, Now: func() time.Time { return old[0].Time }})
	if n := r.RecordBatch(fresh); n != len(fresh) {
		t.Fatalf("buffer took %d records", n)
	}
	if err := r.Flush(); err != nil {
		t.Fatal(err)
	}
	all := slices.Concat(old, sanitizedSorted(fresh))

	for _, tc := range []struct {
		name string
		q    RecordQuery
		none bool // nothing matches
	}{
		{"all", RecordQuery{}, false},
		{"odd method in both versions", RecordQuery{Method: "FOO"}, false},
		{"common method", RecordQuery{Method: "GET"}, false},
		{"lower-case method", RecordQuery{Method: "propfind"}, false},
		{"method only version 2 has", RecordQuery{Method: "BREW"}, false},
		{"method never recorded", RecordQuery{Method: "NEVER"}, true},
		{"key", RecordQuery{KeyID: "key_07"}, false},
		{"key and method", RecordQuery{KeyID: "key_07", Method: "DELETE"}, false},
		{"route, method and status", RecordQuery{Route: "/api/r3/*", Method: "DELETE", StatusClass: 4}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q := tc.q
			f := recordFilter{q: &q, fromMicro: math.MinInt64, toMicro: math.MaxInt64}
			want := 0
			for i := range all {
				if f.match(&all[i]) {
					want++
				}
			}
			if (want == 0) != tc.none {
				t.Fatalf("%d records match in the fixture", want)
			}
			got := allRecords(t, rd, q)
			if len(got) != want {
				t.Fatalf("%d records, want %d", len(got), want)
			}
			for i := range got {
				if !f.match(&got[i]) {
					t.Fatalf("record %d does not match: %+v", i, got[i])
				}
			}
		})
	}
}

// sanitizedSorted returns recs as a flush stores them: sanitized, sorted by time.
func sanitizedSorted(recs []Record) []Record {
	out := make([]Record, len(recs))
	for i, p := range sortedPointers(recs) {
		out[i] = *p
	}
	return out
}

// putGoldenBlock stores the golden block of an old version in st as a
// binary of that version would have: its dictionary strings are interned
// into st's dictionary, the block's dictionary ids are relabelled to
// match, and its times move by shift (so it can share a day with new
// blocks). Only the tables of dictionary columns and the header's min time
// change; the rows stay as the old encoder wrote them. It returns the
// records the stored block holds.
func putGoldenBlock(t *testing.T, st *store.Store, version int, shift time.Duration) []Record {
	t.Helper()
	block, dict, want := readGolden(t, version)
	h, body, err := parseBlockHeader(block)
	if err != nil {
		t.Fatal(err)
	}
	if h.version >= blockVersion3 {
		t.Fatalf("putGoldenBlock relabels versions 1 and 2 only, not %d", h.version)
	}
	var dec blockDecoder
	view, err := dec.open(h, body)
	if err != nil {
		t.Fatal(err)
	}
	cols := view.cols
	for i := range want {
		want[i].Time = want[i].Time.Add(shift)
	}
	err = st.Update(func(tx *store.Tx) error {
		w := newDictWriter()
		var plain []byte
		for c := range numColumns {
			table := cols[c].table
			if slices.Contains(stringColumns[:], c) && inDict(h.version, c) {
				var relabelled []byte
				l := newIDList(cols[c])
				for {
					id, ok := l.next()
					if !ok {
						break
					}
					s, err := dict.resolve(id)
					if err != nil {
						return err
					}
					nid, err := w.intern(tx.Bucket(store.BucketDict), s)
					if err != nil {
						return err
					}
					relabelled = binary.AppendUvarint(relabelled, nid)
				}
				if l.err() != nil {
					return l.err()
				}
				table = relabelled
			}
			plain = binary.AppendUvarint(plain, uint64(len(table)))
			plain = append(plain, table...)
			plain = binary.AppendUvarint(plain, uint64(len(cols[c].rows)))
			plain = append(plain, cols[c].rows...)
		}
		payload := plain
		if h.flags&blockFlagFlate != 0 {
			var zbuf bytes.Buffer
			zw, _ := flate.NewWriter(&zbuf, blockCompression)
			_, _ = zw.Write(plain)
			_ = zw.Close()
			payload = zbuf.Bytes()
		}
		out := append([]byte{h.version, h.flags}, binary.AppendUvarint(nil, uint64(h.count))...)
		out = binary.AppendVarint(out, h.minTime+shift.Microseconds())
		out = binary.AppendUvarint(out, uint64(h.maxTime-h.minTime))
		out = append(out, payload...)

		raw := tx.Bucket(store.BucketRaw)
		day, err := raw.CreateBucketIfNotExists(dayName(Daily.number(want[0].Time)))
		if err != nil {
			return err
		}
		seq, err := raw.NextSequence()
		if err != nil {
			return err
		}
		return day.Put(blockKey(seq), out)
	})
	if err != nil {
		t.Fatal(err)
	}
	return want
}

// mustParseDecision reads a golden file's decision code.
func mustParseDecision(s string) decision.Code {
	c, ok := decision.Parse(s)
	if !ok {
		panic("golden record with decision " + s)
	}
	return c
}
