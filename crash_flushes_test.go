package main

import (
	"bufio"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// flushReading is one scrape of a running instance's /metrics: how many
// records it had committed and how long its last commit took, read at
// some moment after sent.
type flushReading struct {
	sent     time.Time
	flushed  uint64
	lastTook time.Duration
}

// flushWatch scrapes an instance's /metrics until stopped, keeping every
// reading that came back, so a test can tell when the last commit before
// a crash happened. Its methods are safe for concurrent use.
type flushWatch struct {
	mu       sync.Mutex
	readings []flushReading
	stop     chan struct{}
	done     chan struct{}
}

// watchFlushes starts scraping http://adminAddr/metrics every 20 ms.
func watchFlushes(adminAddr string) *flushWatch {
	w := &flushWatch{stop: make(chan struct{}), done: make(chan struct{})}
	client := &http.Client{Timeout: 2 * time.Second}
	go func() {
		defer close(w.done)
		for {
			select {
			case <-w.stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
			if r, ok := scrapeFlushes(client, "http://"+adminAddr+"/metrics"); ok {
				w.mu.Lock()
				w.readings = append(w.readings, r)
				w.mu.Unlock()
			}
		}
	}()
	return w
}

// Stop ends the scraping and waits for the scraper to return.
func (w *flushWatch) Stop() {
	close(w.stop)
	<-w.done
}

// Commits returns when each commit was first seen: the send time of the
// first reading whose flushed count grew over the reading before.
func (w *flushWatch) Commits() []time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	var seen []time.Time
	for i := 1; i < len(w.readings); i++ {
		if w.readings[i].flushed > w.readings[i-1].flushed {
			seen = append(seen, w.readings[i].sent)
		}
	}
	return seen
}

// LastCommit returns the latest commit seen: the flushed count after it
// and the earliest moment it can have begun. It committed after the
// reading before it was taken, which was after that reading was sent, and
// it took lastTook, so it began no earlier than that send time minus
// lastTook. ok is false when no commit was seen.
func (w *flushWatch) LastCommit() (flushed uint64, begunAfter time.Time, ok bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for i := len(w.readings) - 1; i > 0; i-- {
		cur, prev := w.readings[i], w.readings[i-1]
		if cur.flushed > prev.flushed {
			return cur.flushed, prev.sent.Add(-cur.lastTook), true
		}
	}
	return 0, time.Time{}, false
}

// scrapeFlushes reads the recorder's flushed-records counter and last
// flush duration from one /metrics page; ok is false when the page could
// not be read or lacks either.
func scrapeFlushes(client *http.Client, url string) (r flushReading, ok bool) {
	r.sent = time.Now()
	resp, err := client.Get(url)
	if err != nil {
		return r, false
	}
	defer resp.Body.Close()
	var haveFlushed, haveTook bool
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		name, value, found := strings.Cut(sc.Text(), " ")
		if !found {
			continue
		}
		v, err := strconv.ParseFloat(value, 64)
		if err != nil {
			continue
		}
		switch name {
		case `apiwarden_metrics_records_total{fate="flushed"}`:
			r.flushed, haveFlushed = uint64(v), true
		case "apiwarden_metrics_last_flush_seconds":
			r.lastTook, haveTook = time.Duration(v*float64(time.Second)), true
		}
	}
	return r, sc.Err() == nil && resp.StatusCode == http.StatusOK && haveFlushed && haveTook
}

// medianGap is the median time between consecutive moments in at (which
// is in order), or zero with fewer than two.
func medianGap(at []time.Time) time.Duration {
	if len(at) < 2 {
		return 0
	}
	gaps := make([]time.Duration, 0, len(at)-1)
	for i := 1; i < len(at); i++ {
		gaps = append(gaps, at[i].Sub(at[i-1]))
	}
	slices.Sort(gaps)
	return gaps[len(gaps)/2]
}
