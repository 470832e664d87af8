package alerting

import (
	"maps"
	"strconv"
	"strings"
	"time"
)

// Alert is one occurrence of a rule's condition on one subject, from the
// moment the condition was first seen until it is resolved. Values are
// copies: changing one changes nothing in the evaluator.
type Alert struct {
	// ID is unique among all alerts ever opened: fingerprint-sequence.
	ID string `json:"id"`
	// Fingerprint identifies rule + subject (16 hex digits). While an alert
	// is open no second alert with its fingerprint exists.
	Fingerprint string `json:"fingerprint"`

	Rule     string   `json:"rule"`
	Type     RuleType `json:"type"`
	Subject  Subject  `json:"subject"`
	Severity Severity `json:"severity"` // after the calendar boost
	State    State    `json:"state"`

	// Labels identify the alert to receivers: alertname, severity,
	// rule_type, subject_kind, subject and, when known, key_id, key_name,
	// owner_id, tier and route.
	Labels map[string]string `json:"labels"`
	// Summary and Description are human text of the last evaluation in
	// which the condition held.
	Summary     string `json:"summary"`
	Description string `json:"description"`
	// Value is the number compared with Threshold at that evaluation (a
	// fraction, a z-score or milliseconds, depending on the type).
	Value     float64 `json:"value"`
	Threshold float64 `json:"threshold"`

	ActiveAt        time.Time `json:"active_at"`                 // condition first held
	FiredAt         time.Time `json:"fired_at,omitzero"`         // became firing
	RecoveringSince time.Time `json:"recovering_since,omitzero"` // condition cleared while firing
	ResolvedAt      time.Time `json:"resolved_at,omitzero"`      // closed
	LastNotifiedAt  time.Time `json:"last_notified_at,omitzero"` // last handed to the notifiers
	ResolvedBy      string    `json:"resolved_by,omitempty"`     // a person, when resolved by hand

	Acknowledgement *Acknowledgement `json:"acknowledgement,omitempty"`

	// InhibitedBy is the ID of a firing alert of the same type and subject
	// from a rule of higher severity. While it is set receivers are not
	// told about this alert (see inhibit.go).
	InhibitedBy string `json:"inhibited_by,omitempty"`
}

// Acknowledgement records that a person has seen a firing alert. It stops
// repeat notifications until the alert resolves.
type Acknowledgement struct {
	By   string    `json:"by"`
	Note string    `json:"note,omitempty"`
	At   time.Time `json:"at"`
}

// Firing reports whether receivers consider the alert firing: it is
// firing or recovering (still inside KeepFiringFor).
func (a *Alert) Firing() bool { return a.State == StateFiring || a.State == StateRecovering }

// Acknowledged reports whether a person acknowledged the alert.
func (a *Alert) Acknowledged() bool { return a.Acknowledgement != nil }

// clone returns a deep copy.
func (a *Alert) clone() Alert {
	c := *a
	c.Labels = maps.Clone(a.Labels)
	if a.Acknowledgement != nil {
		ack := *a.Acknowledgement
		c.Acknowledgement = &ack
	}
	return c
}

// Fingerprint hashes rule name and subject with 64-bit FNV-1a, the hash
// Alertmanager uses for label sets. It is stable across versions and
// restarts: it is persisted and sent to receivers.
func Fingerprint(rule string, s Subject) string {
	return formatFingerprint(fingerprint(rule, s))
}

func fingerprint(rule string, s Subject) uint64 {
	const (
		offset64 = 14695981039346656037
		prime64  = 1099511628211
	)
	h := uint64(offset64)
	add := func(str string) {
		for i := 0; i < len(str); i++ {
			h ^= uint64(str[i])
			h *= prime64
		}
		h ^= 0xff // separator: no string holds the byte 0xff as UTF-8
		h *= prime64
	}
	add(rule)
	add(string(s.Kind))
	add(s.Value)
	return h
}

func formatFingerprint(fp uint64) string {
	const digits = "0123456789abcdef"
	var b [16]byte
	for i := 15; i >= 0; i-- {
		b[i] = digits[fp&0xf]
		fp >>= 4
	}
	return string(b[:])
}

// alertID makes the id of the seq-th alert opened for a fingerprint.
func alertID(fp string, seq uint64) string {
	return fp + "-" + strconv.FormatUint(seq, 10)
}

// idSeq is the sequence number of an alert id, 0 when it has none.
func idSeq(id string) uint64 {
	if i := strings.LastIndexByte(id, '-'); i >= 0 {
		if n, err := strconv.ParseUint(id[i+1:], 10, 64); err == nil {
			return n
		}
	}
	return 0
}

// labelsFor builds the labels of an alert on the subject of o.
func labelsFor(r *Rule, sev Severity, o *observation) map[string]string {
	s := o.subject
	l := map[string]string{
		"alertname":    r.Name,
		"severity":     string(sev),
		"rule_type":    string(r.Type),
		"subject_kind": string(s.Kind),
	}
	if s.Value != "" {
		l["subject"] = s.Value
	}
	switch s.Kind {
	case SubjectKey:
		l["key_id"] = s.Value
	case SubjectOwner:
		l["owner_id"] = s.Value
	case SubjectRoute:
		l["route"] = s.Value
	}
	if o.name != "" {
		l["key_name"] = o.name
	}
	if o.owner != "" {
		l["owner_id"] = o.owner
	}
	if o.tier != "" {
		l["tier"] = o.tier
	}
	return l
}
