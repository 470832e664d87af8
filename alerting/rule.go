package alerting

import (
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"time"
)

// RuleType names what a rule watches.
type RuleType string

// The rule types (README.md, "Alerts"; config.example.toml).
const (
	// RateLimitExceeded: the share of a subject's requests answered 429
	// over the window reaches Threshold (a fraction, 0 < t ≤ 1).
	RateLimitExceeded RuleType = "rate_limit_exceeded"
	// UnusualActivity: a subject's request rate is far from its own
	// baseline; Threshold is a robust z-score (see baseline.go).
	UnusualActivity RuleType = "unusual_activity"
	// ErrorSpike: the share of 5xx answers over the window reaches
	// Threshold (a fraction), with at least MinRequests requests.
	ErrorSpike RuleType = "error_spike"
	// PerformanceDegradation: p95 latency over the window is above
	// Threshold milliseconds, or above BaselineFactor × the subject's p95
	// of the past day.
	PerformanceDegradation RuleType = "performance_degradation"
	// QuotaWarning: a key has used Threshold (a fraction) of its hourly
	// bucket or of its monthly quota.
	QuotaWarning RuleType = "quota_warning"
)

// RuleTypes lists every type, in the order config.example.toml documents them.
func RuleTypes() []RuleType {
	return []RuleType{RateLimitExceeded, UnusualActivity, ErrorSpike, PerformanceDegradation, QuotaWarning}
}

func (t RuleType) valid() bool {
	switch t {
	case RateLimitExceeded, UnusualActivity, ErrorSpike, PerformanceDegradation, QuotaWarning:
		return true
	}
	return false
}

// Severity orders alerts: low < medium < high < critical.
type Severity string

// The severities, lowest first.
const (
	SeverityLow      Severity = "low"
	SeverityMedium   Severity = "medium"
	SeverityHigh     Severity = "high"
	SeverityCritical Severity = "critical"
)

var severityOrder = [...]Severity{SeverityLow, SeverityMedium, SeverityHigh, SeverityCritical}

// Rank is 1 for low up to 4 for critical, and 0 for anything else.
func (s Severity) Rank() int {
	for i, v := range severityOrder {
		if v == s {
			return i + 1
		}
	}
	return 0
}

// Raise moves s up by steps levels, capped at critical (and floored at
// low for negative steps). An unknown severity is returned unchanged.
func (s Severity) Raise(steps int) Severity {
	r := s.Rank()
	if r == 0 {
		return s
	}
	r += steps
	r = max(1, min(r, len(severityOrder)))
	return severityOrder[r-1]
}

// AtLeast reports whether s is min or above. The empty min admits all.
func (s Severity) AtLeast(min Severity) bool {
	return min == "" || s.Rank() >= min.Rank()
}

// ParseSeverity turns "low", "medium", "high" or "critical" into a Severity.
func ParseSeverity(s string) (Severity, error) {
	if v := Severity(s); v.Rank() > 0 {
		return v, nil
	}
	return "", fmt.Errorf("alerting: unknown severity %q (want low, medium, high or critical)", s)
}

// SubjectKind is what an alert is about.
type SubjectKind string

// Subject kinds.
const (
	SubjectGlobal SubjectKind = "global" // all traffic; the value is empty
	SubjectKey    SubjectKind = "key"    // one API key; the value is its id
	SubjectOwner  SubjectKind = "owner"  // one owner; the value is the owner id
	SubjectRoute  SubjectKind = "route"  // one route pattern, e.g. "/api/forms/*"
)

func (k SubjectKind) valid() bool {
	switch k {
	case SubjectGlobal, SubjectKey, SubjectOwner, SubjectRoute:
		return true
	}
	return false
}

// Subject is one thing a rule looks at.
type Subject struct {
	Kind  SubjectKind `json:"kind"`
	Value string      `json:"value,omitempty"`
}

// String is "global", or kind:value such as "key:key_123".
func (s Subject) String() string {
	if s.Kind == SubjectGlobal || s.Value == "" {
		return string(s.Kind)
	}
	return string(s.Kind) + ":" + s.Value
}

// Direction says which deviations an unusual_activity rule reports.
type Direction string

// Directions.
const (
	DirectionSpike Direction = "spike" // more traffic than usual
	DirectionDrop  Direction = "drop"  // less traffic than usual
	DirectionBoth  Direction = "both"
)

// QuotaPeriod says which quota a quota_warning rule watches.
type QuotaPeriod string

// Quota periods.
const (
	QuotaAny     QuotaPeriod = ""        // whichever is fuller
	QuotaHourly  QuotaPeriod = "hourly"  // the hourly token bucket
	QuotaMonthly QuotaPeriod = "monthly" // the monthly quota
)

// Rule is one alerting rule. Config parsing maps [[alerts.rules]] onto it;
// the JSON field names are the TOML keys. Zero fields that have a natural
// default are filled by WithDefaults; Validate then checks the result.
type Rule struct {
	// Name identifies the rule; it is the alertname label and part of every
	// alert's fingerprint. Defaults to the type.
	Name string   `json:"name"`
	Type RuleType `json:"type"`
	// Window is the span of traffic looked at, [now-Window, now]. Not used
	// by quota_warning.
	Window time.Duration `json:"window"`
	// Threshold: see the RuleType constants for its unit per type.
	Threshold float64 `json:"threshold"`
	// MinRequests is the least traffic in the window for the condition to
	// count; for an unusual_activity drop it applies to the expected
	// traffic. It keeps quiet subjects from alerting on noise.
	MinRequests int64 `json:"min_requests"`
	// For is how long the condition must hold before the alert fires;
	// until then it is pending and nobody is told.
	For time.Duration `json:"for"`
	// KeepFiringFor keeps a firing alert alive (recovering) this long after
	// its condition clears, so a flapping condition is one alert.
	KeepFiringFor time.Duration `json:"keep_firing_for"`
	// Severity before any calendar boost.
	Severity Severity `json:"severity"`
	// Subject is the kind of thing the rule is evaluated per.
	Subject SubjectKind `json:"subject"`

	// Optional filters; an empty list admits everything. Patterns use
	// path.Match syntax and an exact string always matches itself.
	Routes []string `json:"routes,omitempty"` // subject route only
	Tiers  []string `json:"tiers,omitempty"`  // subject key only
	Owners []string `json:"owners,omitempty"` // subject key or owner
	Keys   []string `json:"keys,omitempty"`   // subject key only

	// Cooldown: after an alert of this rule resolves, no new alert opens
	// for the same subject until Cooldown has passed. Meant for
	// unusual_activity but honoured by every type.
	Cooldown time.Duration `json:"cooldown,omitempty"`
	// Direction (unusual_activity only): spike, drop or both.
	Direction Direction `json:"direction,omitempty"`
	// BaselineFactor (performance_degradation only): fire when p95 is above
	// this multiple of the subject's median hourly p95 over the past day.
	// 0 turns the relative check off.
	BaselineFactor float64 `json:"baseline_factor,omitempty"`
	// Quota (quota_warning only): hourly, monthly or empty for either.
	Quota QuotaPeriod `json:"quota,omitempty"`
}

// MarshalJSON writes durations as Go duration strings ("5m0s"), the way
// they are written in the config file.
func (r Rule) MarshalJSON() ([]byte, error) {
	type plain Rule
	return json.Marshal(struct {
		plain
		Window        string `json:"window"`
		For           string `json:"for"`
		KeepFiringFor string `json:"keep_firing_for"`
		Cooldown      string `json:"cooldown,omitempty"`
	}{
		plain:         plain(r),
		Window:        r.Window.String(),
		For:           r.For.String(),
		KeepFiringFor: r.KeepFiringFor.String(),
		Cooldown:      durationOrEmpty(r.Cooldown),
	})
}

// UnmarshalJSON reads what MarshalJSON writes; durations may also be
// numbers of nanoseconds.
func (r *Rule) UnmarshalJSON(b []byte) error {
	type plain Rule
	var aux struct {
		*plain
		Window        jsonDuration `json:"window"`
		For           jsonDuration `json:"for"`
		KeepFiringFor jsonDuration `json:"keep_firing_for"`
		Cooldown      jsonDuration `json:"cooldown"`
	}
	aux.plain = (*plain)(r)
	if err := json.Unmarshal(b, &aux); err != nil {
		return err
	}
	r.Window, r.For = time.Duration(aux.Window), time.Duration(aux.For)
	r.KeepFiringFor, r.Cooldown = time.Duration(aux.KeepFiringFor), time.Duration(aux.Cooldown)
	return nil
}

// jsonDuration decodes "5m" as well as 300000000000.
type jsonDuration time.Duration

func (d *jsonDuration) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		if s == "" {
			*d = 0
			return nil
		}
		v, err := time.ParseDuration(s)
		if err != nil {
			return err
		}
		*d = jsonDuration(v)
		return nil
	}
	var n int64
	if err := json.Unmarshal(b, &n); err != nil {
		return fmt.Errorf("duration must be a string such as \"5m\" or nanoseconds: %w", err)
	}
	*d = jsonDuration(n)
	return nil
}

func durationOrEmpty(d time.Duration) string {
	if d == 0 {
		return ""
	}
	return d.String()
}

// DefaultRules returns one rule of every type with settings that suit a
// small API (they are the commented defaults of config.example.toml), plus
// a second quota rule so a key is warned at 80% and again at 95%.
func DefaultRules() []Rule {
	return []Rule{
		{
			Name: "rate-limit-exceeded", Type: RateLimitExceeded, Subject: SubjectKey,
			Window: 5 * time.Minute, Threshold: 0.5, MinRequests: 50,
			For: 2 * time.Minute, KeepFiringFor: 5 * time.Minute, Severity: SeverityMedium,
		},
		{
			Name: "unusual-activity", Type: UnusualActivity, Subject: SubjectKey,
			Window: 15 * time.Minute, Threshold: 5, MinRequests: 100, Direction: DirectionBoth,
			For: 10 * time.Minute, KeepFiringFor: 15 * time.Minute, Cooldown: time.Hour,
			Severity: SeverityMedium,
		},
		{
			Name: "error-spike", Type: ErrorSpike, Subject: SubjectGlobal,
			Window: 5 * time.Minute, Threshold: 0.05, MinRequests: 50,
			For: time.Minute, KeepFiringFor: 5 * time.Minute, Severity: SeverityHigh,
		},
		{
			Name: "performance-degradation", Type: PerformanceDegradation, Subject: SubjectRoute,
			Window: 5 * time.Minute, Threshold: 2000, BaselineFactor: 3, MinRequests: 50,
			For: 5 * time.Minute, KeepFiringFor: 10 * time.Minute, Severity: SeverityMedium,
		},
		{
			Name: "quota-warning", Type: QuotaWarning, Subject: SubjectKey,
			Threshold: 0.8, KeepFiringFor: 10 * time.Minute, Severity: SeverityMedium,
		},
		{
			Name: "quota-critical", Type: QuotaWarning, Subject: SubjectKey,
			Threshold: 0.95, KeepFiringFor: 10 * time.Minute, Severity: SeverityHigh,
		},
	}
}

// defaultFor is the rule of DefaultRules for a type.
func defaultFor(t RuleType) (Rule, bool) {
	for _, r := range DefaultRules() {
		if r.Type == t {
			return r, true
		}
	}
	return Rule{}, false
}

// WithDefaults fills the zero fields that have a safe default from the
// default rule of the same type: Name (the type), Subject, Window,
// Threshold, Severity and Direction. For, KeepFiringFor, MinRequests and
// Cooldown keep their zero values, which are meaningful.
func (r Rule) WithDefaults() Rule {
	d, ok := defaultFor(r.Type)
	if !ok {
		return r
	}
	if r.Name == "" {
		r.Name = string(r.Type)
	}
	if r.Subject == "" {
		r.Subject = d.Subject
	}
	if r.Window == 0 {
		r.Window = d.Window
	}
	if r.Threshold == 0 && !(r.Type == PerformanceDegradation && r.BaselineFactor > 0) {
		r.Threshold = d.Threshold
	}
	if r.Severity == "" {
		r.Severity = d.Severity
	}
	if r.Type == UnusualActivity && r.Direction == "" {
		r.Direction = d.Direction
	}
	return r
}

// RuleError is one problem with one field of a rule. Field is the TOML key,
// so config check can point at the line.
type RuleError struct {
	Rule    string // the rule's name, or "#n" when it has none
	Field   string
	Problem string
}

func (e *RuleError) Error() string {
	return fmt.Sprintf("alerting: rule %s: %s %s", e.Rule, e.Field, e.Problem)
}

// Unwrap makes errors.Is(err, ErrInvalidRule) true.
func (e *RuleError) Unwrap() error { return ErrInvalidRule }

// MaxWindow bounds Window: realtime cells are not kept longer.
const MaxWindow = 24 * time.Hour

// Validate checks one rule and returns every problem found, joined with
// errors.Join; each is a *RuleError wrapping ErrInvalidRule. Call it on
// r.WithDefaults() to accept the omissions the defaults cover.
func (r Rule) Validate() error {
	name := r.Name
	if name == "" {
		name = "(unnamed " + string(r.Type) + ")"
	}
	p := &ruleProblems{rule: name}
	r.checkName(p)
	if !r.Type.valid() {
		p.add("type", "must be one of rate_limit_exceeded, unusual_activity, error_spike, performance_degradation, quota_warning; got %q", r.Type)
		return errors.Join(p.errs...)
	}
	r.checkSeverityAndSubject(p)
	r.checkWindow(p)
	r.checkThreshold(p)
	r.checkNonNegative(p)
	r.checkTypeSpecific(p)
	r.checkFilter(p, "routes", r.Routes, SubjectRoute)
	r.checkFilter(p, "tiers", r.Tiers, SubjectKey)
	r.checkFilter(p, "owners", r.Owners, SubjectKey, SubjectOwner)
	r.checkFilter(p, "keys", r.Keys, SubjectKey)
	return errors.Join(p.errs...)
}

// ruleProblems collects the problems Validate finds in one rule, in the
// order it finds them.
type ruleProblems struct {
	rule string // the rule's name as RuleError shows it
	errs []error
}

func (p *ruleProblems) add(field, format string, args ...any) {
	p.errs = append(p.errs, &RuleError{Rule: p.rule, Field: field, Problem: fmt.Sprintf(format, args...)})
}

func (r *Rule) checkName(p *ruleProblems) {
	switch {
	case r.Name == "":
		p.add("name", "must be set")
	case len(r.Name) > 64:
		p.add("name", "must be at most 64 characters, got %d", len(r.Name))
	case !validName(r.Name):
		p.add("name", "may use only letters, digits, '-', '_' and '.', got %q", r.Name)
	}
}

func (r *Rule) checkSeverityAndSubject(p *ruleProblems) {
	if r.Severity.Rank() == 0 {
		p.add("severity", "must be low, medium, high or critical; got %q", r.Severity)
	}
	switch {
	case !r.Subject.valid():
		p.add("subject", "must be global, key, owner or route; got %q", r.Subject)
	case r.Type == QuotaWarning && r.Subject != SubjectKey:
		p.add("subject", "must be key for quota_warning (quotas belong to keys); got %q", r.Subject)
	}
}

func (r *Rule) checkWindow(p *ruleProblems) {
	if r.Type == QuotaWarning {
		if r.Window < 0 || r.Window > MaxWindow {
			p.add("window", "is not used by quota_warning; leave it out")
		}
	} else if r.Window <= 0 || r.Window > MaxWindow {
		p.add("window", "must be between 1s and %s, got %s", MaxWindow, r.Window)
	}
}

// checkThreshold checks Threshold (and BaselineFactor, its alternative
// for performance_degradation) against what the rule's type measures.
func (r *Rule) checkThreshold(p *ruleProblems) {
	switch r.Type {
	case RateLimitExceeded, ErrorSpike, QuotaWarning:
		if !(r.Threshold > 0 && r.Threshold <= 1) {
			p.add("threshold", "is a fraction for %s and must be in (0, 1], e.g. 0.05 for 5%%; got %g", r.Type, r.Threshold)
		}
	case UnusualActivity:
		if !(r.Threshold > 0 && r.Threshold <= 100) {
			p.add("threshold", "is a robust z-score for unusual_activity and must be in (0, 100], e.g. 5; got %g", r.Threshold)
		}
	case PerformanceDegradation:
		if r.Threshold < 0 {
			p.add("threshold", "is a p95 latency in milliseconds and must be >= 0; got %g", r.Threshold)
		}
		if r.BaselineFactor != 0 && r.BaselineFactor <= 1 {
			p.add("baseline_factor", "must be > 1 (a multiple of the usual p95) or 0 to turn it off; got %g", r.BaselineFactor)
		}
		if r.Threshold <= 0 && r.BaselineFactor <= 0 {
			p.add("threshold", "or baseline_factor must be set for performance_degradation")
		}
	}
}

func (r *Rule) checkNonNegative(p *ruleProblems) {
	if r.MinRequests < 0 {
		p.add("min_requests", "must be >= 0, got %d", r.MinRequests)
	}
	if r.For < 0 {
		p.add("for", "must be >= 0, got %s", r.For)
	}
	if r.KeepFiringFor < 0 {
		p.add("keep_firing_for", "must be >= 0, got %s", r.KeepFiringFor)
	}
	if r.Cooldown < 0 {
		p.add("cooldown", "must be >= 0, got %s", r.Cooldown)
	}
}

// checkTypeSpecific checks the fields that only one rule type uses:
// Direction, BaselineFactor and Quota.
func (r *Rule) checkTypeSpecific(p *ruleProblems) {
	if r.Type == UnusualActivity {
		switch r.Direction {
		case DirectionSpike, DirectionDrop, DirectionBoth:
		default:
			p.add("direction", "must be spike, drop or both; got %q", r.Direction)
		}
	} else if r.Direction != "" {
		p.add("direction", "applies only to unusual_activity rules")
	}
	if r.Type != PerformanceDegradation && r.BaselineFactor != 0 {
		p.add("baseline_factor", "applies only to performance_degradation rules")
	}
	switch {
	case r.Type != QuotaWarning && r.Quota != "":
		p.add("quota", "applies only to quota_warning rules")
	case r.Quota != QuotaAny && r.Quota != QuotaHourly && r.Quota != QuotaMonthly:
		p.add("quota", "must be hourly, monthly or left out for either; got %q", r.Quota)
	}
}

// checkFilter checks one filter list: it may be set only for the allowed
// subjects, and each entry must be a valid path.Match pattern.
func (r *Rule) checkFilter(p *ruleProblems, field string, list []string, allowed ...SubjectKind) {
	if len(list) == 0 {
		return
	}
	ok := false
	for _, k := range allowed {
		ok = ok || r.Subject == k
	}
	if !ok {
		p.add(field, "cannot filter a rule whose subject is %s (allowed with subject %v)", r.Subject, allowed)
	}
	for _, pattern := range list {
		if _, err := path.Match(pattern, ""); err != nil || pattern == "" {
			p.add(field, "has an invalid pattern %q", pattern)
		}
	}
}

func validName(s string) bool {
	for _, c := range s {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '_', c == '.':
		default:
			return false
		}
	}
	return true
}

// ValidateRules validates every rule and checks that names are unique.
func ValidateRules(rules []Rule) error {
	var errs []error
	seen := make(map[string]int, len(rules))
	for i, r := range rules {
		if err := r.Validate(); err != nil {
			errs = append(errs, err)
		}
		if j, dup := seen[r.Name]; dup && r.Name != "" {
			errs = append(errs, &RuleError{Rule: r.Name, Field: "name",
				Problem: fmt.Sprintf("is used by rules #%d and #%d; give each rule its own name", j+1, i+1)})
		}
		seen[r.Name] = i
	}
	return errors.Join(errs...)
}

// matchAny reports whether v matches one of patterns; an empty list
// matches everything.
func matchAny(patterns []string, v string) bool {
	if len(patterns) == 0 {
		return true
	}
	for _, p := range patterns {
		if p == v {
			return true
		}
		if ok, _ := path.Match(p, v); ok {
			return true
		}
	}
	return false
}

// admits applies the rule's filters to a subject and its attributes.
func (r *Rule) admits(s Subject, owner, tier string) bool {
	switch s.Kind {
	case SubjectRoute:
		return matchAny(r.Routes, s.Value)
	case SubjectKey:
		return matchAny(r.Keys, s.Value) && matchAny(r.Tiers, tier) && matchAny(r.Owners, owner)
	case SubjectOwner:
		return matchAny(r.Owners, s.Value)
	}
	return true
}
