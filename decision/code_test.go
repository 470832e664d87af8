package decision_test

import (
	"testing"

	"github.com/apiwarden/apiwarden/decision"
)

func TestParseRoundTrips(t *testing.T) {
	for _, c := range append(decision.Codes(), decision.None) {
		got, ok := decision.Parse(c.String())
		if !ok || got != c {
			t.Errorf("Parse(%q) = %v, %v; want %v", c.String(), got, ok, c)
		}
	}
	for _, bad := range []string{"valid", "RATE-LIMITED", " VALID", "OK"} {
		if c, ok := decision.Parse(bad); ok {
			t.Errorf("Parse(%q) = %v, want an error", bad, c)
		}
	}
}

func TestClasses(t *testing.T) {
	tests := []struct {
		code                         decision.Code
		allowed, auth, identity, lim bool
		hasMessage                   bool
	}{
		{decision.None, false, false, false, false, false},
		{decision.Valid, true, false, false, false, false},
		{decision.MissingKey, false, true, true, false, true},
		{decision.NotFound, false, true, true, false, true},
		{decision.Expired, false, true, true, false, true},
		{decision.Revoked, false, true, true, false, true},
		{decision.IPNotAllowed, false, true, false, false, true},
		{decision.OriginNotAllowed, false, true, false, false, true},
		{decision.InsufficientScope, false, true, false, false, true},
		{decision.RateLimited, false, false, false, true, true},
		{decision.QuotaExceeded, false, false, false, true, true},
	}
	if len(tests) != len(decision.Codes())+1 {
		t.Fatalf("the table covers %d codes, the package has %d", len(tests), len(decision.Codes())+1)
	}
	for _, tt := range tests {
		c := tt.code
		if c.Allowed() != tt.allowed || c.IsAuthFailure() != tt.auth || c.IsIdentityFailure() != tt.identity ||
			c.IsRateLimited() != tt.lim || (c.Message() != "") != tt.hasMessage {
			t.Errorf("%q: allowed %v auth %v identity %v limited %v message %q", c, c.Allowed(), c.IsAuthFailure(),
				c.IsIdentityFailure(), c.IsRateLimited(), c.Message())
		}
	}
	if s := decision.Code(200).String(); s != "" {
		t.Errorf("an out-of-range code prints %q", s)
	}
}

// Moved from metrics/record_test.go with the codes it checks.
func TestDecisionClasses(t *testing.T) {
	auth := 0
	for _, d := range []decision.Code{decision.Valid, decision.MissingKey, decision.NotFound, decision.Expired, decision.Revoked,
		decision.IPNotAllowed, decision.OriginNotAllowed, decision.InsufficientScope, decision.RateLimited, decision.QuotaExceeded} {
		if _, known := decision.Parse(d.String()); !known {
			t.Errorf("%s not known", d)
		}
		if d.IsAuthFailure() {
			auth++
		}
		if d.IsAuthFailure() && d.IsRateLimited() {
			t.Errorf("%s is both", d)
		}
	}
	if auth != 7 {
		t.Errorf("%d auth failure codes, want 7", auth)
	}
	if _, known := decision.Parse("valid"); known {
		t.Error("codes are case-sensitive")
	}
}
