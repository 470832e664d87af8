package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// backupCmd saves a hot backup of a running server's data file.
func backupCmd(ctx context.Context, args []string, stdout io.Writer, getenv func(string) string) error {
	fs := newFlags("backup", stdout)
	out := fs.String("out", "", "file to write the backup to (required)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *out == "" || fs.NArg() > 0 {
		return usageError{"usage: apiwarden backup -out FILE"}
	}
	c, err := newAdminClient(getenv)
	if err != nil {
		return err
	}
	// Write next to the target and rename, so a failed transfer never
	// leaves a truncated file under the name given.
	tmp, err := os.CreateTemp(filepath.Dir(*out), filepath.Base(*out)+".partial-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	n, err := c.download(ctx, "/admin/v1/backup", tmp)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	if err := os.Rename(tmp.Name(), *out); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "wrote %s (%d bytes)\n", *out, n)
	fmt.Fprintln(stdout, "Restore: stop apiwarden, copy it to <data_dir>/apiwarden.db, start with the same key secret.")
	return nil
}
