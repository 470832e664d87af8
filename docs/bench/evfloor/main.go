// Command evfloor is the contract's floor of docs/bench/bareproxy
// -contract on an event loop instead of goroutines: a fixed number of
// epoll loops, each on a locked thread with its own SO_REUSEPORT
// listener, each client connection paired with its own keep-alive upstream
// connection on the same loop. A request costs a read, a write, a read
// and a write, and a share of the epoll_waits; no goroutine is parked or
// woken. It is a measuring stick for issue 16, not a product path
// (README.md in this folder says what it does not do):
//
//	cd docs/bench/evfloor && go build -o /tmp/evfloor . &&
//	/tmp/evfloor -listen 127.0.0.1:18480 -upstream 127.0.0.1:19001
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"runtime"
	"syscall"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func run(args []string) error {
	flags := flag.NewFlagSet("evfloor", flag.ContinueOnError)
	listen := flags.String("listen", "127.0.0.1:18480", "address to serve")
	upstream := flags.String("upstream", "127.0.0.1:19001", "upstream host:port")
	loops := flags.Int("loops", runtime.GOMAXPROCS(0), "event loops, each on a thread of its own")
	if err := flags.Parse(args); err != nil {
		return err
	}
	if *loops < 1 {
		return fmt.Errorf("evfloor: -loops must be >= 1, got %d", *loops)
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, nil))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	s, err := Start(*listen, *upstream, *loops, logger)
	if err != nil {
		return err
	}
	logger.Info("evfloor serving", "listen", s.Addr(), "upstream", *upstream, "loops", *loops)
	<-ctx.Done()
	return s.Close()
}
