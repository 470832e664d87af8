package demo

import (
	"fmt"
	"time"

	"github.com/apiwarden/apiwarden/keys"
)

// Key is a demo key: the persona it belongs to, its record, and its
// secret when this run knows it.
type Key struct {
	Role   string
	Key    keys.Key
	Secret string // "" for a revoked key an earlier run created
}

// metaRole is the key meta field that names a demo key's persona.
const metaRole = "demo"

// actor is who the audit log says made the demo's changes.
const actor = "demo"

// SeedKeys makes sure every persona with a key of its own has one, and
// returns them in persona order. A key an earlier run left (found by its
// meta "demo" field) is rotated with no grace period, since its secret
// was shown once and is gone: the key id, its limits and its history stay.
// A revoked key is kept as it is, without a secret. reused reports that
// at least one key was found rather than created.
//
// Errors are the key service's (keys.ErrInvalid when the configuration
// lacks a persona's tier or scope).
func SeedKeys(svc *keys.Service) (_ []Key, reused bool, err error) {
	existing, err := demoKeys(svc)
	if err != nil {
		return nil, false, err
	}
	var out []Key
	for _, p := range personas {
		if p.Use != UseOwnKey {
			continue
		}
		if k, ok := existing[p.Role]; ok {
			reused = true
			if k.Status == keys.StatusRevoked {
				out = append(out, Key{Role: p.Role, Key: k})
				continue
			}
			var noGrace time.Duration
			k, secret, err := svc.Rotate(k.ID, &noGrace, actor)
			if err != nil {
				return nil, false, fmt.Errorf("demo: rotating the %s key: %w", p.Role, err)
			}
			out = append(out, Key{Role: p.Role, Key: k, Secret: secret})
			continue
		}
		k, secret, err := svc.Create(keys.CreateParams{
			Name: p.Name, OwnerID: p.OwnerID, Tier: p.Tier, Scopes: p.Scopes,
			Meta: map[string]string{metaRole: p.Role},
		}, actor)
		if err != nil {
			return nil, false, fmt.Errorf("demo: creating the %s key: %w", p.Role, err)
		}
		if p.Revoked {
			if k, err = svc.Revoke(k.ID, actor, "integration retired; its calls are still arriving"); err != nil {
				return nil, false, fmt.Errorf("demo: revoking the %s key: %w", p.Role, err)
			}
		}
		out = append(out, Key{Role: p.Role, Key: k, Secret: secret})
	}
	return out, reused, nil
}

// demoKeys finds the keys earlier runs created, by persona role.
func demoKeys(svc *keys.Service) (map[string]keys.Key, error) {
	found := map[string]keys.Key{}
	for cursor := ""; ; {
		page, next, err := svc.List(keys.Filter{Cursor: cursor, Limit: 1000})
		if err != nil {
			return nil, err
		}
		for _, k := range page {
			if role := k.Meta[metaRole]; role != "" {
				found[role] = k
			}
		}
		if next == "" {
			return found, nil
		}
		cursor = next
	}
}
