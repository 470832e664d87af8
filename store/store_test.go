package store_test

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/apiwarden/apiwarden/store"
	"github.com/apiwarden/apiwarden/store/storetest"
)

func TestUpdateCommitsAndViewReads(t *testing.T) {
	s := storetest.MustOpen(t)
	err := s.Update(func(tx *store.Tx) error {
		b, err := tx.CreateBucketIfNotExists([]byte("a"), []byte("b"))
		if err != nil {
			return err
		}
		return b.Put([]byte("k"), []byte("v"))
	})
	if err != nil {
		t.Fatal(err)
	}
	var got string
	if err := s.View(func(tx *store.Tx) error {
		got = string(tx.Bucket([]byte("a"), []byte("b")).Get([]byte("k")))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if got != "v" {
		t.Fatalf("got %q, want v", got)
	}
}

func TestUpdateRollsBackOnErrorAndPanic(t *testing.T) {
	s := storetest.MustOpen(t)
	boom := errors.New("boom")
	cases := []struct {
		name string
		fn   func(*store.Tx) error
		want func(error) bool
	}{
		{"error", func(tx *store.Tx) error {
			b, _ := tx.CreateBucketIfNotExists([]byte("x"))
			_ = b.Put([]byte("k"), []byte("v"))
			return boom
		}, func(err error) bool { return errors.Is(err, boom) }},
		{"panic", func(tx *store.Tx) error {
			b, _ := tx.CreateBucketIfNotExists([]byte("x"))
			_ = b.Put([]byte("k"), []byte("v"))
			panic("kaput")
		}, func(err error) bool { return err != nil && strings.Contains(err.Error(), "kaput") }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := s.Update(tc.fn)
			if !tc.want(err) {
				t.Fatalf("unexpected error %v", err)
			}
			_ = s.View(func(tx *store.Tx) error {
				if tx.Bucket([]byte("x")) != nil {
					t.Error("bucket survived a rolled-back transaction")
				}
				return nil
			})
		})
	}
}

func TestMustBucketNamesMissingPath(t *testing.T) {
	s := storetest.MustOpen(t)
	err := s.View(func(tx *store.Tx) error {
		_, err := tx.MustBucket([]byte("nope"))
		return err
	})
	if !errors.Is(err, store.ErrBucketMissing) || !strings.Contains(err.Error(), "nope") {
		t.Fatalf("got %v", err)
	}
}

func TestSecondInstanceIsLocked(t *testing.T) {
	dir := t.TempDir()
	s, err := store.Open(dir, store.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	start := time.Now()
	_, err = store.Open(dir, store.Options{LockTimeout: 200 * time.Millisecond})
	if !errors.Is(err, store.ErrLocked) {
		t.Fatalf("second open: got %v, want ErrLocked", err)
	}
	if !strings.Contains(err.Error(), "in use") || !strings.Contains(err.Error(), dir) {
		t.Errorf("message should say the directory is in use and name it: %v", err)
	}
	if waited := time.Since(start); waited > 5*time.Second {
		t.Errorf("gave up after %s, want within seconds", waited)
	}
}

func TestCorruptFile(t *testing.T) {
	cases := map[string][]byte{
		"text":    []byte(strings.Repeat("this is not a database\n", 1000)),
		"zeros":   make([]byte, 64*1024),
		"trimmed": nil, // filled below: a valid file cut short
	}
	{
		dir := t.TempDir()
		s, err := store.Open(dir, store.Options{NoSync: true})
		if err != nil {
			t.Fatal(err)
		}
		s.Close()
		b, _ := os.ReadFile(filepath.Join(dir, store.FileName))
		cases["trimmed"] = b[:100]
	}
	for name, content := range cases {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, store.FileName), content, 0o600); err != nil {
				t.Fatal(err)
			}
			s, err := store.Open(dir, store.Options{})
			if err == nil {
				s.Close()
				t.Fatal("opened a corrupt file")
			}
			if !errors.Is(err, store.ErrCorrupt) {
				t.Fatalf("got %v, want ErrCorrupt", err)
			}
		})
	}
}

// A v0 file is one written before the schema was versioned: bbolt with
// no meta bucket. Opening it must bring it to the current version without
// touching its data.
func TestMigratesV0File(t *testing.T) {
	dir := t.TempDir()
	db, err := bolt.Open(filepath.Join(dir, store.FileName), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucket(store.BucketKeys)
		if err != nil {
			return err
		}
		return b.Put([]byte("key_old"), []byte(`{"id":"key_old"}`))
	}); err != nil {
		t.Fatal(err)
	}
	db.Close()

	s, err := store.Open(dir, store.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	v, err := s.Version()
	if err != nil || v != store.SchemaVersion() {
		t.Fatalf("version %d (%v), want %d", v, err, store.SchemaVersion())
	}
	_ = s.View(func(tx *store.Tx) error {
		for _, name := range [][]byte{store.BucketKeys, store.BucketKeyHashes, store.BucketRaw, store.BucketAlerts} {
			if tx.Bucket(name) == nil {
				t.Errorf("bucket %s missing after migration", name)
			}
		}
		if got := tx.Bucket(store.BucketKeys).Get([]byte("key_old")); string(got) != `{"id":"key_old"}` {
			t.Errorf("migration lost data: %q", got)
		}
		return nil
	})
}

func TestRefusesNewerSchema(t *testing.T) {
	dir := t.TempDir()
	s, err := store.Open(dir, store.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	db, _ := bolt.Open(filepath.Join(dir, store.FileName), 0o600, nil)
	_ = db.Update(func(tx *bolt.Tx) error {
		v := make([]byte, 8)
		v[7] = 99
		return tx.Bucket(store.BucketMeta).Put([]byte("schema_version"), v)
	})
	db.Close()
	if _, err := store.Open(dir, store.Options{}); !errors.Is(err, store.ErrSchemaTooNew) {
		t.Fatalf("got %v, want ErrSchemaTooNew", err)
	}
}

func TestBackupOpensAsDataFile(t *testing.T) {
	s := storetest.MustOpen(t)
	for i := range 100 {
		if err := s.Update(func(tx *store.Tx) error {
			return tx.Bucket(store.BucketKeys).Put(fmt.Appendf(nil, "k%03d", i), []byte("v"))
		}); err != nil {
			t.Fatal(err)
		}
	}
	var buf bytes.Buffer
	n, err := s.Backup(&buf)
	if err != nil || n != int64(buf.Len()) || n == 0 {
		t.Fatalf("backup: n=%d len=%d err=%v", n, buf.Len(), err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, store.FileName), buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	restored, err := store.Open(dir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer restored.Close()
	if err := restored.Check(); err != nil {
		t.Fatal(err)
	}
	_ = restored.View(func(tx *store.Tx) error {
		if n := tx.Bucket(store.BucketKeys).KeyN(); n != 100 {
			t.Errorf("restored %d keys, want 100", n)
		}
		return nil
	})
}

func TestDiskFullIsRecognisable(t *testing.T) {
	// The kernel's ENOSPC arrives wrapped in *os.PathError from bbolt's
	// write; callers must be able to test for it with errors.Is.
	s := storetest.MustOpen(t)
	err := s.Update(func(tx *store.Tx) error {
		return &os.PathError{Op: "write", Path: s.Path(), Err: syscall.ENOSPC}
	})
	if !errors.Is(err, store.ErrDiskFull) {
		t.Fatalf("got %v, want ErrDiskFull", err)
	}
}

func TestClosedStore(t *testing.T) {
	s, err := store.Open(t.TempDir(), store.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	if err := s.View(func(*store.Tx) error { return nil }); !errors.Is(err, store.ErrClosed) {
		t.Fatalf("got %v, want ErrClosed", err)
	}
}

type announcingBuffer struct {
	bytes.Buffer
	announced int64
}

func (a *announcingBuffer) AnnounceSize(n int64) { a.announced = n }

func TestBackupAnnouncesItsSize(t *testing.T) {
	s := storetest.MustOpen(t)
	var buf announcingBuffer
	n, err := s.Backup(&buf)
	if err != nil || buf.announced != n || n != int64(buf.Len()) {
		t.Fatalf("announced %d, wrote %d (%d buffered), err %v", buf.announced, n, buf.Len(), err)
	}
}
