package app_test

import (
	"encoding/json"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/apiwarden/apiwarden/app"
	"github.com/apiwarden/apiwarden/config"
	"github.com/apiwarden/apiwarden/internal/edgetest"
)

// usageFlush is the write-behind interval of the usage tests' instances.
const usageFlush = 200 * time.Millisecond

func fastUsageFlush(c *config.Config) { c.Keys.LastUsedFlushInterval = config.Duration(usageFlush) }

// keyLastUsed reads last_used_at from GET /admin/v1/keys/{id} (zero when
// null).
func keyLastUsed(t *testing.T, a *app.App, id string) time.Time {
	t.Helper()
	status, body := adminCall(t, a, "GET", "/admin/v1/keys/"+id, "")
	var k struct {
		LastUsedAt *time.Time `json:"last_used_at"`
	}
	if status != http.StatusOK || json.Unmarshal(body, &k) != nil {
		t.Fatalf("get key: %d %s", status, body)
	}
	if k.LastUsedAt == nil {
		return time.Time{}
	}
	return *k.LastUsedAt
}

// A key used on A shows A's last use on B within two flush intervals; a
// later use on B wins on both.
func TestClusterSharesLastUsed(t *testing.T) {
	url := pg.Database(t)
	a, _ := startClusterApp(t, url, "a", "", fastUsageFlush)
	b, _ := startClusterApp(t, url, "b", "", fastUsageFlush)
	waitReadyz(t, 10*time.Second, "ready", a, b)
	k := createKey(t, a)
	eventually(t, 10*time.Second, b, k.Secret, "VALID", "created on A, on B")
	// B has used the key now: wait until A sees that, then use it on A.
	edgetest.Poll(t, 10*time.Second, "B's use on A", func() bool { return !keyLastUsed(t, a, k.Key.ID).IsZero() })
	before := keyLastUsed(t, a, k.Key.ID)

	usedOnA := time.Now()
	if got := checkKey(t, a, k.Secret); got != "VALID" {
		t.Fatalf("check on A: %s", got)
	}
	took := edgetest.Poll(t, 10*time.Second, "A's use on B", func() bool { return keyLastUsed(t, b, k.Key.ID).After(before) })
	t.Logf("A's use shown on B after %s (flush interval %s)", took.Round(time.Millisecond), usageFlush)
	onA, onB := keyLastUsed(t, a, k.Key.ID), keyLastUsed(t, b, k.Key.ID)
	if !onA.Equal(onB) || onA.Before(usedOnA.Truncate(time.Microsecond)) {
		t.Fatalf("last_used_at on A %s, on B %s; want both A's use at %s", onA, onB, usedOnA)
	}

	// B touches a key at most once a second: use it until A shows a use
	// after A's own. The last of those uses can fall in a later second
	// than the one A shows, so once they stop, both must come to agree.
	usedOnB := time.Now()
	edgetest.Poll(t, 10*time.Second, "B's later use on A", func() bool {
		checkKey(t, b, k.Secret)
		return keyLastUsed(t, a, k.Key.ID).After(onA)
	})
	var onA2, onB2 time.Time
	edgetest.Poll(t, 10*time.Second, "A and B agreeing on B's last use", func() bool {
		onA2, onB2 = keyLastUsed(t, a, k.Key.ID), keyLastUsed(t, b, k.Key.ID)
		return onA2.Equal(onB2)
	})
	if onA2.Before(usedOnB.Truncate(time.Microsecond)) {
		t.Fatalf("last_used_at on A and B %s; want B's use after %s", onA2, usedOnB)
	}
}

// Denials on A and on B are listed by both instances, each instance's
// event once, with its exact count.
func TestClusterSharesDenialEvents(t *testing.T) {
	url := pg.Database(t)
	a, _ := startClusterApp(t, url, "a", "", fastUsageFlush)
	b, _ := startClusterApp(t, url, "b", "", fastUsageFlush)
	waitReadyz(t, 10*time.Second, "ready", a, b)
	status, body := adminCall(t, a, "POST", "/admin/v1/keys", `{"name":"fenced","owner_id":"org_1","tier":"enterprise","allowed_ips":["198.51.100.0/24"]}`)
	var k edgetest.Key
	if status != http.StatusCreated || json.Unmarshal(body, &k) != nil {
		t.Fatalf("create: %d %s", status, body)
	}
	eventually(t, 10*time.Second, b, k.Secret, "IP_NOT_ALLOWED", "created on A, refused by IP on B")
	// eventually's last check was B's first denial; one more makes 2.
	if got := checkKey(t, b, k.Secret); got != "IP_NOT_ALLOWED" {
		t.Fatalf("check on B: %s", got)
	}
	for range 3 {
		if got := checkKey(t, a, k.Secret); got != "IP_NOT_ALLOWED" {
			t.Fatalf("check on A: %s", got)
		}
	}
	// Denials are aggregated per flush: a flush can fall between B's two
	// (or A's three) on a loaded machine, so the events are [2 3] or a
	// split of them; what must hold is 5 in all, the same on both.
	const denials = 5
	for name, in := range map[string]*app.App{"A": a, "B": b} {
		edgetest.Poll(t, 10*time.Second, name+" lists both instances' denials", func() bool { return sum(deniedCounts(t, in, k.Key.ID)) >= denials })
	}
	// More flushes on both must not count anything twice: a use of
	// another key on each, seen on the other, proves both flushed again.
	other := createKey(t, a)
	eventually(t, 10*time.Second, b, other.Secret, "VALID", "another key made on A, on B")
	for _, pair := range [][2]*app.App{{a, b}, {b, a}, {a, b}} {
		seen := keyLastUsed(t, pair[1], other.Key.ID)
		edgetest.Poll(t, 10*time.Second, "a later flush", func() bool {
			checkKey(t, pair[0], other.Secret)
			return keyLastUsed(t, pair[1], other.Key.ID).After(seen)
		})
	}
	onA, onB := deniedCounts(t, a, k.Key.ID), deniedCounts(t, b, k.Key.ID)
	if sum(onA) != denials || !slices.Equal(onA, onB) {
		t.Fatalf("ip_denied counts on A %v, on B %v; want the same events, %d denials in all", onA, onB, denials)
	}
}

func sum(counts []int) (n int) {
	for _, c := range counts {
		n += c
	}
	return n
}

// deniedCounts lists the counts of a key's ip_denied events, sorted.
func deniedCounts(t *testing.T, a *app.App, id string) []int {
	t.Helper()
	status, body := adminCall(t, a, "GET", "/admin/v1/keys/"+id+"/events", "")
	var page struct {
		Events []struct {
			Type  string `json:"type"`
			Count int    `json:"count"`
		} `json:"events"`
	}
	if status != http.StatusOK || json.Unmarshal(body, &page) != nil {
		t.Fatalf("events: %d %s", status, body)
	}
	var out []int
	for _, ev := range page.Events {
		if ev.Type == "ip_denied" {
			out = append(out, ev.Count)
		}
	}
	slices.Sort(out)
	return out
}
