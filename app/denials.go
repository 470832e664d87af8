package app

import (
	"net/netip"
	"time"

	"github.com/apiwarden/apiwarden/enforce"
	"github.com/apiwarden/apiwarden/keys"
	"github.com/apiwarden/apiwarden/metrics"
)

// minimisedDenials is the key service as the decision engine sees it,
// with the client address in an ip_denied audit event cut as [metrics]
// client_ip says: the event is stored, and kept, like a request record.
type minimisedDenials struct {
	*keys.Service
	policy metrics.ClientIPPolicy
}

var _ enforce.KeyVerifier = minimisedDenials{}

// RecordDenial records the denial with the detail minimised.
func (m minimisedDenials) RecordDenial(now time.Time, keyID string, typ keys.EventType, detail string) {
	if typ == keys.EventIPDenied {
		switch ip, err := netip.ParseAddr(detail); {
		case err != nil:
		case m.policy == metrics.ClientIPTruncated:
			detail = metrics.TruncateClientIP(ip).String()
		case m.policy == metrics.ClientIPNone:
			detail = ""
		}
	}
	m.Service.RecordDenial(now, keyID, typ, detail)
}
