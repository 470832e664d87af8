package alerting

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// SlackConfig configures a Slack incoming-webhook notifier.
type SlackConfig struct {
	// URL is the incoming webhook's URL; it is a secret.
	URL string
	// Channel and Username override the webhook's defaults where Slack
	// still allows it; usually empty.
	Channel  string
	Username string
	// ExternalURL is apiwarden's own address for links; may be empty.
	ExternalURL string
	// Client defaults to one with a 10s timeout.
	Client *http.Client
}

// Slack posts to a Slack incoming webhook: a plain-text fallback in text
// and the details in blocks.
type Slack struct {
	cfg SlackConfig
}

var _ Notifier = (*Slack)(nil)

// NewSlack checks the URL and returns the notifier, or an error wrapping
// ErrInvalidReceiver.
func NewSlack(cfg SlackConfig) (*Slack, error) {
	if err := checkHTTPURL(cfg.URL); err != nil {
		return nil, err
	}
	if cfg.Client == nil {
		cfg.Client = &http.Client{Timeout: 10 * time.Second}
	}
	return &Slack{cfg: cfg}, nil
}

// slackMaxAlerts keeps a message under Slack's 50-block limit.
const slackMaxAlerts = 20

// SlackMessage is the body posted to the incoming webhook.
type SlackMessage struct {
	Text     string       `json:"text"`
	Blocks   []SlackBlock `json:"blocks"`
	Channel  string       `json:"channel,omitempty"`
	Username string       `json:"username,omitempty"`
}

// SlackBlock is one Block Kit block (header, section, context, divider).
type SlackBlock struct {
	Type     string      `json:"type"`
	Text     *SlackText  `json:"text,omitempty"`
	Elements []SlackText `json:"elements,omitempty"`
}

// SlackText is a Block Kit text object.
type SlackText struct {
	Type string `json:"type"` // plain_text | mrkdwn
	Text string `json:"text"`
}

// NewSlackMessage builds the message for a group of alerts.
func NewSlackMessage(g Group, externalURL string, alerts []Alert) SlackMessage {
	title := notificationTitle(g, alerts)
	m := SlackMessage{Text: title}
	m.Blocks = append(m.Blocks, SlackBlock{Type: "header", Text: &SlackText{Type: "plain_text", Text: title}})
	for i := range alerts {
		if i == slackMaxAlerts {
			m.Blocks = append(m.Blocks, SlackBlock{Type: "context", Elements: []SlackText{{
				Type: "mrkdwn", Text: fmt.Sprintf("…and %d more alerts", len(alerts)-slackMaxAlerts)}}})
			break
		}
		a := &alerts[i]
		icon := ":red_circle:"
		if !a.Firing() {
			icon = ":large_green_circle:"
		}
		// The summary stays unformatted: route patterns hold '*', which
		// would end a bold span early.
		text := fmt.Sprintf("%s *%s* · %s · %s\n%s",
			icon, strings.ToUpper(notifyStatus(a)), a.Severity, slackEscape(a.Summary), slackEscape(a.Description))
		m.Blocks = append(m.Blocks,
			SlackBlock{Type: "section", Text: &SlackText{Type: "mrkdwn", Text: text}},
			SlackBlock{Type: "context", Elements: []SlackText{{Type: "mrkdwn", Text: alertFooter(externalURL, a, true)}}},
		)
	}
	return m
}

// slackEscape escapes the three characters Slack's mrkdwn reserves.
func slackEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}

// alertFooter is the line of facts under an alert: " · "-separated with
// a <link|open> for Slack, ", "-separated ASCII with the link on a line of
// its own for email.
func alertFooter(externalURL string, a *Alert, slack bool) string {
	sep := ", "
	if slack {
		sep = " · "
	}
	parts := []string{
		"rule " + a.Rule,
		"subject " + a.Subject.String(),
		"since " + startsAt(a).Format(time.RFC3339),
		"id " + a.ID,
	}
	if a.State == StateResolved {
		resolved := "resolved " + a.ResolvedAt.UTC().Format(time.RFC3339)
		if a.ResolvedBy != "" {
			resolved += " by " + a.ResolvedBy
		}
		parts = append(parts, resolved)
	}
	line := strings.Join(parts, sep)
	link := alertURL(externalURL, a)
	switch {
	case link == "":
		return line
	case slack:
		return slackEscape(line) + sep + "<" + link + "|open>"
	default:
		return line + "\n  " + link
	}
}

// notificationTitle is "[FIRING:2] error-spike" or "[RESOLVED] error-spike".
func notificationTitle(g Group, alerts []Alert) string {
	firing := 0
	for i := range alerts {
		if alerts[i].Firing() {
			firing++
		}
	}
	status := "[RESOLVED]"
	if firing > 0 {
		status = fmt.Sprintf("[FIRING:%d]", firing)
	}
	var names []string
	for _, k := range sortedKeys(g.Labels) {
		names = append(names, g.Labels[k])
	}
	if len(names) == 0 && len(alerts) > 0 {
		names = append(names, alerts[0].Rule)
	}
	return status + " " + strings.Join(names, " ")
}

// Notify posts the group of alerts found in ctx.
func (s *Slack) Notify(ctx context.Context, alerts ...Alert) (bool, error) {
	g, _ := GroupFrom(ctx)
	m := NewSlackMessage(g, s.cfg.ExternalURL, alerts)
	m.Channel, m.Username = s.cfg.Channel, s.cfg.Username
	body, err := json.Marshal(m)
	if err != nil {
		return false, err
	}
	return postJSON(ctx, s.cfg.Client, s.cfg.URL, nil, body)
}
