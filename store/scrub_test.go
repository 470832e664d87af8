package store_test

import (
	"bytes"
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apiwarden/apiwarden/store"
	"github.com/apiwarden/apiwarden/store/storetest"
)

// secretValue is a value no other part of the file holds: long enough
// to own overflow pages, and one small enough to sit inside a leaf.
func secretValues() map[string][]byte {
	return map[string][]byte{
		"big":   []byte(strings.Repeat("erase-me-big-0123456789/", 1000)),
		"small": []byte("erase-me-small/distinctive-user-agent/9.9"),
	}
}

func putAll(t *testing.T, s *store.Store, bucket []byte, values map[string][]byte) {
	t.Helper()
	err := s.Update(func(tx *store.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bucket)
		if err != nil {
			return err
		}
		for k, v := range values {
			if err := b.Put([]byte(k), v); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func deleteAll(t *testing.T, s *store.Store, bucket []byte, values map[string][]byte) {
	t.Helper()
	err := s.Update(func(tx *store.Tx) error {
		b := tx.Bucket(bucket)
		for k := range values {
			if err := b.Delete([]byte(k)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// inFile lists the names of the values whose bytes the file holds.
func inFile(t *testing.T, s *store.Store, values map[string][]byte) []string {
	t.Helper()
	return storetest.FileHolds(t, s.Path(), values)
}

// Deleted values stay in the file until the free pages are overwritten;
// after ScrubFreePages no byte scan finds them and live data is intact.
func TestScrubFreePagesRemovesDeletedBytes(t *testing.T) {
	s := storetest.MustOpen(t)
	bucket := []byte("scrub")
	secrets := secretValues()
	putAll(t, s, bucket, map[string][]byte{"keep": []byte("kept-value")})
	putAll(t, s, bucket, secrets)
	// A few more commits, so the deleting one is not the last to free pages.
	for i := range 3 {
		putAll(t, s, bucket, map[string][]byte{"filler": bytes.Repeat([]byte{byte('a' + i)}, 5000)})
	}
	deleteAll(t, s, bucket, secrets)
	if found := inFile(t, s, secrets); len(found) != len(secrets) {
		t.Fatalf("before the scrub the file holds %v of the deleted values; the test needs all, to show the scan can find them", found)
	}
	res, err := s.ScrubFreePages(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if res.Pages == 0 || res.Bytes == 0 {
		t.Fatalf("scrubbed %+v, want some pages", res)
	}
	if found := inFile(t, s, secrets); len(found) > 0 {
		t.Fatalf("after the scrub the file still holds %v", found)
	}
	err = s.View(func(tx *store.Tx) error {
		if got := string(tx.Bucket(bucket).Get([]byte("keep"))); got != "kept-value" {
			t.Errorf("kept value reads %q", got)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// The file still works for writes that reuse the scrubbed pages.
	putAll(t, s, bucket, secretValues())
	if err := s.Check(); err != nil {
		t.Fatal(err)
	}
}

// A reader that began before the delete still sees the old value whole:
// the scrub waits for it, and overwrites the pages only after it ends.
func TestScrubFreePagesWaitsForOlderReaders(t *testing.T) {
	s := storetest.MustOpen(t)
	bucket := []byte("scrub")
	secrets := secretValues()
	putAll(t, s, bucket, secrets)

	inside, release := make(chan struct{}), make(chan struct{})
	var readerErr error
	var wg sync.WaitGroup
	wg.Go(func() {
		readerErr = s.View(func(tx *store.Tx) error {
			close(inside)
			<-release
			if got := tx.Bucket(bucket).Get([]byte("big")); !bytes.Equal(got, secrets["big"]) {
				t.Errorf("the older reader saw its value change under it (%d bytes)", len(got))
			}
			return nil
		})
	})
	<-inside
	deleteAll(t, s, bucket, secrets)
	done := make(chan error, 1)
	go func() {
		_, err := s.ScrubFreePages(context.Background())
		done <- err
	}()
	select {
	case err := <-done:
		t.Fatalf("the scrub returned (%v) while an older reader was open", err)
	default:
	}
	close(release)
	wg.Wait()
	if readerErr != nil {
		t.Fatal(readerErr)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the scrub did not finish after the reader ended")
	}
	if found := inFile(t, s, secrets); len(found) > 0 {
		t.Fatalf("after the scrub the file still holds %v", found)
	}
}

// A scrub that cannot wait any longer gives up with the context's error.
func TestScrubFreePagesHonoursContext(t *testing.T) {
	s := storetest.MustOpen(t)
	inside, release := make(chan struct{}), make(chan struct{})
	go func() {
		_ = s.View(func(*store.Tx) error { close(inside); <-release; return nil })
	}()
	<-inside
	defer close(release)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := s.ScrubFreePages(ctx); err != context.DeadlineExceeded {
		t.Fatalf("got %v, want context.DeadlineExceeded", err)
	}
}
