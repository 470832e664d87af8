package app

import (
	"time"

	"github.com/apiwarden/apiwarden/alerting"
	"github.com/apiwarden/apiwarden/keys"
	"github.com/apiwarden/apiwarden/limiter"
)

// quotaSource tells quota_warning rules how far keys are into their
// limits: the hourly bucket and the monthly quota, from the limiter.
type quotaSource struct {
	limits   *limiter.Limiter
	keys     *keys.Service
	fraction func() float64 // the lowest threshold among quota rules
}

func (q quotaSource) Quotas(now time.Time) ([]alerting.QuotaUsage, error) {
	var out []alerting.QuotaUsage
	q.limits.Over(now, q.fraction(), func(subject limiter.Subject, u limiter.Usage) {
		keyID, ok := subject.KeyID()
		if !ok {
			return // public routes: not a key
		}
		usage := alerting.QuotaUsage{KeyID: keyID, Tier: u.Tier, MonthlyUsed: u.MonthlyUsed, MonthlyQuota: u.MonthlyQuota}
		if u.Hour.Limit > 0 {
			usage.HourlyUsed = 1 - float64(u.Hour.Remaining)/float64(u.Hour.Limit)
		}
		if k, err := q.keys.Get(keyID); err == nil {
			usage.Owner = k.OwnerID
		}
		out = append(out, usage)
	})
	return out, nil
}

// keyDirectory gives alerts the names and owners of the keys they are
// about.
type keyDirectory struct{ keys *keys.Service }

func (d keyDirectory) KeyName(id string) (name, owner string, ok bool) {
	k, err := d.keys.Get(id)
	if err != nil {
		return "", "", false
	}
	return k.Name, k.OwnerID, true
}

// calendarSource reads the calendar in force, which a reload may swap.
type calendarSource struct{ limits *limiter.Limiter }

func (c calendarSource) SeverityBoost(now time.Time) int {
	return c.limits.Calendar().SeverityBoost(now)
}

func (c calendarSource) Active(now time.Time) []string { return c.limits.Calendar().Active(now) }

// lowestQuotaThreshold is the fraction Over must report from, so every
// quota rule sees the keys it may fire for.
func lowestQuotaThreshold(rules []alerting.Rule) float64 {
	low := 1.0
	for _, r := range rules {
		if r.Type == alerting.QuotaWarning && r.Threshold < low {
			low = r.Threshold
		}
	}
	return low
}
