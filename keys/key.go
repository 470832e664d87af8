// Package keys issues, stores and verifies API keys.
//
// A key is shown once, when it is created or rotated; only its
// HMAC-SHA256 under the instance's key secret is stored, so neither the
// data file nor a backup reveals a usable key. Verify is the hot path: it
// checks the key's checksum before anything else, answers unknown keys from
// an in-memory index of every stored hash (no disk read), and serves known
// keys from a cache that every admin write invalidates before it returns.
package keys

import (
	"encoding/json"
	"net/netip"
	"slices"
	"strings"
	"sync/atomic"
	"time"
)

// Status of a key as the API shows it.
type Status string

// Key statuses.
const (
	StatusActive  Status = "active"
	StatusRevoked Status = "revoked"
	StatusExpired Status = "expired"
)

// Key is a key's record as the admin API returns it (docs/API.md, "Keys"). It never
// contains the secret.
type Key struct {
	ID             string            `json:"id"`
	Name           string            `json:"name"`
	OwnerID        string            `json:"owner_id"`
	Tier           string            `json:"tier"`
	Scopes         []string          `json:"scopes"`
	AllowedIPs     []string          `json:"allowed_ips"`
	AllowedOrigins []string          `json:"allowed_origins"`
	ExpiresAt      *time.Time        `json:"expires_at"`
	CreatedAt      time.Time         `json:"created_at"`
	UpdatedAt      time.Time         `json:"updated_at"`
	LastUsedAt     *time.Time        `json:"last_used_at"`
	RevokedAt      *time.Time        `json:"revoked_at"`
	Status         Status            `json:"status"`
	Start          string            `json:"start"`
	Meta           map[string]string `json:"meta"`
	RotatedAt      *time.Time        `json:"rotated_at"`
	GraceUntil     *time.Time        `json:"grace_until"`
}

// record is what the keys bucket stores: the Key plus the hashes that
// index it. Hashes are not secrets, but they stay out of API answers.
type record struct {
	Key
	Hash         []byte `json:"hash"`
	PreviousHash []byte `json:"previous_hash,omitempty"`
	// ExpiryRecorded says the "expired" audit event has been written, so
	// it is written once per expiry, not once per cache load.
	ExpiryRecorded bool `json:"expiry_recorded,omitempty"`
}

// statusAt is the status a key has at now: a stored "active" key past its
// expiry reads as expired.
func (k *Key) statusAt(now time.Time) Status {
	switch {
	case k.RevokedAt != nil:
		return StatusRevoked
	case k.ExpiresAt != nil && !now.Before(*k.ExpiresAt):
		return StatusExpired
	}
	return StatusActive
}

// Identity is what verification yields: the parts of a key that requests
// are checked against, parsed once when the key enters the cache. It is
// shared between requests and must be treated as read-only.
type Identity struct {
	ID      string
	OwnerID string
	Tier    string
	Scopes  []string // sorted
	// ScopesHeader is Scopes joined with commas, ready for X-Apiwarden-Scopes.
	ScopesHeader   string
	AllowedIPs     []netip.Prefix
	AllowedOrigins []string
	ExpiresAt      time.Time // zero: never
	Revoked        bool

	lastUsedQueued atomic.Int64 // unix second last queued for the write-behind
	expiredQueued  atomic.Bool  // the "expired" audit event has been queued
}

func newIdentity(rec *record) *Identity {
	k := &rec.Key
	id := &Identity{
		ID:             k.ID,
		OwnerID:        k.OwnerID,
		Tier:           k.Tier,
		Scopes:         slices.Sorted(slices.Values(k.Scopes)),
		AllowedOrigins: k.AllowedOrigins,
		Revoked:        k.RevokedAt != nil,
	}
	id.ScopesHeader = strings.Join(id.Scopes, ",")
	for _, s := range k.AllowedIPs {
		if p, err := parsePrefix(s); err == nil {
			id.AllowedIPs = append(id.AllowedIPs, p)
		}
	}
	if k.ExpiresAt != nil {
		id.ExpiresAt = *k.ExpiresAt
	}
	id.expiredQueued.Store(rec.ExpiryRecorded)
	return id
}

// AllowsIP reports whether addr may use the key: always when the key has
// no allowed_ips, else when a prefix contains it. IPv4-mapped IPv6
// addresses match IPv4 prefixes.
func (id *Identity) AllowsIP(addr netip.Addr) bool {
	if len(id.AllowedIPs) == 0 {
		return true
	}
	addr = addr.Unmap()
	for _, p := range id.AllowedIPs {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}

// AllowsOrigin reports whether a request with this Origin header may use
// the key. A key without allowed_origins allows any. A key with them
// requires a matching Origin: a request without one is refused, since the
// restriction exists for browsers and browsers send it. An entry may use a
// leading wildcard label: "https://*.example.com".
func (id *Identity) AllowsOrigin(origin string) bool {
	if len(id.AllowedOrigins) == 0 {
		return true
	}
	if origin == "" {
		return false
	}
	for _, allowed := range id.AllowedOrigins {
		if originMatches(allowed, origin) {
			return true
		}
	}
	return false
}

func originMatches(pattern, origin string) bool {
	if pattern == "*" || strings.EqualFold(pattern, origin) {
		return true
	}
	scheme, host, ok := strings.Cut(pattern, "://*.")
	if !ok {
		return false
	}
	oscheme, ohost, ok := strings.Cut(origin, "://")
	return ok && strings.EqualFold(scheme, oscheme) &&
		len(ohost) > len(host)+1 && strings.HasSuffix(strings.ToLower(ohost), "."+strings.ToLower(host))
}

// HasScopes reports whether the key holds every scope in required.
func (id *Identity) HasScopes(required []string) bool {
	for _, r := range required {
		if _, found := slices.BinarySearch(id.Scopes, r); !found {
			return false
		}
	}
	return true
}

// NullableTime is a JSON field that distinguishes "absent" (Set false)
// from null (Set true, Time nil), as PATCH needs.
type NullableTime struct {
	Set  bool
	Time *time.Time
}

// UnmarshalJSON records that the field was present.
func (n *NullableTime) UnmarshalJSON(b []byte) error {
	n.Set = true
	if string(b) == "null" {
		n.Time = nil
		return nil
	}
	var t time.Time
	if err := json.Unmarshal(b, &t); err != nil {
		return err
	}
	n.Time = &t
	return nil
}

// CreateParams describes a new key.
type CreateParams struct {
	Name           string            `json:"name"`
	OwnerID        string            `json:"owner_id"`
	Tier           string            `json:"tier"`
	Scopes         []string          `json:"scopes"`
	AllowedIPs     []string          `json:"allowed_ips"`
	AllowedOrigins []string          `json:"allowed_origins"`
	ExpiresAt      *time.Time        `json:"expires_at"`
	Meta           map[string]string `json:"meta"`
}

// Patch changes some fields of a key; nil fields stay as they are.
type Patch struct {
	Name           *string            `json:"name"`
	OwnerID        *string            `json:"owner_id"`
	Tier           *string            `json:"tier"`
	Scopes         *[]string          `json:"scopes"`
	AllowedIPs     *[]string          `json:"allowed_ips"`
	AllowedOrigins *[]string          `json:"allowed_origins"`
	ExpiresAt      NullableTime       `json:"expires_at"`
	Meta           *map[string]string `json:"meta"`
}

func parsePrefix(s string) (netip.Prefix, error) {
	if p, err := netip.ParsePrefix(s); err == nil {
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	return netip.PrefixFrom(a, a.BitLen()), nil
}
