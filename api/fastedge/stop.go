package fastedge

import (
	"net"
	"sync"
)

// listeners makes a stop final: fasthttp's Shutdown stops only the
// listeners its Serve has already taken, so a Serve that starts after it
// (app.Run stops as soon as its context ends, which may be before the
// goroutine calling Serve runs) would serve for ever. Here a stop closes
// every listener handed to Serve so far and refuses later ones.
type listeners struct {
	mu      sync.Mutex
	stopped bool
	open    []*onceCloseListener
}

// take returns ln for serving, or false, with ln closed, once stopped.
func (l *listeners) take(ln net.Listener) (net.Listener, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.stopped {
		ln.Close()
		return nil, false
	}
	oc := &onceCloseListener{Listener: ln}
	l.open = append(l.open, oc)
	return oc, true
}

// stop closes every listener taken and refuses the next ones.
func (l *listeners) stop() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.stopped = true
	for _, ln := range l.open {
		ln.Close()
	}
	l.open = nil
}

// onceCloseListener closes its listener once; later calls return nil, so
// that fasthttp's own Shutdown, closing it again, reports no error.
type onceCloseListener struct {
	net.Listener
	once sync.Once
	err  error
}

func (l *onceCloseListener) Close() error {
	l.once.Do(func() { l.err = l.Listener.Close() })
	return l.err
}
