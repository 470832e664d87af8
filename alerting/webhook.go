package alerting

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
)

// WebhookMessage is the JSON a Webhook posts. It has the shape of
// Prometheus Alertmanager's webhook payload, version 4, so receivers
// written for Alertmanager read it unchanged.
type WebhookMessage struct {
	Version           string            `json:"version"`
	GroupKey          string            `json:"groupKey"`
	TruncatedAlerts   int               `json:"truncatedAlerts"`
	Status            string            `json:"status"` // firing | resolved
	Receiver          string            `json:"receiver"`
	GroupLabels       map[string]string `json:"groupLabels"`
	CommonLabels      map[string]string `json:"commonLabels"`
	CommonAnnotations map[string]string `json:"commonAnnotations"`
	ExternalURL       string            `json:"externalURL"`
	Alerts            []WebhookAlert    `json:"alerts"`
}

// WebhookAlert is one alert of a WebhookMessage.
type WebhookAlert struct {
	Status       string            `json:"status"`
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations"`
	StartsAt     time.Time         `json:"startsAt"`
	EndsAt       time.Time         `json:"endsAt"` // zero while firing, as in Alertmanager
	GeneratorURL string            `json:"generatorURL"`
	Fingerprint  string            `json:"fingerprint"`
}

// Statuses in notifications.
const (
	statusFiring   = "firing"
	statusResolved = "resolved"
)

func notifyStatus(a *Alert) string {
	if a.Firing() {
		return statusFiring
	}
	return statusResolved
}

// groupStatus is firing when any alert of the group fires.
func groupStatus(alerts []Alert) string {
	for i := range alerts {
		if alerts[i].Firing() {
			return statusFiring
		}
	}
	return statusResolved
}

// annotations are the alert's human text as Alertmanager annotations.
func annotations(a *Alert) map[string]string {
	return map[string]string{
		"summary":     a.Summary,
		"description": a.Description,
		"alert_id":    a.ID,
	}
}

// alertURL links an alert in the dashboard, or is empty without a base.
func alertURL(externalURL string, a *Alert) string {
	if externalURL == "" {
		return ""
	}
	return strings.TrimRight(externalURL, "/") + "/ui/#/alerts/" + url.PathEscape(a.ID)
}

// startsAt is when receivers were first told, or when it became active.
func startsAt(a *Alert) time.Time {
	if !a.FiredAt.IsZero() {
		return a.FiredAt.UTC()
	}
	return a.ActiveAt.UTC()
}

// NewWebhookMessage builds the payload for a group of alerts. maxAlerts
// > 0 truncates the list and counts the rest in TruncatedAlerts.
func NewWebhookMessage(g Group, externalURL string, maxAlerts int, alerts []Alert) WebhookMessage {
	m := WebhookMessage{
		Version:           "4",
		GroupKey:          g.Key,
		Status:            groupStatus(alerts),
		Receiver:          g.Receiver,
		GroupLabels:       nonNil(g.Labels),
		CommonLabels:      map[string]string{},
		CommonAnnotations: map[string]string{},
		ExternalURL:       externalURL,
		Alerts:            make([]WebhookAlert, 0, len(alerts)),
	}
	for i := range alerts {
		a := &alerts[i]
		ann := annotations(a)
		if i == 0 {
			for k, v := range a.Labels {
				m.CommonLabels[k] = v
			}
			for k, v := range ann {
				m.CommonAnnotations[k] = v
			}
		} else {
			keepCommon(m.CommonLabels, a.Labels)
			keepCommon(m.CommonAnnotations, ann)
		}
		if maxAlerts > 0 && len(m.Alerts) >= maxAlerts {
			m.TruncatedAlerts++
			continue
		}
		wa := WebhookAlert{
			Status:       notifyStatus(a),
			Labels:       nonNil(a.Labels),
			Annotations:  ann,
			StartsAt:     startsAt(a),
			GeneratorURL: alertURL(externalURL, a),
			Fingerprint:  a.Fingerprint,
		}
		if a.State == StateResolved {
			wa.EndsAt = a.ResolvedAt.UTC()
		}
		m.Alerts = append(m.Alerts, wa)
	}
	return m
}

func keepCommon(common, other map[string]string) {
	for k, v := range common {
		if other[k] != v {
			delete(common, k)
		}
	}
}

func nonNil(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}

// WebhookConfig configures a Webhook.
type WebhookConfig struct {
	URL string
	// Headers are added to every request, e.g. Authorization.
	Headers map[string]string
	// ExternalURL is apiwarden's own address for links; may be empty.
	ExternalURL string
	// MaxAlerts caps the alerts of one message; 0 sends all.
	MaxAlerts int
	// Client defaults to one with a 10s timeout.
	Client *http.Client
}

// Webhook posts a WebhookMessage as JSON.
type Webhook struct {
	cfg WebhookConfig
}

var _ Notifier = (*Webhook)(nil)

// NewWebhook checks the URL (http or https, with a host) and returns the
// notifier, or an error wrapping ErrInvalidReceiver.
func NewWebhook(cfg WebhookConfig) (*Webhook, error) {
	if err := checkHTTPURL(cfg.URL); err != nil {
		return nil, err
	}
	if cfg.Client == nil {
		cfg.Client = &http.Client{Timeout: 10 * time.Second}
	}
	return &Webhook{cfg: cfg}, nil
}

func checkHTTPURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%w: url must be an absolute http or https URL, got %q", ErrInvalidReceiver, raw)
	}
	return nil
}

// Notify posts the group of alerts found in ctx (see GroupFrom).
func (w *Webhook) Notify(ctx context.Context, alerts ...Alert) (bool, error) {
	g, _ := GroupFrom(ctx)
	body, err := json.Marshal(NewWebhookMessage(g, w.cfg.ExternalURL, w.cfg.MaxAlerts, alerts))
	if err != nil {
		return false, err
	}
	return postJSON(ctx, w.cfg.Client, w.cfg.URL, w.cfg.Headers, body)
}

// postJSON posts body and classifies the outcome: 2xx is success; 429,
// 5xx and transport errors may be retried; any other status may not.
func postJSON(ctx context.Context, client *http.Client, target string, headers map[string]string, body []byte) (bool, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		return false, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "apiwarden-alerting")
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := client.Do(req)
	if err != nil {
		return true, fmt.Errorf("post %s: %w", redactURL(target), err)
	}
	defer resp.Body.Close()
	snippet, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) // let the connection be reused
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return false, nil
	}
	retryable := resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500
	return retryable, fmt.Errorf("post %s: %s: %s", redactURL(target), resp.Status, strings.TrimSpace(string(snippet)))
}

// redactURL keeps secrets in webhook paths and queries (Slack's URL is a
// credential) out of logs and errors.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(invalid url)"
	}
	redacted := u.Scheme + "://" + u.Host
	if u.Path != "" && u.Path != "/" {
		redacted += "/…"
	}
	return redacted
}

// sortedKeys returns the keys of m in order.
func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
