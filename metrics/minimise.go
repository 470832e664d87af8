package metrics

import (
	"fmt"
	"net/netip"
)

// ClientIPPolicy says how much of a client address a stored Record keeps.
// The zero value, ClientIPFull, keeps all of it.
type ClientIPPolicy uint8

// The client address policies ([metrics] client_ip).
const (
	ClientIPFull      ClientIPPolicy = iota // the whole address
	ClientIPTruncated                       // IPv4 to its /24, IPv6 to its /48
	ClientIPNone                            // no address at all
)

// Prefix lengths ClientIPTruncated keeps: a /24 is one small network of
// IPv4 clients, a /48 one site in IPv6 addressing plans.
const (
	TruncatedIPv4Bits = 24
	TruncatedIPv6Bits = 48
)

var clientIPPolicyNames = [...]string{"full", "truncated", "none"}

// String returns "full", "truncated" or "none".
func (p ClientIPPolicy) String() string {
	if int(p) < len(clientIPPolicyNames) {
		return clientIPPolicyNames[p]
	}
	return fmt.Sprintf("ClientIPPolicy(%d)", uint8(p))
}

// ParseClientIPPolicy parses a name as String returns it; "" is
// ClientIPFull. Anything else returns ErrUnknownName.
func ParseClientIPPolicy(s string) (ClientIPPolicy, error) {
	if s == "" {
		return ClientIPFull, nil
	}
	for i, name := range clientIPPolicyNames {
		if s == name {
			return ClientIPPolicy(i), nil
		}
	}
	return ClientIPFull, fmt.Errorf("%w: client_ip %q (want full, truncated or none)", ErrUnknownName, s)
}

// Minimisation says which personal data a Recorder leaves out of what it
// stores. The zero value stores everything. It is applied to the
// Recorder's own copy of a record as Record and RecordBatch take it, so
// nothing written from it (raw blocks, and from them shipping to
// PostgreSQL and exports) ever holds more; the caller's record, which
// per-IP limits, IP allowlists and the live view read, keeps the full
// address.
type Minimisation struct {
	ClientIP      ClientIPPolicy
	DropUserAgent bool // store no user agent
}

// apply minimises rec in place. It does not allocate.
func (m Minimisation) apply(rec *Record) {
	if m.DropUserAgent {
		rec.UserAgent = ""
	}
	switch m.ClientIP {
	case ClientIPTruncated:
		rec.ClientIP = TruncateClientIP(rec.ClientIP)
	case ClientIPNone:
		rec.ClientIP = netip.Addr{}
	}
}

// TruncateClientIP returns the network part of a client address, the rest
// set to zero: the /24 of an IPv4 address (also one written as an
// IPv4-mapped IPv6 address, which comes back as plain IPv4) and the /48 of
// an IPv6 address. The zone is dropped; an invalid address stays invalid.
func TruncateClientIP(ip netip.Addr) netip.Addr {
	if !ip.IsValid() {
		return ip
	}
	ip = ip.Unmap().WithZone("")
	bits := TruncatedIPv6Bits
	if ip.Is4() {
		bits = TruncatedIPv4Bits
	}
	p, err := ip.Prefix(bits)
	if err != nil { // cannot happen: bits fits both families
		return netip.Addr{}
	}
	return p.Addr()
}
