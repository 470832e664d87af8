package store_test

import (
	"fmt"
	"os"

	"github.com/apiwarden/apiwarden/store"
)

func Example() {
	dir, _ := os.MkdirTemp("", "apiwarden-example")
	defer os.RemoveAll(dir)

	s, err := store.Open(dir, store.Options{})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer s.Close()

	_ = s.Update(func(tx *store.Tx) error {
		b, err := tx.CreateBucketIfNotExists([]byte("greetings"))
		if err != nil {
			return err
		}
		return b.Put([]byte("en"), []byte("hello"))
	})
	_ = s.View(func(tx *store.Tx) error {
		// The slice is only valid inside the transaction: print it here.
		fmt.Println(string(tx.Bucket([]byte("greetings")).Get([]byte("en"))))
		return nil
	})
	// Output: hello
}
