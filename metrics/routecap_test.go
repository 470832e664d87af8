package metrics

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"
)

func TestRouteCap(t *testing.T) {
	c := NewRouteCap(3, "/configured/*", "")
	for _, step := range []struct{ route, want string }{
		{"/configured/*", "/configured/*"},
		{"/a", "/a"},
		{"", ""}, // no route takes no room
		{"/b", "/b"},
		{"/c", OverflowRoute}, // 3 known: the configured one, /a, /b
		{"/a", "/a"},          // known routes stay
		{OverflowRoute, OverflowRoute},
		{"/d", OverflowRoute},
	} {
		if got := c.Admit(step.route); got != step.want {
			t.Fatalf("Admit(%q) = %q, want %q", step.route, got, step.want)
		}
	}
	if s := c.Stats(); s.Known != 3 || s.Max != 3 || s.Overflowed != 2 {
		t.Fatalf("stats %+v", s)
	}
	// Given routes are known even beyond the cap.
	c = NewRouteCap(1, "/x", "/y")
	if c.Admit("/y") != "/y" || c.Admit("/z") != OverflowRoute {
		t.Fatalf("stats %+v", c.Stats())
	}
}

// Reconfigure raises or lowers the cap and learns the configured
// patterns; lowering it forgets no known route.
func TestRouteCapReconfigure(t *testing.T) {
	c := NewRouteCap(2)
	c.Admit("/a")
	c.Admit("/b")
	if c.Admit("/c") != OverflowRoute {
		t.Fatal("/c admitted beyond the cap of 2")
	}
	c.Reconfigure(3, "/configured/*")
	if c.Admit("/configured/*") != "/configured/*" || c.Admit("/c") != OverflowRoute {
		t.Fatalf("the configured pattern takes the new room: %+v", c.Stats())
	}
	c.Reconfigure(4)
	if c.Admit("/c") != "/c" || c.Admit("/d") != OverflowRoute {
		t.Fatalf("after raising the cap to 4: %+v", c.Stats())
	}
	c.Reconfigure(1)
	if c.Admit("/a") != "/a" || c.Admit("/e") != OverflowRoute {
		t.Fatalf("after lowering the cap to 1: %+v", c.Stats())
	}
	if s := c.Stats(); s.Known != 4 || s.Max != 1 || s.Overflowed != 4 {
		t.Fatalf("stats %+v", s)
	}
}

// More callers than room, each with routes of its own: exactly the cap's
// worth of routes is admitted.
func TestRouteCapConcurrent(t *testing.T) {
	const max, callers, each = 100, 16, 50
	c := NewRouteCap(max)
	var wg sync.WaitGroup
	admitted := make([][]string, callers)
	for g := range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				if r := c.Admit(fmt.Sprintf("/g%d/%d", g, i)); r != OverflowRoute {
					admitted[g] = append(admitted[g], r)
				}
			}
		}()
	}
	wg.Wait()
	if n := len(slices.Concat(admitted...)); n != max {
		t.Fatalf("%d routes admitted, want %d", n, max)
	}
	if s := c.Stats(); s.Known != max || s.Overflowed != callers*each-max {
		t.Fatalf("stats %+v", s)
	}
}

// Values lists the stored routes once each, so a RouteCap started after a
// restart counts the routes already in the dictionary.
func TestReaderValues(t *testing.T) {
	rec, rd := newTestRecorder(t, Options{})
	day := time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC)
	for d := range 3 {
		for _, route := range []string{"/a", "/bb", "", "/c"} {
			rec.Record(&Record{Time: day.Add(time.Duration(d) * 24 * time.Hour), Method: "GET", Route: route, Status: 200})
		}
	}
	if err := rec.Flush(); err != nil {
		t.Fatal(err)
	}
	got, err := rd.Values(context.Background(), DimRoute, 10)
	if err != nil || !slices.Equal(got, []string{"/a", "/c", "/bb"}) {
		t.Fatalf("%q %v", got, err)
	}
	if got, err := rd.Values(context.Background(), DimRoute, 2); err != nil || len(got) != 2 {
		t.Fatalf("limit 2: %q %v", got, err)
	}
}
