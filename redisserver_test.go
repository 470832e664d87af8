package main

import (
	"context"
	"net"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// startRedis starts a real redis-server for t on a free loopback port,
// without persistence, waits until it answers PING and kills it when t
// ends. It returns the server's address. When redis-server is not
// installed it skips t, unless APIWARDEN_REQUIRE_REDIS=1 makes that a
// failure.
func startRedis(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("APIWARDEN_REQUIRE_REDIS") == "1" {
			t.Fatalf("redis-server not found and APIWARDEN_REQUIRE_REDIS=1: %v", err)
		}
		t.Skip("redis-server not installed (set APIWARDEN_REQUIRE_REDIS=1 to fail instead)")
	}
	addr := freeAddr(t)
	_, port, _ := net.SplitHostPort(addr)
	cmd := exec.Command(bin, "--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
		"--dir", t.TempDir(), "--loglevel", "warning")
	if err := cmd.Start(); err != nil {
		t.Fatalf("start redis-server: %v", err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })

	client := redis.NewClient(&redis.Options{Addr: addr, DisableIdentity: true})
	defer client.Close()
	waitWithin(t, 10*time.Second, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		return client.Ping(ctx).Err() == nil
	}, "redis-server on "+addr+" to answer")
	return addr
}
