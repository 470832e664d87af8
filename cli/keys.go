package cli

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/url"
	"strings"
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

// keysAction runs one keys command once its flags are parsed. It returns
// the server's answer twice: as a value for -json and as text.
type keysAction func(ctx context.Context, c *adminClient) (v any, text string, err error)

// keysCmd is the admin client: `apiwarden keys <command>`. Each command
// defines its flags on fs and returns the action that runs it.
func keysCmd(ctx context.Context, args []string, stdout io.Writer, getenv func(string) string) error {
	if len(args) == 0 {
		return usageError{keysUsage}
	}
	sub, args := args[0], args[1:]
	fs := newFlags("keys "+sub, stdout)
	asJSON := fs.Bool("json", false, "print JSON")
	var action keysAction
	switch sub {
	case "create":
		action = keysCreate(fs)
	case "list":
		action = keysList(fs)
	case "show", "rotate", "revoke", "events":
		action = keysByID(fs, sub)
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
	v, text, err := action(ctx, c)
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

// keysCreate is `keys create`: it prints the new key and its secret.
func keysCreate(fs *flag.FlagSet) keysAction {
	var p keys.CreateParams
	fs.StringVar(&p.Name, "name", "", "a name people recognise")
	fs.StringVar(&p.OwnerID, "owner", "", "owner (customer) id")
	fs.StringVar(&p.Tier, "tier", "", "tier (default: free)")
	scopes := fs.String("scopes", "", "comma-separated scopes")
	ips := fs.String("allowed-ips", "", "comma-separated CIDRs the key may be used from")
	origins := fs.String("allowed-origins", "", "comma-separated origins the key may be used from")
	expires := fs.String("expires", "", "expiry: an RFC 3339 time or a duration from now (720h)")
	meta := fs.String("meta", "", "comma-separated key=value pairs")
	return func(ctx context.Context, c *adminClient) (any, string, error) {
		p.Scopes, p.AllowedIPs, p.AllowedOrigins = splitList(*scopes), splitList(*ips), splitList(*origins)
		if *expires != "" {
			t, err := parseExpiry(*expires, time.Now())
			if err != nil {
				return nil, "", err
			}
			p.ExpiresAt = &t
		}
		if *meta != "" {
			m, err := parseMeta(*meta)
			if err != nil {
				return nil, "", err
			}
			p.Meta = m
		}
		var out keyWithSecret
		err := c.do(ctx, "POST", "/admin/v1/keys", p, &out)
		return out, out.text(), err
	}
}

// keysList is `keys list`: the first page of keys that match, or with
// -all every page.
func keysList(fs *flag.FlagSet) keysAction {
	owner := fs.String("owner", "", "only keys of this owner")
	tier := fs.String("tier", "", "only keys of this tier")
	status := fs.String("status", "", "only keys with this status")
	limit := fs.Int("limit", 100, "keys per page")
	all := fs.Bool("all", false, "follow every page")
	return func(ctx context.Context, c *adminClient) (any, string, error) {
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
}

// keysByID is the commands on one key: show, rotate, revoke and events.
// They share one flag set, so each accepts -grace and -reason.
func keysByID(fs *flag.FlagSet, sub string) keysAction {
	grace := fs.String("grace", "", "rotate: how long the old secret keeps working (default: server's grace_period)")
	reason := fs.String("reason", "", "revoke: why, for the audit log")
	return func(ctx context.Context, c *adminClient) (any, string, error) {
		if fs.NArg() != 1 {
			return nil, "", usageError{fmt.Sprintf("keys %s takes one key id", sub)}
		}
		path := "/admin/v1/keys/" + url.PathEscape(fs.Arg(0))
		switch sub {
		case "show":
			return keysShow(ctx, c, path)
		case "rotate":
			return keysRotate(ctx, c, path, *grace)
		case "revoke":
			return keysRevoke(ctx, c, path, *reason)
		default:
			return keysEvents(ctx, c, path)
		}
	}
}

// keysShow is `keys show ID`: the key at path.
func keysShow(ctx context.Context, c *adminClient, path string) (any, string, error) {
	var k keys.Key
	err := c.do(ctx, "GET", path, nil, &k)
	return k, keyDetail(k), err
}

// keysRotate is `keys rotate ID`: a new secret, the old one valid for
// grace (the server's default when empty).
func keysRotate(ctx context.Context, c *adminClient, path, grace string) (any, string, error) {
	body := map[string]string{}
	if grace != "" {
		body["grace_period"] = grace
	}
	var out keyWithSecret
	err := c.do(ctx, "POST", path+"/rotate", body, &out)
	return out, out.text(), err
}

// keysRevoke is `keys revoke ID`, with reason in the audit log.
func keysRevoke(ctx context.Context, c *adminClient, path, reason string) (any, string, error) {
	var k keys.Key
	err := c.do(ctx, "DELETE", path, map[string]string{"reason": reason}, &k)
	return k, fmt.Sprintf("revoked %s at %s\n", k.ID, fmtTime(k.RevokedAt)), err
}

// keysEvents is `keys events ID`: the key's audit events, up to 1000.
func keysEvents(ctx context.Context, c *adminClient, path string) (any, string, error) {
	var out struct {
		Events []keys.Event `json:"events"`
	}
	err := c.do(ctx, "GET", path+"/events?limit=1000", nil, &out)
	return out.Events, eventTable(out.Events), err
}

// splitList is the non-empty, trimmed items of a comma-separated list.
func splitList(s string) []string {
	var out []string
	for _, part := range strings.Split(s, ",") {
		if part = strings.TrimSpace(part); part != "" {
			out = append(out, part)
		}
	}
	return out
}

// parseMeta reads -meta: comma-separated key=value pairs.
func parseMeta(s string) (map[string]string, error) {
	meta := map[string]string{}
	for _, kv := range splitList(s) {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return nil, usageError{fmt.Sprintf("-meta: %q is not key=value", kv)}
		}
		meta[k] = v
	}
	return meta, nil
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
