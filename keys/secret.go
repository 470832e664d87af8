package keys

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// SecretFileName is where LoadOrCreateSecret keeps a generated key secret.
const SecretFileName = "key_secret"

// MinSecretLength is the shortest key secret a configuration may set. 32
// or more random characters are better; a generated secret has 64.
const MinSecretLength = 16

// ResolveSecret returns the key secret for the data directory dir: the
// configured one when it is not empty, else the one LoadOrCreateSecret
// keeps in dir (created then says it was generated just now). A
// configured secret shorter than MinSecretLength is ErrSecretTooShort.
//
// Every program that opens a data directory's keys (the server, the demo)
// resolves the secret here, so that they agree on which secret a data
// file was written with; keys.New then checks it against the file.
func ResolveSecret(configured, dir string) (secret []byte, created bool, err error) {
	if configured != "" {
		if len(configured) < MinSecretLength {
			return nil, false, fmt.Errorf("%w: security.key_secret (or APIWARDEN_KEY_SECRET) must be at least %d characters; use 32 or more random ones",
				ErrSecretTooShort, MinSecretLength)
		}
		return []byte(configured), false, nil
	}
	return LoadOrCreateSecret(dir)
}

// LoadOrCreateSecret returns the key secret stored in dir, creating a
// random one (256 bits, file mode 0600) on first use. created says that it
// was just made, so the caller can tell the operator to back it up: without
// it, no stored key verifies.
//
// apiwarden generates the secret rather than refusing to start so that a
// fresh checkout runs with one command; production sets
// APIWARDEN_KEY_SECRET, which keeps the pepper out of the data directory
// and out of backups of it.
func LoadOrCreateSecret(dir string) (secret []byte, created bool, err error) {
	path := filepath.Join(dir, SecretFileName)
	b, err := os.ReadFile(path)
	switch {
	case err == nil:
		s := strings.TrimSpace(string(b))
		if len(s) < 32 {
			return nil, false, fmt.Errorf("keys: %s holds a secret shorter than 32 characters; restore it or remove it to start over (every key becomes invalid)", path)
		}
		return []byte(s), false, nil
	case !errors.Is(err, fs.ErrNotExist):
		return nil, false, fmt.Errorf("keys: read key secret: %w", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, false, fmt.Errorf("keys: create %s: %w", dir, err)
	}
	raw := make([]byte, 32)
	_, _ = rand.Read(raw)
	s := hex.EncodeToString(raw)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, false, fmt.Errorf("keys: write key secret: %w", err)
	}
	if _, err := f.WriteString(s + "\n"); err != nil {
		f.Close()
		return nil, false, fmt.Errorf("keys: write key secret: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return nil, false, fmt.Errorf("keys: write key secret: %w", err)
	}
	if err := f.Close(); err != nil {
		return nil, false, fmt.Errorf("keys: write key secret: %w", err)
	}
	return []byte(s), true, nil
}
