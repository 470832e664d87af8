package app

import (
	"fmt"
	"net"
	"strconv"

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
		out = append(out, alerting.Receiver{Name: fmt.Sprintf("%s-%d", n.Type, i), Notifier: notifier, MinSeverity: minSev})
	}
	return out, nil
}
