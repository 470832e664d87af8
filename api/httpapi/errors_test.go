package httpapi_test

import (
	"testing"

	"github.com/apiwarden/apiwarden/api/httpapi"
	"github.com/apiwarden/apiwarden/decision"
)

// Every decision code answers with the status README.md's table gives it;
// the RATE_LIMITED row was checked in enforce/decide_test.go before the
// status table moved here.
func TestDecisionStatuses(t *testing.T) {
	want := map[decision.Code]int{
		decision.Valid: 200, decision.MissingKey: 401, decision.NotFound: 401, decision.Expired: 401, decision.Revoked: 401,
		decision.IPNotAllowed: 403, decision.OriginNotAllowed: 403, decision.InsufficientScope: 403,
		decision.RateLimited: 429, decision.QuotaExceeded: 429,
	}
	for _, c := range decision.Codes() {
		if got := httpapi.DecisionStatus(c); got != want[c] {
			t.Errorf("%s answers %d, want %d", c, got, want[c])
		}
		if !c.Allowed() {
			if e := httpapi.Denial(c); e.Code != c.String() || e.Message == "" || httpapi.StatusOf(e.Code) != want[c] {
				t.Errorf("%s: denial %+v", c, e)
			}
		}
	}
	if got := httpapi.StatusOf("NO_SUCH_CODE"); got != 500 {
		t.Errorf("an unknown code answers %d, want 500", got)
	}
}
