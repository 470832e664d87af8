package cli

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/apiwarden/apiwarden/keys"
)

// The text the keys commands print without -json: tables and detail
// blocks aligned for a terminal.

// keyWithSecret is the answer of create and rotate: the key and its
// secret, which the server shows this once.
type keyWithSecret struct {
	Key    keys.Key `json:"key"`
	Secret string   `json:"secret"`
}

func (k keyWithSecret) text() string {
	return keyDetail(k.Key) + "\nsecret: " + k.Secret + "\n\nThis secret is shown once and cannot be recovered; store it now.\n"
}

// keyDetail is one key, a field a line.
func keyDetail(k keys.Key) string {
	return aligned(func(w io.Writer) { keyRows(w, k) })
}

// keyRows writes keyDetail's lines to w, name and value separated by a tab.
func keyRows(w io.Writer, k keys.Key) {
	row := func(name, value string) { fmt.Fprintf(w, "%s:\t%s\n", name, value) }
	row("id", k.ID)
	row("name", k.Name)
	row("owner", k.OwnerID)
	row("tier", k.Tier)
	row("status", string(k.Status))
	row("start", k.Start+"…")
	row("scopes", strings.Join(k.Scopes, ", "))
	if len(k.AllowedIPs) > 0 {
		row("allowed ips", strings.Join(k.AllowedIPs, ", "))
	}
	if len(k.AllowedOrigins) > 0 {
		row("allowed origins", strings.Join(k.AllowedOrigins, ", "))
	}
	row("created", fmtTime(&k.CreatedAt))
	row("expires", fmtTime(k.ExpiresAt))
	row("last used", fmtTime(k.LastUsedAt))
	if k.RotatedAt != nil {
		row("rotated", fmtTime(k.RotatedAt))
		row("old secret valid until", fmtTime(k.GraceUntil))
	}
	if k.RevokedAt != nil {
		row("revoked", fmtTime(k.RevokedAt))
	}
	for mk, mv := range k.Meta {
		row("meta."+mk, mv)
	}
}

// keyTable is a list of keys, one a row.
func keyTable(list []keys.Key) string {
	return aligned(func(w io.Writer) {
		fmt.Fprintln(w, "ID\tNAME\tOWNER\tTIER\tSTATUS\tSTART\tLAST USED")
		for _, k := range list {
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s…\t%s\n", k.ID, k.Name, k.OwnerID, k.Tier, k.Status, k.Start, fmtTime(k.LastUsedAt))
		}
	})
}

// eventTable is a key's audit events, one a row.
func eventTable(list []keys.Event) string {
	return aligned(func(w io.Writer) {
		fmt.Fprintln(w, "TIME\tTYPE\tACTOR\tCOUNT\tDETAIL")
		for _, e := range list {
			fmt.Fprintf(w, "%s\t%s\t%s\t%d\t%s\n", e.At.Format(time.RFC3339), e.Type, e.Actor, max(e.Count, 1), e.Detail)
		}
	})
}

// aligned is what write writes, with its tab-separated columns padded
// to line up, two spaces apart.
func aligned(write func(w io.Writer)) string {
	var b strings.Builder
	w := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
	write(w)
	w.Flush()
	return b.String()
}

// fmtTime is t in RFC 3339 UTC, or "-" for none.
func fmtTime(t *time.Time) string {
	if t == nil {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}
