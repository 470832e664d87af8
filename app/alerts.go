package app

import (
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/apiwarden/apiwarden/alerting"
	"github.com/apiwarden/apiwarden/config"
)

// AlertRules translates [[alerts.rules]] and validates them with the
// evaluator's own checks.
func AlertRules(cfg *config.Config) ([]alerting.Rule, error) {
	rules := make([]alerting.Rule, 0, len(cfg.Alerts.Rules))
	for _, r := range cfg.Alerts.Rules {
		sev, err := alerting.ParseSeverity(r.Severity)
		if err != nil {
			return nil, fmt.Errorf("alert rule %q: %w", r.Name, err)
		}
		rules = append(rules, alerting.Rule{
			Name: r.Name, Type: alerting.RuleType(r.Type), Subject: alerting.SubjectKind(r.Subject),
			Window: r.Window.D(), Threshold: r.Threshold, MinRequests: r.MinRequests,
			For: r.For.D(), KeepFiringFor: r.KeepFiringFor.D(), Severity: sev,
			Routes: r.Routes, Tiers: r.Tiers, Owners: r.Owners, Keys: r.Keys,
			Cooldown: r.Cooldown.D(), Direction: alerting.Direction(r.Direction),
			BaselineFactor: r.BaselineFactor, Quota: alerting.QuotaPeriod(r.Quota),
		}.WithDefaults())
	}
	if err := alerting.ValidateRules(rules); err != nil {
		return nil, err
	}
	return rules, nil
}

// Receivers builds one notification receiver per [[alerts.notify]].
func Receivers(cfg *config.Config) ([]alerting.Receiver, error) {
	var out []alerting.Receiver
	for i, n := range cfg.Alerts.Notify {
		var notifier alerting.Notifier
		var err error
		switch n.Type {
		case "webhook":
			notifier, err = alerting.NewWebhook(alerting.WebhookConfig{URL: n.URL.Value(), ExternalURL: cfg.Alerts.ExternalURL})
		case "slack":
			notifier, err = alerting.NewSlack(alerting.SlackConfig{URL: n.URL.Value(), ExternalURL: cfg.Alerts.ExternalURL})
		case "email":
			notifier, err = alerting.NewEmail(alerting.EmailConfig{
				Addr: net.JoinHostPort(n.SMTPHost, strconv.Itoa(n.SMTPPort)), From: n.From, To: n.To,
				Username: n.SMTPUsername, Password: n.SMTPPassword.Value(), ExternalURL: cfg.Alerts.ExternalURL,
			})
		default:
			err = fmt.Errorf("unknown type %q", n.Type)
		}
		if err != nil {
			return nil, fmt.Errorf("alerts.notify[%d]: %w", i, err)
		}
		var minSev alerting.Severity
		if n.MinSeverity != "" {
			if minSev, err = alerting.ParseSeverity(n.MinSeverity); err != nil {
				return nil, fmt.Errorf("alerts.notify[%d]: %w", i, err)
			}
		}
		out = append(out, alerting.Receiver{Name: fmt.Sprintf("%s-%d", n.Type, i), Notifier: notifier, MinSeverity: minSev,
			RepeatInterval: receiverRepeat(cfg, n)})
	}
	return out, nil
}

// receiverRepeat is how often receiver n hears a firing alert again: its
// own repeat_interval, else alerts.repeat_interval (0 there means the
// evaluator's default; negative, never).
func receiverRepeat(cfg *config.Config, n config.NotifyRule) time.Duration {
	if d := n.RepeatInterval.D(); d > 0 {
		return d
	}
	if d := cfg.Alerts.RepeatInterval.D(); d != 0 {
		return d
	}
	return alerting.DefaultRepeatInterval
}

// RepeatInterval is how often the evaluator re-announces a firing alert:
// the shortest interval of any receiver. Each receiver drops the repeats
// that come too soon for it (alerting.RepeatStage), so all hear at their
// own pace.
func RepeatInterval(cfg *config.Config) time.Duration {
	every := cfg.Alerts.RepeatInterval.D()
	for _, n := range cfg.Alerts.Notify {
		if d := receiverRepeat(cfg, n); d > 0 && (every <= 0 || d < every) {
			every = d
		}
	}
	return every
}
