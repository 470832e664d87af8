package cluster_test

import (
	"bytes"
	"testing"
	"time"

	"github.com/apiwarden/apiwarden/analytics"
)

// Seven keys with two requests each: a top list of three cuts through the
// tie, and PostgreSQL's ranking (TopByCount) keeps the values the bbolt
// reader's sort keeps, the first in byte order, with the same stats.
func TestTopByRequestsBreaksTiesAsBbolt(t *testing.T) {
	url := pg.Database(t)
	whole := newShipNode(t, url, "whole", nil)
	n := newShipNode(t, url, "a", nil)
	for _, node := range []*shipNode{whole, n} {
		node.record(t, 14, sourceNow.Add(-2*time.Hour), time.Minute)
		if err := node.rec.Flush(); err != nil {
			t.Fatal(err)
		}
	}
	n.drain(t)
	p := pairOver(t, whole.rd, newSource(t, n.cluster))
	for _, by := range []analytics.GroupBy{analytics.GroupKey, analytics.GroupRoute} {
		q := analytics.TopQuery{By: by, Period: analytics.PeriodDay, Limit: 3}
		ctx := ctxFor(t, time.Minute)
		want, err := p.bbolt.Top(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		got, err := p.pg.Top(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		if w, g := indentJSON(t, want), indentJSON(t, got); !bytes.Equal(w, g) {
			t.Errorf("top by %s: PostgreSQL differs from bbolt:\n%s", by, firstDifference(w, g))
		}
		if by == analytics.GroupKey && (len(got.Items) != 3 || got.Items[0].Value != "key_0" || got.Items[2].Value != "key_2") {
			t.Errorf("top keys %+v, want key_0, key_1, key_2", got.Items)
		}
	}
}
