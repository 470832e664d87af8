// Package decision names the outcomes of an enforcement decision: the
// codes every entry point answers with (README.md, "The three ways in"),
// that request records store and analytics count. The codes are spelled
// here and nowhere else; what an HTTP edge answers for each is the edge's
// business (api/httpapi), what decides them is enforce's.
package decision

// Code is the outcome of deciding one request. The zero value, None,
// means the request was not decided (a record ingested without a code);
// every decision enforce makes is Valid or a denial.
type Code uint8

// The decision codes.
const (
	None              Code = iota // "": not decided
	Valid                         // the request may pass
	MissingKey                    // no key where the route needs one
	NotFound                      // a key that is malformed or unknown
	Expired                       // a key past its expires_at
	Revoked                       // a revoked key, or an old secret past its grace
	IPNotAllowed                  // the client address is outside the key's allowed_ips
	OriginNotAllowed              // the Origin is not among the key's allowed_origins
	InsufficientScope             // the key lacks a scope the route requires
	RateLimited                   // an hourly, minute or route bucket is empty
	QuotaExceeded                 // the monthly quota is used up
	numCodes
)

var names = [numCodes]string{
	None: "", Valid: "VALID", MissingKey: "MISSING_KEY", NotFound: "NOT_FOUND", Expired: "EXPIRED",
	Revoked: "REVOKED", IPNotAllowed: "IP_NOT_ALLOWED", OriginNotAllowed: "ORIGIN_NOT_ALLOWED",
	InsufficientScope: "INSUFFICIENT_SCOPE", RateLimited: "RATE_LIMITED", QuotaExceeded: "QUOTA_EXCEEDED",
}

// String returns the code as clients and records spell it
// ("RATE_LIMITED"), or "" for None and for values outside the list.
func (c Code) String() string {
	if c >= numCodes {
		return ""
	}
	return names[c]
}

// Parse returns the code spelled s. The empty string is None; any other
// string that is not a code returns false.
func Parse(s string) (Code, bool) {
	for c := None; c < numCodes; c++ {
		if names[c] == s {
			return c, true
		}
	}
	return None, false
}

// Codes returns every decision code, None excluded, in declaration order.
func Codes() []Code {
	out := make([]Code, 0, numCodes-1)
	for c := Valid; c < numCodes; c++ {
		out = append(out, c)
	}
	return out
}

// Allowed reports whether c lets the request pass.
func (c Code) Allowed() bool { return c == Valid }

// IsAuthFailure reports whether c refuses a request for its key or
// identity: a missing, unknown, expired or revoked key, or one used from
// a place or for a route it does not cover.
func (c Code) IsAuthFailure() bool { return c >= MissingKey && c <= InsufficientScope }

// IsIdentityFailure reports whether c refuses a request because no valid
// key was presented (the codes answered with 401, where IsAuthFailure's
// other codes are answered with 403).
func (c Code) IsIdentityFailure() bool { return c >= MissingKey && c <= Revoked }

// IsRateLimited reports whether c refuses a request for a limit.
func (c Code) IsRateLimited() bool { return c == RateLimited || c == QuotaExceeded }

// Message explains a denial to the client in a sentence it can act on;
// it is "" for None and Valid.
func (c Code) Message() string {
	switch c {
	case MissingKey:
		return "an API key is required: send it as Authorization: Bearer <key> or X-API-Key"
	case NotFound:
		return "the API key is not valid"
	case Expired:
		return "the API key has expired"
	case Revoked:
		return "the API key has been revoked"
	case IPNotAllowed:
		return "the API key may not be used from this IP address"
	case OriginNotAllowed:
		return "the API key may not be used from this origin"
	case InsufficientScope:
		return "the API key lacks a scope this route requires"
	case RateLimited:
		return "rate limit exceeded; retry after the time in Retry-After"
	case QuotaExceeded:
		return "monthly quota exhausted; it renews at the start of next month"
	}
	return ""
}
