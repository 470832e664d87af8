package cli

import (
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/apiwarden/apiwarden/demo"
)

// printDemoBanner says where everything is. The lines starting with a
// label and two spaces are stable: tests and scripts read them.
func printDemoBanner(w io.Writer, adminAddr, token, proxyURL, upstreamURL, dir string, temporary bool, backfill int, ks []demo.Key) {
	admin := "http://" + adminAddr
	fmt.Fprintf(w, `
apiwarden demo is running. Press Ctrl-C to stop.

  Dashboard:    %s/ui/
  Admin token:  %s
                (this run's only: sign in to the dashboard with it, or send it as a Bearer token)
  Proxy:        %s
  Upstream:     %s (the demo wedding API, behind the proxy)
`, admin, token, proxyURL, upstreamURL)
	if temporary {
		fmt.Fprintf(w, "  Data:         %s (removed on exit; keep it with -data DIR)\n", dir)
	} else {
		fmt.Fprintf(w, "  Data:         %s\n", dir)
	}

	fmt.Fprintln(w, "\nDemo keys (traffic flows through the proxy with them):")
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	var example string
	for _, k := range ks {
		status := ""
		if k.Key.Status != "active" {
			status = " (" + string(k.Key.Status) + ")"
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s%s\n", k.Key.ID, k.Key.Tier, k.Key.OwnerID, k.Key.Name, status)
		if k.Role == demo.RoleEnterprise {
			example = k.Secret
		}
	}
	tw.Flush()
	if example != "" {
		fmt.Fprintf(w, `
Call the API through apiwarden with the planner suite's key:

  curl -i -H "Authorization: Bearer %s" %s/api/guests/evt_1042
`, example, proxyURL)
	}
	fmt.Fprintf(w, `
Or ask the admin API what it sees:

  curl -H "Authorization: Bearer %s" '%s/admin/v1/alerts?state=firing'

Within a minute: a free-tier script (org_guestsync) hits its rate limit
and monthly quota, an upstream incident starts at 20 s (and every few
minutes after), and photo uploads are slow, so the rate_limit_exceeded,
quota_warning, error_spike and performance_degradation alerts fire.
`, token, admin)
	if backfill == 0 {
		fmt.Fprintln(w, "unusual_activity compares traffic with its history: run with -backfill-days 7 to see it too.")
	}
	fmt.Fprintln(w)
}
