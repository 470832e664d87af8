package keys

import (
	"crypto/hmac"
	"crypto/sha256"
	"hash"
	"sync"
)

// hasher computes HMAC-SHA256(secret, key). hmac.New is costly (it derives
// the inner and outer pads), so instances are pooled; Reset restores the
// pads from saved state.
type hasher struct {
	pool sync.Pool
}

type hmacState struct {
	mac hash.Hash
	in  [64]byte // the key copied here: Write takes an interface, so a []byte(string) would escape
	sum [32]byte
}

func newHasher(secret []byte) *hasher {
	secret = append([]byte(nil), secret...)
	h := &hasher{}
	h.pool.New = func() any { return &hmacState{mac: hmac.New(sha256.New, secret)} }
	return h
}

// sum returns the HMAC of key. It allocates nothing once the pool is warm.
func (h *hasher) sum(key string) [32]byte {
	st := h.pool.Get().(*hmacState)
	st.mac.Reset()
	for len(key) > 0 {
		n := copy(st.in[:], key)
		st.mac.Write(st.in[:n])
		key = key[n:]
	}
	out := [32]byte(st.mac.Sum(st.sum[:0]))
	h.pool.Put(st)
	return out
}
