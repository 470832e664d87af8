package fastedge

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"sync/atomic"
	"testing"
	"time"
)

// countingConn counts the deadlines that reach the socket.
type countingConn struct {
	net.Conn
	reads, writes atomic.Int64
}

func (c *countingConn) SetReadDeadline(t time.Time) error {
	c.reads.Add(1)
	return c.Conn.SetReadDeadline(t)
}

func (c *countingConn) SetWriteDeadline(t time.Time) error {
	c.writes.Add(1)
	return c.Conn.SetWriteDeadline(t)
}

func (c *countingConn) SetDeadline(t time.Time) error {
	c.reads.Add(1)
	c.writes.Add(1)
	return c.Conn.SetDeadline(t)
}

// tcpPair returns both ends of a loopback TCP connection, the first
// behind a deadlineConn over a countingConn.
func tcpPair(t *testing.T) (*deadlineConn, *countingConn, net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	raw, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	peer := <-accepted
	if peer == nil {
		t.Fatal("no connection accepted")
	}
	counted := &countingConn{Conn: raw}
	c := newDeadlineConn(counted)
	t.Cleanup(func() { c.Close(); peer.Close() })
	return c, counted, peer
}

// A deadline moved later, as fasthttp moves it at every request, reaches
// the socket once, not at every move; one moved earlier reaches it at
// once.
func TestDeadlinesMovedLaterStayOffTheSocket(t *testing.T) {
	c, counted, _ := tcpPair(t)
	now := time.Now()
	for i := range 100 {
		at := now.Add(time.Hour + time.Duration(i)*time.Millisecond)
		if err := c.SetReadDeadline(at); err != nil {
			t.Fatal(err)
		}
		if err := c.SetWriteDeadline(at); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.SetReadDeadline(time.Time{}); err != nil {
		t.Fatal(err)
	}
	if r, w := counted.reads.Load(), counted.writes.Load(); r != 1 || w != 1 {
		t.Fatalf("socket deadlines: %d read, %d write; want 1 and 1", r, w)
	}
	if err := c.SetReadDeadline(now.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if r := counted.reads.Load(); r != 2 {
		t.Fatalf("a deadline moved earlier: %d read deadlines on the socket, want 2", r)
	}
}

// A read waits for its latest deadline, past the earlier one the socket
// still holds, and fails once that deadline has passed, not before.
func TestReadWaitsForTheLatestDeadline(t *testing.T) {
	c, _, peer := tcpPair(t)
	c.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
	c.SetReadDeadline(time.Now().Add(time.Hour))
	sent := make(chan struct{})
	go func() {
		time.Sleep(100 * time.Millisecond) // the peer is slow: past the first deadline
		peer.Write([]byte("x"))
		close(sent)
	}()
	b := make([]byte, 1)
	if n, err := c.Read(b); n != 1 || err != nil {
		t.Fatalf("read %d %v, want the byte", n, err)
	}
	<-sent

	want := time.Now().Add(150 * time.Millisecond)
	c.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
	c.SetReadDeadline(want)
	n, err := c.Read(b)
	if n != 0 || !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read %d %v, want a timeout", n, err)
	}
	if now := time.Now(); now.Before(want) {
		t.Fatalf("timed out %v before its deadline", want.Sub(now))
	}
}

// A deadline lifted after an earlier one was set lets a read wait past
// it.
func TestReadWithoutDeadlineOutlastsAnEarlierOne(t *testing.T) {
	c, _, peer := tcpPair(t)
	c.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
	c.SetReadDeadline(time.Time{})
	go func() {
		time.Sleep(100 * time.Millisecond)
		peer.Write([]byte("x"))
	}()
	b := make([]byte, 1)
	if n, err := c.Read(b); n != 1 || err != nil {
		t.Fatalf("read %d %v, want the byte", n, err)
	}
}

// A deadline moved into the past from another goroutine ends a read that
// is waiting, as net/http ends its background read (abortPendingRead).
func TestDeadlineInThePastEndsAWaitingRead(t *testing.T) {
	c, _, _ := tcpPair(t)
	c.SetReadDeadline(time.Now().Add(time.Hour))
	done := make(chan error, 1)
	go func() {
		_, err := c.Read(make([]byte, 1))
		done <- err
	}()
	time.Sleep(20 * time.Millisecond) // let the read wait (it fails either way)
	c.SetReadDeadline(time.Now().Add(-time.Second))
	if err := <-done; !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read: %v, want a timeout", err)
	}
}

// A write the peer holds up past an earlier deadline goes through whole
// once the peer reads, under a later one.
func TestWriteWaitsForTheLatestDeadline(t *testing.T) {
	c, _, peer := tcpPair(t)
	c.SetWriteDeadline(time.Now().Add(20 * time.Millisecond))
	c.SetWriteDeadline(time.Now().Add(time.Hour))
	big := bytes.Repeat([]byte("y"), 32<<20) // more than the socket buffers hold
	got := make(chan int64, 1)
	go func() {
		time.Sleep(100 * time.Millisecond) // past the first deadline
		n, _ := io.CopyN(io.Discard, peer, int64(len(big)))
		got <- n
	}()
	if n, err := c.Write(big); n != len(big) || err != nil {
		t.Fatalf("wrote %d of %d: %v", n, len(big), err)
	}
	if n := <-got; n != int64(len(big)) {
		t.Fatalf("peer read %d of %d", n, len(big))
	}
}

// BenchmarkRequestDeadlines moves a connection's deadlines as fasthttp
// does for one keep-alive request on the proxy (idle_timeout, then
// read_header_timeout, then write_timeout), on the socket itself and
// through a deadlineConn.
//
//	go test -run '^$' -bench RequestDeadlines -benchmem ./api/fastedge/
func BenchmarkRequestDeadlines(b *testing.B) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	for _, tc := range []struct {
		name string
		wrap func(net.Conn) net.Conn
	}{
		{"socket", func(c net.Conn) net.Conn { return c }},
		{"lazy", func(c net.Conn) net.Conn { return newDeadlineConn(c) }},
	} {
		b.Run(tc.name, func(b *testing.B) {
			raw, err := net.Dial("tcp", ln.Addr().String())
			if err != nil {
				b.Fatal(err)
			}
			defer raw.Close()
			c := tc.wrap(raw)
			b.ReportAllocs()
			for b.Loop() {
				c.SetReadDeadline(time.Now().Add(120 * time.Second))
				c.SetReadDeadline(time.Now().Add(5 * time.Second))
				c.SetWriteDeadline(time.Now().Add(60 * time.Second))
			}
		})
	}
}
