package keys_test

import (
	"fmt"
	"os"
	"time"

	"github.com/apiwarden/apiwarden/keys"
	"github.com/apiwarden/apiwarden/store"
)

func Example() {
	dir, _ := os.MkdirTemp("", "keys-example")
	defer os.RemoveAll(dir)
	st, _ := store.Open(dir, store.Options{})
	defer st.Close()

	svc, err := keys.New(keys.Options{
		Store:  st,
		Secret: []byte("a long random secret from APIWARDEN_KEY_SECRET"),
		Policy: keys.Policy{Tiers: []string{"free"}, DefaultTier: "free", Scopes: []string{"forms:read"}},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer svc.Close()

	key, secret, _ := svc.Create(keys.CreateParams{Name: "planner app", OwnerID: "org_42", Scopes: []string{"forms:read"}}, "admin")
	// The secret is shown once; only its HMAC is stored.
	id, err := svc.Verify(time.Now(), secret)
	fmt.Println(err, id.ID == key.ID, id.OwnerID, id.HasScopes([]string{"forms:read"}))

	_, _ = svc.Revoke(key.ID, "admin", "rotated out")
	_, err = svc.Verify(time.Now(), secret)
	fmt.Println(err)
	// Output:
	// <nil> true org_42 true
	// keys: key revoked
}
