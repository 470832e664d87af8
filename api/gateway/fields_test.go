package gateway

import (
	"cmp"
	"net/http"
	"slices"
	"testing"
)

// TestFields: a list reads as the http.Header it stands for: a name set
// again keeps its place with the new value, a removed one goes without
// moving the others, a map's entries replace the fields of their names
// whole, and a reset list holds nothing and lets go of every string.
func TestFields(t *testing.T) {
	var f Fields
	f.Set("Ratelimit-Policy", "p")
	f.Set("Ratelimit", "r1")
	f.Set("Retry-After", "3")
	f.Set("Ratelimit", "r2")
	want := []Field{{"Ratelimit-Policy", "p"}, {"Ratelimit", "r2"}, {"Retry-After", "3"}}
	if !slices.Equal(f.List(), want) {
		t.Fatalf("after Set: %q, want %q", f.List(), want)
	}
	f.Remove("Ratelimit")
	f.Remove("X-Absent")
	if want := []Field{{"Ratelimit-Policy", "p"}, {"Retry-After", "3"}}; !slices.Equal(f.List(), want) {
		t.Fatalf("after Remove: %q, want %q", f.List(), want)
	}
	if !f.Has("Retry-After") || f.Has("Ratelimit") {
		t.Errorf("Has: Retry-After %v, Ratelimit %v", f.Has("Retry-After"), f.Has("Ratelimit"))
	}
	f.setMap(http.Header{"Retry-After": {"60"}, "Vary": {"a", "b"}})
	got := slices.Clone(f.List())
	slices.SortFunc(got, func(a, b Field) int {
		if a.Name != b.Name {
			return cmp.Compare(a.Name, b.Name)
		}
		return cmp.Compare(a.Value, b.Value)
	})
	if want := []Field{{"Ratelimit-Policy", "p"}, {"Retry-After", "60"}, {"Vary", "a"}, {"Vary", "b"}}; !slices.Equal(got, want) {
		t.Errorf("after setMap: %q, want %q", got, want)
	}
	room := f.list[:cap(f.list)]
	f.Reset()
	if len(f.List()) != 0 {
		t.Errorf("after Reset: %q", f.List())
	}
	for i, fd := range room {
		if fd != (Field{}) {
			t.Errorf("after Reset, slot %d still holds %q", i, fd)
		}
	}
}

// TestFieldsAllocations: a list kept from one request to the next
// allocates nothing to hold the next request's fields.
func TestFieldsAllocations(t *testing.T) {
	var f Fields
	fill := func() {
		f.Reset()
		for _, name := range []string{"X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto", "X-Request-Id",
			"X-Apiwarden-Key-Id", "X-Apiwarden-Owner", "X-Apiwarden-Scopes", "X-Apiwarden-Tier"} {
			f.Set(name, "v")
		}
	}
	fill()
	if n := testing.AllocsPerRun(100, fill); n != 0 {
		t.Errorf("%v allocations, want 0", n)
	}
}
