package keys

import (
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"
	"unicode/utf8"
)

// Limits on what a key record may hold, so one record stays small.
const (
	maxNameLen    = 200
	maxListLen    = 100
	maxMetaPairs  = 32
	maxMetaKeyLen = 64
	maxMetaValLen = 512
)

// validate checks a key against the policy and normalises its lists.
func validate(k *Key, pol *Policy, now time.Time, creating bool) error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
	}
	if utf8.RuneCountInString(k.Name) > maxNameLen || !utf8.ValidString(k.Name) || hasControl(k.Name) {
		return bad("name must be valid UTF-8 of at most %d characters, without control characters", maxNameLen)
	}
	// owner_id travels upstream in X-Apiwarden-Owner: no control characters.
	if len(k.OwnerID) > maxNameLen || !utf8.ValidString(k.OwnerID) || hasControl(k.OwnerID) {
		return bad("owner_id must be valid UTF-8 of at most %d bytes, without control characters", maxNameLen)
	}
	if !slices.Contains(pol.Tiers, k.Tier) {
		return bad("tier %q is not configured (have: %s)", k.Tier, strings.Join(pol.Tiers, ", "))
	}
	if len(k.Scopes) > maxListLen || len(k.AllowedIPs) > maxListLen || len(k.AllowedOrigins) > maxListLen {
		return bad("scopes, allowed_ips and allowed_origins hold at most %d entries each", maxListLen)
	}
	for _, sc := range k.Scopes {
		if !slices.Contains(pol.Scopes, sc) {
			return bad("scope %q is not configured (have: %s)", sc, strings.Join(pol.Scopes, ", "))
		}
	}
	k.Scopes = dedupe(k.Scopes)
	for i, ip := range k.AllowedIPs {
		p, err := parsePrefix(strings.TrimSpace(ip))
		if err != nil {
			return bad("allowed_ips: %q is neither a CIDR (10.0.0.0/8, 2001:db8::/32) nor an address", ip)
		}
		k.AllowedIPs[i] = p.String()
	}
	k.AllowedIPs = dedupe(k.AllowedIPs)
	for _, o := range k.AllowedOrigins {
		if !validOrigin(o) {
			return bad("allowed_origins: %q is not an origin such as https://app.example.com or https://*.example.com", o)
		}
	}
	k.AllowedOrigins = dedupe(k.AllowedOrigins)
	if k.ExpiresAt != nil {
		t := k.ExpiresAt.UTC()
		k.ExpiresAt = &t
		if creating && !t.After(now) {
			return bad("expires_at must be in the future")
		}
	}
	if len(k.Meta) > maxMetaPairs {
		return bad("meta holds at most %d entries", maxMetaPairs)
	}
	for mk, mv := range k.Meta {
		if mk == "" || len(mk) > maxMetaKeyLen || len(mv) > maxMetaValLen || !utf8.ValidString(mk) || !utf8.ValidString(mv) {
			return bad("meta keys must be 1 to %d bytes and values at most %d bytes of UTF-8", maxMetaKeyLen, maxMetaValLen)
		}
	}
	return nil
}

func hasControl(s string) bool {
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return true
		}
	}
	return false
}

func validOrigin(o string) bool {
	if o == "*" {
		return true
	}
	u, err := url.Parse(strings.Replace(o, "://*.", "://wildcard.", 1))
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != "" &&
		(u.Path == "" || u.Path == "/") && u.RawQuery == "" && u.User == nil
}

func dedupe(list []string) []string {
	if len(list) == 0 {
		return nil
	}
	out := slices.Clone(list)
	slices.Sort(out)
	return slices.Compact(out)
}
