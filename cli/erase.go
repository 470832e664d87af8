package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"time"
)

// eraseTimeout bounds an erase call: erasing a busy key rewrites most raw
// blocks, which takes a while on a large file (docs/BENCHMARKS.md).
const eraseTimeout = 15 * time.Minute

// eraseAnswer is the server's Erasure answer, as the CLI prints it.
type eraseAnswer struct {
	KeyID           string `json:"key_id"`
	OwnerID         string `json:"owner_id"`
	Rollups         bool   `json:"rollups"`
	RawRecords      int    `json:"raw_records"`
	BlocksRewritten int    `json:"blocks_rewritten"`
	BlocksDeleted   int    `json:"blocks_deleted"`
	RollupCells     int    `json:"rollup_cells"`
	ScrubbedPages   int    `json:"scrubbed_pages"`
	ClusterRecords  int64  `json:"cluster_records"`
	ClusterCells    int64  `json:"cluster_cells"`
	Keys            int    `json:"keys"`
	KeysBlanked     int    `json:"keys_blanked"`
}

// eraseCmd is `apiwarden erase -key ID | -owner ID`: it asks a running
// server to erase that usage data and prints what went.
func eraseCmd(ctx context.Context, args []string, stdout io.Writer, getenv func(string) string) error {
	fs := newFlags("erase", stdout)
	key := fs.String("key", "", "erase this key's usage data")
	owner := fs.String("owner", "", "erase the usage data of this owner and its keys")
	rollups := fs.Bool("rollups", false, "also delete rollup counts (the billing report no longer includes them)")
	blank := fs.Bool("blank", false, "also clear the name and meta of the key, or of the owner's keys")
	asJSON := fs.Bool("json", false, "print the server's answer as JSON")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if (*key == "") == (*owner == "") || fs.NArg() > 0 {
		return usageError{"usage: apiwarden erase -key ID | -owner ID [-rollups] [-blank] [-json]"}
	}
	c, err := newAdminClient(getenv)
	if err != nil {
		return err
	}
	c.http.Timeout = eraseTimeout
	path := "/admin/v1/keys/" + url.PathEscape(*key) + "/data"
	if *owner != "" {
		path = "/admin/v1/owners/" + url.PathEscape(*owner) + "/data"
	}
	q := url.Values{}
	if *rollups {
		q.Set("rollups", "true")
	}
	if *blank {
		q.Set("blank", "true")
	}
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	var raw json.RawMessage
	if err := c.do(ctx, "DELETE", path, nil, &raw); err != nil {
		return fmt.Errorf("erase: %w", err)
	}
	if *asJSON {
		_, err := fmt.Fprintln(stdout, string(raw))
		return err
	}
	var a eraseAnswer
	if err := json.Unmarshal(raw, &a); err != nil {
		return fmt.Errorf("erase: the server's answer: %w", err)
	}
	subject := "key " + a.KeyID
	if a.OwnerID != "" {
		subject = "owner " + a.OwnerID
	}
	fmt.Fprintf(stdout, "erased the usage data of %s:\n", subject)
	fmt.Fprintf(stdout, "  raw records      %d (%d blocks rewritten, %d deleted)\n", a.RawRecords, a.BlocksRewritten, a.BlocksDeleted)
	if a.Rollups {
		fmt.Fprintf(stdout, "  rollup cells     %d\n", a.RollupCells)
	} else {
		fmt.Fprintln(stdout, "  rollup cells     kept (billing still sums them; -rollups deletes them)")
	}
	fmt.Fprintf(stdout, "  PostgreSQL       %d records, %d cells\n", a.ClusterRecords, a.ClusterCells)
	fmt.Fprintf(stdout, "  free pages       %d overwritten\n", a.ScrubbedPages)
	fmt.Fprintf(stdout, "  audit events     %d (names and meta blanked: %d)\n", a.Keys, a.KeysBlanked)
	return nil
}
