package admin

import (
	"testing"
	"time"

	"github.com/apiwarden/apiwarden/analytics"
)

func TestExportFilename(t *testing.T) {
	from := time.Date(2026, 11, 25, 5, 0, 0, 0, time.UTC)
	to := time.Date(2026, 12, 1, 17, 30, 15, 0, time.UTC)
	for _, tc := range []struct {
		ex   export
		want string
	}{
		{export{format: "csv", from: from, to: to}, "apiwarden-requests-20261125T050000Z-20261201T173015Z.csv"},
		{export{format: "ndjson", to: to}, "apiwarden-requests-20261201T173015Z.ndjson"},
		{export{format: "csv", plan: &analytics.SeriesPlan{}, from: from, to: to}, "apiwarden-timeseries-20261125T050000Z-20261201T173015Z.csv"},
	} {
		if got := tc.ex.filename(); got != tc.want {
			t.Errorf("filename %q, want %q", got, tc.want)
		}
	}
}
