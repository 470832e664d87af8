package httpapi

import (
	"context"
	"crypto/rand"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
)

type requestIDKey struct{}

// WithRequestID returns a context carrying the request id.
func WithRequestID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, requestIDKey{}, id)
}

// RequestIDFrom returns the request id of ctx, or "".
func RequestIDFrom(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
}

// RequestIDs makes ids that are unique per process and cheap: a random
// prefix drawn at start and a number. The fixed prefix lets the metrics
// encoder store an id in a few bytes, so both edges share one RequestIDs.
// It is safe for concurrent use.
//
// The numbers are taken from a shared counter idBlock at a time, and
// handed out of a block one by one through a sync.Pool, which keeps a
// block per P: every goroutine adding one to the one counter made its
// cache line move between cores at each id (BenchmarkRequestIDs). So
// every number is used at most once, and numbers made at the same time
// on different Ps are close, not consecutive; a block a collection
// drops from the pool leaves its rest unused.
type RequestIDs struct {
	prefix string
	n      atomic.Uint64 // the last number of the last block taken
	blocks sync.Pool     // *idBlock
}

// idBlock is the numbers after next up to end, not yet handed out.
type idBlock struct{ next, end uint64 }

// idBlockSize is how many numbers a block holds: few enough that the
// numbers of requests recorded together stay close (the metrics encoder
// stores each as a delta from the one before), enough that the shared
// counter is touched once in that many ids.
const idBlockSize = 16

// NewRequestIDs draws a fresh random prefix.
func NewRequestIDs() *RequestIDs {
	const alphabet = "0123456789abcdefghijklmnopqrstuvwxyz"
	b := make([]byte, 10)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return &RequestIDs{prefix: string(b) + "-"}
}

// Next returns a new id.
func (g *RequestIDs) Next() string {
	var buf [32]byte
	return string(g.appendNext(buf[:0]))
}

// appendNext appends a new id to dst.
func (g *RequestIDs) appendNext(dst []byte) []byte {
	dst = append(dst, g.prefix...)
	return strconv.AppendUint(dst, g.number(), 10)
}

// number is a number no other call returns.
func (g *RequestIDs) number() uint64 {
	b, _ := g.blocks.Get().(*idBlock)
	if b == nil {
		b = new(idBlock)
	}
	if b.next == b.end {
		b.end = g.n.Add(idBlockSize)
		b.next = b.end - idBlockSize
	}
	b.next++
	n := b.next
	g.blocks.Put(b)
	return n
}

// FromRequest keeps a caller's X-Request-Id when it is a printable word
// of at most 128 bytes, so traces join up across services, and makes a
// new one otherwise.
func (g *RequestIDs) FromRequest(r *http.Request) string {
	return g.Keep(r.Header.Get("X-Request-Id"))
}

// Keep is FromRequest for a server other than net/http: callerID is the
// request's X-Request-Id ("" when absent).
func (g *RequestIDs) Keep(callerID string) string {
	if kept(callerID) {
		return callerID
	}
	return g.Next()
}

// AppendKeep appends to dst the id Keep returns for callerID, for a
// server that keeps a request's strings in a buffer of its own: it makes
// no string.
func (g *RequestIDs) AppendKeep(dst []byte, callerID string) []byte {
	if kept(callerID) {
		return append(dst, callerID...)
	}
	return g.appendNext(dst)
}

// kept reports whether a caller's X-Request-Id is kept as the request's id.
func kept(callerID string) bool {
	return callerID != "" && len(callerID) <= 128 && IsPrintableWord(callerID)
}

// Middleware gives every request an id: it answers with it in
// X-Request-Id and puts it in the request's context (RequestIDFrom).
func (g *RequestIDs) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := g.FromRequest(r)
		w.Header().Set("X-Request-Id", id)
		next.ServeHTTP(w, r.WithContext(WithRequestID(r.Context(), id)))
	})
}

// IsPrintableWord reports whether s is printable ASCII without spaces,
// quotes or backslashes: safe to echo in a header, a log line or a JSON
// string as it is. It is looser than an HTTP token (RFC 9110 tchar),
// which a request id such as "a/b:1" would fail.
func IsPrintableWord(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c >= 0x7f || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}
