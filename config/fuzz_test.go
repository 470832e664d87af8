package config_test

import (
	"errors"
	"testing"

	"github.com/apiwarden/apiwarden/config"
)

// FuzzParse: any input either loads or returns Problems; never a panic,
// never another kind of error.
func FuzzParse(f *testing.F) {
	f.Add([]byte("[server]\nlisten = \"127.0.0.1:1\"\n"))
	f.Add([]byte("[[routes]]\npath = \"/a/:id/*\"\npreset = \"public\"\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := config.Parse(data, "fuzz.toml")
		if err == nil {
			if cfg == nil {
				t.Fatal("nil config without error")
			}
			return
		}
		var ps config.Problems
		if !errors.As(err, &ps) || len(ps) == 0 {
			t.Fatalf("error is not Problems: %T %v", err, err)
		}
	})
}
