package pgtest_test

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/apiwarden/apiwarden/internal/pgtest"
)

var pg pgtest.Server

func TestMain(m *testing.M) { os.Exit(pg.RunTests(m)) }

func connect(t *testing.T, url string) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// Each test gets its own database: a table made in one is absent in the
// other.
func TestDatabasesAreSeparate(t *testing.T) {
	a, b := pg.Database(t), pg.Database(t) // starts the server: no deadline of ours
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if a == b {
		t.Fatalf("two databases with one URL %s", a)
	}
	if _, err := connect(t, a).Exec(ctx, "CREATE TABLE only_in_a (x int)"); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := connect(t, b).QueryRow(ctx, "SELECT count(*) FROM pg_tables WHERE tablename = 'only_in_a'").Scan(&n); err != nil || n != 0 {
		t.Fatalf("table visible in the other database: n=%d err=%v", n, err)
	}
	var fsync string
	if err := connect(t, a).QueryRow(ctx, "SHOW fsync").Scan(&fsync); err != nil || fsync != "off" {
		t.Fatalf("fsync = %q (%v), want off", fsync, err)
	}
}

// A stopped server refuses connections and keeps its data across a
// start on the same port.
func TestStopAndStartServer(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	url := pg.Database(t)
	if _, err := connect(t, url).Exec(ctx, "CREATE TABLE kept (x int); INSERT INTO kept VALUES (7)"); err != nil {
		t.Fatal(err)
	}
	if err := pg.StopServer(); err != nil {
		t.Fatal(err)
	}
	if conn, err := pgx.Connect(ctx, url); err == nil {
		conn.Close(ctx)
		t.Fatal("connected to a stopped server")
	}
	if err := pg.StartServer(); err != nil {
		t.Fatal(err)
	}
	var x int
	if err := connect(t, url).QueryRow(ctx, "SELECT x FROM kept").Scan(&x); err != nil || x != 7 {
		t.Fatalf("after restart: x=%d err=%v", x, err)
	}
}

// StopForTest's start function brings the server back; a test that ends
// without calling it leaves the server running all the same.
func TestStopForTest(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	url := pg.Database(t)
	reachable := func() bool {
		conn, err := pgx.Connect(ctx, url)
		if err == nil {
			conn.Close(ctx)
		}
		return err == nil
	}
	start := pg.StopForTest(t)
	if reachable() {
		t.Fatal("connected to a stopped server")
	}
	start()
	if !reachable() {
		t.Fatal("server not back after start")
	}
	t.Run("ends stopped", func(t *testing.T) {
		pg.StopForTest(t)
		if reachable() {
			t.Fatal("connected to a stopped server")
		}
	})
	if !reachable() {
		t.Fatal("server not back after the test that stopped it ended")
	}
}
