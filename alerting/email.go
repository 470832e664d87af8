package alerting

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"hash/fnv"
	"mime"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"net/smtp"
	"net/textproto"
	"strings"
	"time"
)

// EmailConfig configures an Email notifier.
type EmailConfig struct {
	// Addr is the SMTP server, host:port (port 587 for submission with
	// STARTTLS, 25 for a local relay).
	Addr string
	From string   // an address, optionally with a name: "apiwarden <alerts@example.com>"
	To   []string // one address or more
	// Username and Password turn on AUTH PLAIN. net/smtp refuses to send
	// them over an unencrypted connection except to localhost.
	Username string
	Password string
	// Hello is the name given in EHLO; default "localhost".
	Hello string
	// TLSConfig is used for STARTTLS; default verifies the server as the
	// host of Addr.
	TLSConfig *tls.Config
	// RequireTLS refuses to send when the server does not offer STARTTLS.
	RequireTLS bool
	// Timeout bounds one delivery when the context has no deadline;
	// default 30s.
	Timeout time.Duration
	// ExternalURL is apiwarden's own address for links; may be empty.
	ExternalURL string
	// Now dates the message; nil is time.Now.
	Now func() time.Time
}

// Email sends a plain-text message over SMTP. It uses STARTTLS when the
// server offers it and AUTH PLAIN when credentials are set.
type Email struct {
	cfg  EmailConfig
	host string
	from *mail.Address
	to   []*mail.Address
}

var _ Notifier = (*Email)(nil)

// NewEmail checks the addresses and returns the notifier, or an error
// wrapping ErrInvalidReceiver.
func NewEmail(cfg EmailConfig) (*Email, error) {
	host, _, err := net.SplitHostPort(cfg.Addr)
	if err != nil || host == "" {
		return nil, fmt.Errorf("%w: email addr must be host:port, got %q", ErrInvalidReceiver, cfg.Addr)
	}
	from, err := mail.ParseAddress(cfg.From)
	if err != nil {
		return nil, fmt.Errorf("%w: email from %q: %v", ErrInvalidReceiver, cfg.From, err)
	}
	if len(cfg.To) == 0 {
		return nil, fmt.Errorf("%w: email needs at least one address in to", ErrInvalidReceiver)
	}
	e := &Email{cfg: cfg, host: host, from: from}
	for _, t := range cfg.To {
		a, err := mail.ParseAddress(t)
		if err != nil {
			return nil, fmt.Errorf("%w: email to %q: %v", ErrInvalidReceiver, t, err)
		}
		e.to = append(e.to, a)
	}
	if (cfg.Username == "") != (cfg.Password == "") {
		return nil, fmt.Errorf("%w: email username and password go together", ErrInvalidReceiver)
	}
	if e.cfg.Hello == "" {
		e.cfg.Hello = "localhost"
	}
	if e.cfg.Timeout <= 0 {
		e.cfg.Timeout = 30 * time.Second
	}
	if e.cfg.Now == nil {
		e.cfg.Now = time.Now
	}
	return e, nil
}

// Notify sends one message for the group of alerts found in ctx.
func (e *Email) Notify(ctx context.Context, alerts ...Alert) (bool, error) {
	g, _ := GroupFrom(ctx)
	msg := e.Message(g, alerts)

	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(e.cfg.Timeout)
	}
	dialer := net.Dialer{Deadline: deadline}
	conn, err := dialer.DialContext(ctx, "tcp", e.cfg.Addr)
	if err != nil {
		return true, fmt.Errorf("smtp: connect %s: %w", e.cfg.Addr, err)
	}
	_ = conn.SetDeadline(deadline)
	stopWatch := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	defer stopWatch()

	c, err := smtp.NewClient(conn, e.host)
	if err != nil {
		conn.Close()
		return smtpRetryable(err, true), fmt.Errorf("smtp: greeting: %w", err)
	}
	defer c.Close()
	if err := c.Hello(e.cfg.Hello); err != nil {
		return smtpRetryable(err, true), fmt.Errorf("smtp: EHLO: %w", err)
	}
	if ok, _ := c.Extension("STARTTLS"); ok {
		tlsConfig := e.cfg.TLSConfig.Clone()
		if tlsConfig == nil {
			tlsConfig = &tls.Config{}
		}
		if tlsConfig.ServerName == "" {
			tlsConfig.ServerName = e.host
		}
		if err := c.StartTLS(tlsConfig); err != nil {
			return smtpRetryable(err, false), fmt.Errorf("smtp: STARTTLS: %w", err)
		}
	} else if e.cfg.RequireTLS {
		return false, errors.New("smtp: server does not offer STARTTLS and require_tls is set")
	}
	if e.cfg.Username != "" {
		if err := c.Auth(smtp.PlainAuth("", e.cfg.Username, e.cfg.Password, e.host)); err != nil {
			return smtpRetryable(err, false), fmt.Errorf("smtp: AUTH: %w", err)
		}
	}
	if err := c.Mail(e.from.Address); err != nil {
		return smtpRetryable(err, true), fmt.Errorf("smtp: MAIL FROM: %w", err)
	}
	for _, to := range e.to {
		if err := c.Rcpt(to.Address); err != nil {
			return smtpRetryable(err, true), fmt.Errorf("smtp: RCPT TO %s: %w", to.Address, err)
		}
	}
	w, err := c.Data()
	if err != nil {
		return smtpRetryable(err, true), fmt.Errorf("smtp: DATA: %w", err)
	}
	if _, err := w.Write(msg); err != nil {
		return true, fmt.Errorf("smtp: write message: %w", err)
	}
	if err := w.Close(); err != nil {
		return smtpRetryable(err, true), fmt.Errorf("smtp: end of DATA: %w", err)
	}
	// The message was accepted at the end of DATA; a failed QUIT does not
	// undo that, and retrying would send it twice.
	_ = c.Quit()
	return false, nil
}

// smtpRetryable classifies an SMTP error: a 4yz reply is temporary and a
// 5yz permanent; for anything else (network, TLS) the caller says.
func smtpRetryable(err error, otherwise bool) bool {
	var reply *textproto.Error
	if errors.As(err, &reply) {
		return reply.Code >= 400 && reply.Code < 500
	}
	return otherwise
}

// Message renders the whole message, headers and quoted-printable body,
// with CRLF line ends.
func (e *Email) Message(g Group, alerts []Alert) []byte {
	now := e.cfg.Now()
	title := notificationTitle(g, alerts)
	h := fnv.New64a()
	h.Write([]byte(g.Receiver + "\x00" + g.Key + "\x00" + title))

	var to []string
	for _, a := range e.to {
		to = append(to, a.String())
	}
	var buf bytes.Buffer
	header := func(name, value string) {
		buf.WriteString(name + ": " + stripNewlines(value) + "\r\n")
	}
	header("From", e.from.String())
	header("To", strings.Join(to, ", "))
	header("Subject", mime.QEncoding.Encode("utf-8", "[apiwarden] "+title))
	header("Date", now.Format(time.RFC1123Z))
	header("Message-ID", fmt.Sprintf("<%x.%d@apiwarden>", h.Sum64(), now.UnixNano()))
	header("MIME-Version", "1.0")
	header("Content-Type", "text/plain; charset=utf-8")
	header("Content-Transfer-Encoding", "quoted-printable")
	header("Auto-Submitted", "auto-generated")
	buf.WriteString("\r\n")

	qp := quotedprintable.NewWriter(&buf)
	body := strings.ReplaceAll(e.body(g, title, alerts), "\n", "\r\n")
	_, _ = qp.Write([]byte(body))
	_ = qp.Close()
	return buf.Bytes()
}

func (e *Email) body(g Group, title string, alerts []Alert) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s\n\n", title)
	if g.Receiver != "" {
		fmt.Fprintf(&b, "Receiver: %s\n", g.Receiver)
	}
	for i := range alerts {
		a := &alerts[i]
		fmt.Fprintf(&b, "\n%s (%s): %s\n", strings.ToUpper(notifyStatus(a)), a.Severity, a.Summary)
		fmt.Fprintf(&b, "  %s\n", a.Description)
		fmt.Fprintf(&b, "  %s\n", alertFooter(e.cfg.ExternalURL, a, false))
	}
	if e.cfg.ExternalURL != "" {
		fmt.Fprintf(&b, "\nDashboard: %s/ui/\n", strings.TrimRight(e.cfg.ExternalURL, "/"))
	}
	b.WriteString("\n-- \napiwarden alerting\n")
	return b.String()
}

func stripNewlines(s string) string {
	return strings.NewReplacer("\r", " ", "\n", " ").Replace(s)
}
