package gateway

import (
	"sync"
	"unsafe"
)

// keptBytes holds the bytes of the strings a proxied request's record
// keeps (its id, user agent, country and path), which outlive the
// server's buffers and the request, without an allocation a request:
// each request takes its bytes from a slab shared by the requests of one
// P (a sync.Pool of them), appends its strings there and hands the slab
// back. Bytes handed out are never written again, so a string made of
// them never changes; the collector frees a slab once no record refers
// into it. It is safe for concurrent use.
type keptBytes struct {
	slabs sync.Pool // *keptSlab
}

// keptSlab is a slab: buf's length is what was handed out, its spare
// capacity what is free.
type keptSlab struct{ buf []byte }

const (
	// keptSlabBytes is a slab's size: a few hundred requests' strings,
	// one allocation.
	keptSlabBytes = 16 << 10
	// keptApart is the largest request whose strings share a slab; a
	// larger one (a long user agent or path) gets an allocation of its
	// own rather than leave most of a slab unused.
	keptApart = keptSlabBytes / 8
)

// take returns a slab with at least n free bytes, to be handed back
// with give, or nil when n is too large to share one.
func (k *keptBytes) take(n int) *keptSlab {
	if n > keptApart {
		return nil
	}
	s, _ := k.slabs.Get().(*keptSlab)
	if s == nil {
		s = new(keptSlab)
	}
	if cap(s.buf)-len(s.buf) < n {
		s.buf = make([]byte, 0, keptSlabBytes)
	}
	return s
}

// room is s's free bytes, to append a request's strings to (nil s: an
// empty slice whose first append allocates).
func (s *keptSlab) room() []byte {
	if s == nil {
		return nil
	}
	return s.buf[len(s.buf):len(s.buf):cap(s.buf)]
}

// give hands s back to k with b, appended to s.room(), kept out of it
// from now on, and returns b as a string. When b outgrew the room,
// append moved it to memory of its own and s lost nothing.
func (k *keptBytes) give(s *keptSlab, b []byte) string {
	if s != nil {
		if len(b) <= cap(s.buf)-len(s.buf) {
			s.buf = s.buf[:len(s.buf)+len(b)]
		}
		k.slabs.Put(s)
	}
	return unsafe.String(unsafe.SliceData(b), len(b))
}
