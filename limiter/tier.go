package limiter

import (
	"fmt"
	"maps"
)

// Tier is a named set of limits a key is sold with (free, basic, premium,
// enterprise, ...). The calendar scales RequestsPerHour and BurstPerMinute;
// MonthlyQuota is a billing figure and is never scaled.
type Tier struct {
	// Name is the tier's name. In a table given to New or SetTiers it may
	// be left empty: the map key is used.
	Name string
	// RequestsPerHour is the capacity of the hourly bucket, refilled
	// continuously over an hour. Must be > 0.
	RequestsPerHour int64
	// BurstPerMinute is the capacity of the minute bucket, refilled
	// continuously over a minute. Must be > 0.
	BurstPerMinute int64
	// MonthlyQuota caps the cost admitted per calendar month in the
	// calendar's time zone. 0 means no quota.
	MonthlyQuota int64
}

// tierTable is an immutable, validated copy of the tiers, swapped as a
// whole on reload.
type tierTable struct {
	byName    map[string]Tier
	strictest Tier
}

// newTierTable validates tiers and picks the strictest one, which applies
// to requests naming a tier that does not exist.
func newTierTable(tiers map[string]Tier) (*tierTable, error) {
	if len(tiers) == 0 {
		return nil, ErrNoTiers
	}
	t := &tierTable{byName: make(map[string]Tier, len(tiers))}
	first := true
	for name, tier := range tiers {
		if tier.Name == "" {
			tier.Name = name
		}
		if err := tier.validate(name); err != nil {
			return nil, err
		}
		t.byName[name] = tier
		if first || stricter(tier, t.strictest) {
			t.strictest, first = tier, false
		}
	}
	return t, nil
}

func (t Tier) validate(key string) error {
	switch {
	case key == "":
		return fmt.Errorf("%w: a tier has an empty name", ErrInvalidTier)
	case t.Name != key:
		return fmt.Errorf("%w %q: Name is %q; leave it empty or make it match", ErrInvalidTier, key, t.Name)
	case t.RequestsPerHour <= 0:
		return fmt.Errorf("%w %q: RequestsPerHour must be > 0, got %d", ErrInvalidTier, key, t.RequestsPerHour)
	case t.BurstPerMinute <= 0:
		return fmt.Errorf("%w %q: BurstPerMinute must be > 0, got %d", ErrInvalidTier, key, t.BurstPerMinute)
	case t.MonthlyQuota < 0:
		return fmt.Errorf("%w %q: MonthlyQuota must be >= 0 (0 = none), got %d", ErrInvalidTier, key, t.MonthlyQuota)
	}
	return nil
}

// stricter orders tiers by hourly limit, then burst, then quota (where no
// quota is the loosest), then name so the choice is deterministic.
func stricter(a, b Tier) bool {
	if a.RequestsPerHour != b.RequestsPerHour {
		return a.RequestsPerHour < b.RequestsPerHour
	}
	if a.BurstPerMinute != b.BurstPerMinute {
		return a.BurstPerMinute < b.BurstPerMinute
	}
	if a.MonthlyQuota != b.MonthlyQuota {
		switch {
		case a.MonthlyQuota == 0:
			return false
		case b.MonthlyQuota == 0:
			return true
		}
		return a.MonthlyQuota < b.MonthlyQuota
	}
	return a.Name < b.Name
}

// tiers returns a copy of the table for callers.
func (t *tierTable) tiers() map[string]Tier { return maps.Clone(t.byName) }
