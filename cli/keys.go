package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/apiwarden/apiwarden/keys"
)

const keysUsage = `usage: apiwarden keys <command> [flags]

  create  -tier T [-name N] [-owner O] [-scopes a,b] [-allowed-ips CIDR,..] [-allowed-origins URL,..]
          [-expires RFC3339|DURATION] [-meta k=v,..]   prints the secret once
  list    [-owner O] [-tier T] [-status active|revoked|expired] [-limit N] [-all]
  show    ID
  rotate  ID [-grace 24h]                              prints the new secret once
  revoke  ID [-reason TEXT]
  events  ID

Every command takes -json for scripts. The server is APIWARDEN_URL
(default http://127.0.0.1:8081) and the token APIWARDEN_ADMIN_TOKEN.`

func keysCmd(ctx context.Context, args []string, stdout io.Writer, getenv func(string) string) error {
	if len(args) == 0 {
		return usageError{keysUsage}
	}
	sub, args := args[0], args[1:]
	fs := newFlags("keys "+sub, stdout)
	asJSON := fs.Bool("json", false, "print JSON")
	var run func(c *adminClient) (any, string, error)
	switch sub {
	case "create":
		var p keys.CreateParams
		fs.StringVar(&p.Name, "name", "", "a name people recognise")
		fs.StringVar(&p.OwnerID, "owner", "", "owner (customer) id")
		fs.StringVar(&p.Tier, "tier", "", "tier (default: free)")
		scopes := fs.String("scopes", "", "comma-separated scopes")
		ips := fs.String("allowed-ips", "", "comma-separated CIDRs the key may be used from")
		origins := fs.String("allowed-origins", "", "comma-separated origins the key may be used from")
		expires := fs.String("expires", "", "expiry: an RFC 3339 time or a duration from now (720h)")
		meta := fs.String("meta", "", "comma-separated key=value pairs")
		run = func(c *adminClient) (any, string, error) {
			p.Scopes, p.AllowedIPs, p.AllowedOrigins = splitList(*scopes), splitList(*ips), splitList(*origins)
			if *expires != "" {
				t, err := parseExpiry(*expires, time.Now())
				if err != nil {
					return nil, "", err
				}
				p.ExpiresAt = &t
			}
			if *meta != "" {
				p.Meta = map[string]string{}
				for _, kv := range splitList(*meta) {
					k, v, ok := strings.Cut(kv, "=")
					if !ok {
						return nil, "", usageError{fmt.Sprintf("-meta: %q is not key=value", kv)}
					}
					p.Meta[k] = v
				}
			}
			var out keyWithSecret
			err := c.do(ctx, "POST", "/admin/v1/keys", p, &out)
			return out, out.text(), err
		}
	case "list":
		owner := fs.String("owner", "", "only keys of this owner")
		tier := fs.String("tier", "", "only keys of this tier")
		status := fs.String("status", "", "only keys with this status")
		limit := fs.Int("limit", 100, "keys per page")
		all := fs.Bool("all", false, "follow every page")
		run = func(c *adminClient) (any, string, error) {
			q := url.Values{}
			for name, v := range map[string]string{"owner_id": *owner, "tier": *tier, "status": *status} {
				if v != "" {
					q.Set(name, v)
				}
			}
			q.Set("limit", fmt.Sprint(*limit))
			var list []keys.Key
			for {
				var page struct {
					Keys       []keys.Key `json:"keys"`
					NextCursor string     `json:"next_cursor"`
				}
				if err := c.do(ctx, "GET", "/admin/v1/keys?"+q.Encode(), nil, &page); err != nil {
					return nil, "", err
				}
				list = append(list, page.Keys...)
				if !*all || page.NextCursor == "" {
					break
				}
				q.Set("cursor", page.NextCursor)
			}
			return list, keyTable(list), nil
		}
	case "show", "rotate", "revoke", "events":
		grace := fs.String("grace", "", "rotate: how long the old secret keeps working (default: server's grace_period)")
		reason := fs.String("reason", "", "revoke: why, for the audit log")
		run = func(c *adminClient) (any, string, error) {
			if fs.NArg() != 1 {
				return nil, "", usageError{fmt.Sprintf("keys %s takes one key id", sub)}
			}
			path := "/admin/v1/keys/" + url.PathEscape(fs.Arg(0))
			switch sub {
			case "show":
				var k keys.Key
				err := c.do(ctx, "GET", path, nil, &k)
				return k, keyDetail(k), err
			case "rotate":
				body := map[string]string{}
				if *grace != "" {
					body["grace_period"] = *grace
				}
				var out keyWithSecret
				err := c.do(ctx, "POST", path+"/rotate", body, &out)
				return out, out.text(), err
			case "revoke":
				var k keys.Key
				err := c.do(ctx, "DELETE", path, map[string]string{"reason": *reason}, &k)
				return k, fmt.Sprintf("revoked %s at %s\n", k.ID, fmtTime(k.RevokedAt)), err
			default:
				var out struct {
					Events []keys.Event `json:"events"`
				}
				err := c.do(ctx, "GET", path+"/events?limit=1000", nil, &out)
				return out.Events, eventTable(out.Events), err
			}
		}
	default:
		return usageError{fmt.Sprintf("unknown keys command %q\n\n%s", sub, keysUsage)}
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	c, err := newAdminClient(getenv)
	if err != nil {
		return err
	}
	v, text, err := run(c)
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}
	_, err = io.WriteString(stdout, text)
	return err
}

type keyWithSecret struct {
	Key    keys.Key `json:"key"`
	Secret string   `json:"secret"`
}

func (k keyWithSecret) text() string {
	return keyDetail(k.Key) + "\nsecret: " + k.Secret + "\n\nThis secret is shown once and cannot be recovered; store it now.\n"
}

func keyDetail(k keys.Key) string {
	var b strings.Builder
	w := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
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
	w.Flush()
	return b.String()
}

func keyTable(list []keys.Key) string {
	var b strings.Builder
	w := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "ID\tNAME\tOWNER\tTIER\tSTATUS\tSTART\tLAST USED")
	for _, k := range list {
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s…\t%s\n", k.ID, k.Name, k.OwnerID, k.Tier, k.Status, k.Start, fmtTime(k.LastUsedAt))
	}
	w.Flush()
	return b.String()
}

func eventTable(list []keys.Event) string {
	var b strings.Builder
	w := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "TIME\tTYPE\tACTOR\tCOUNT\tDETAIL")
	for _, e := range list {
		fmt.Fprintf(w, "%s\t%s\t%s\t%d\t%s\n", e.At.Format(time.RFC3339), e.Type, e.Actor, max(e.Count, 1), e.Detail)
	}
	w.Flush()
	return b.String()
}

func fmtTime(t *time.Time) string {
	if t == nil {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

func splitList(s string) []string {
	var out []string
	for _, part := range strings.Split(s, ",") {
		if part = strings.TrimSpace(part); part != "" {
			out = append(out, part)
		}
	}
	return out
}

// parseExpiry reads an RFC 3339 time or a duration from now.
func parseExpiry(s string, now time.Time) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	if d, err := time.ParseDuration(s); err == nil && d > 0 {
		return now.Add(d), nil
	}
	return time.Time{}, usageError{fmt.Sprintf("-expires: %q is neither an RFC 3339 time nor a positive duration", s)}
}
