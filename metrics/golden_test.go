package metrics

import (
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"
)

// Golden blocks pin the on-disk formats that existing data files hold, so
// a change to the codec cannot silently stop old files from reading.
// testdata/block-v<N>.bin is a block as the version-N encoder wrote it and
// testdata/block-v<N>.json the dictionary it refers to and the records it
// holds.

var writeGolden = flag.Bool("write-golden", false, "write testdata/block-v<blockVersion>.{bin,json} from the current encoder")

// goldenFile is the JSON side of a golden block.
type goldenFile struct {
	Dict    []string       `json:"dict"` // Dict[i] is the string of id i+1
	Records []goldenRecord `json:"records"`
}

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
		ErrorCategory: uint8(r.ErrorCategory), CacheStatus: uint8(r.CacheStatus), Decision: string(r.Decision),
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
		ErrorCategory: ErrorCategory(g.ErrorCategory), CacheStatus: CacheStatus(g.CacheStatus), Decision: Decision(g.Decision),
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
			Decision:        []Decision{DecisionValid, DecisionValid, DecisionRateLimited, DecisionNotFound}[rng.IntN(4)],
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

func goldenPaths(version int) (bin, js string) {
	base := filepath.Join("testdata", fmt.Sprintf("block-v%d", version))
	return base + ".bin", base + ".json"
}

func TestWriteGoldenBlock(t *testing.T) {
	if !*writeGolden {
		t.Skip("run with -write-golden to rewrite testdata/block-v<N>.*")
	}
	recs := goldenTraffic()
	ptrs := sortedPointers(recs)
	dict := newMemDict()
	block, err := newBlockEncoder().encode(nil, ptrs, dict.intern)
	if err != nil {
		t.Fatal(err)
	}
	g := goldenFile{Dict: dict.strs[1:]}
	for _, p := range ptrs {
		g.Records = append(g.Records, toGolden(p))
	}
	// One record a line keeps the file small and its diffs readable.
	dictJSON, err := json.Marshal(g.Dict)
	if err != nil {
		t.Fatal(err)
	}
	js := append([]byte(`{"dict": `), dictJSON...)
	js = append(js, ",\n\"records\": ["...)
	for i := range g.Records {
		line, err := json.Marshal(g.Records[i])
		if err != nil {
			t.Fatal(err)
		}
		if i > 0 {
			js = append(js, ',')
		}
		js = append(append(js, '\n'), line...)
	}
	js = append(js, "\n]}"...)
	binPath, jsPath := goldenPaths(blockVersion)
	if err := os.WriteFile(binPath, block, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(jsPath, append(js, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
}

// readGolden loads a golden block, a memDict holding its dictionary (ids as
// in the file) and the records it must decode to.
func readGolden(t *testing.T, version int) ([]byte, *memDict, []Record) {
	t.Helper()
	binPath, jsPath := goldenPaths(version)
	block, err := os.ReadFile(binPath)
	if err != nil {
		t.Fatal(err)
	}
	js, err := os.ReadFile(jsPath)
	if err != nil {
		t.Fatal(err)
	}
	var g goldenFile
	if err := json.Unmarshal(js, &g); err != nil {
		t.Fatal(err)
	}
	dict := newMemDict()
	for i, s := range g.Dict {
		if id, _ := dict.intern(s); id != uint64(i+1) {
			t.Fatalf("golden dictionary: %q got id %d, want %d", s, id, i+1)
		}
	}
	want := make([]Record, len(g.Records))
	for i := range g.Records {
		want[i] = g.Records[i].record(t)
	}
	return block, dict, want
}

func TestGoldenBlocksDecode(t *testing.T) {
	for _, version := range []int{1} {
		t.Run(fmt.Sprintf("v%d", version), func(t *testing.T) {
			block, dict, want := readGolden(t, version)
			if block[0] != byte(version) {
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
