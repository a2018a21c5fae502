package function

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	mail "github.com/wneessen/go-mail"

	"github.com/dronetrack/dronetrack/core/notify"
)

// SMTP settings: one mail server per deployment (func.yaml, from a Secret
// for the password). Recipients are per channel.
const (
	EnvSMTPHost     = "SMTP_HOST"
	EnvSMTPPort     = "SMTP_PORT"     // default 587 (starttls), 465 (tls)
	EnvSMTPTLS      = "SMTP_TLS"      // starttls (default), tls (implicit, "SMTPS") or none (a local relay only)
	EnvSMTPUsername = "SMTP_USERNAME" // empty: no AUTH
	EnvSMTPPassword = "SMTP_PASSWORD" // a secret: never logged
	EnvSMTPFrom     = "SMTP_FROM"     // the From address, e.g. "Dronetrack <alerts@example.com>"
	EnvSMTPCAFile   = "SMTP_CA_FILE"  // PEM roots to trust besides the system's (a private relay)
	// EnvSiteURL is the website's public base URL (https://track.example.com):
	// notifications link to the drone on its map.
	EnvSiteURL = "SITE_URL"
)

// SMTP TLS modes.
const (
	SMTPStartTLS = "starttls"
	SMTPTLS      = "tls"
	SMTPNoTLS    = "none"
)

// SMTPConfig is the deployment's mail server. The zero value (no Host)
// means email channels cannot send: their attempts fail with that reason,
// visible in the channel's status.
type SMTPConfig struct {
	Host     string
	Port     int
	TLS      string // SMTPStartTLS (default), SMTPTLS or SMTPNoTLS
	Username string
	Password string
	From     string
	// TLSConfig overrides the TLS settings (RootCAs of a private relay,
	// tests); ServerName is set to Host when empty.
	TLSConfig *tls.Config
	Timeout   time.Duration // per message; default 15 s
}

// smtpFromConfig builds SMTPConfig from the validated Config; empty
// SMTP_HOST is the zero config.
func smtpFromConfig(cfg Config) (SMTPConfig, error) {
	if cfg.SMTPHost == "" {
		return SMTPConfig{}, nil
	}
	c := SMTPConfig{Host: cfg.SMTPHost, Port: cfg.SMTPPort, TLS: cfg.SMTPTLS, Username: cfg.SMTPUsername,
		Password: cfg.SMTPPassword, From: cfg.SMTPFrom}
	if f := cfg.SMTPCAFile; f != "" {
		pem, err := os.ReadFile(f)
		if err != nil {
			return c, fmt.Errorf("alerts: %s: %w", EnvSMTPCAFile, err)
		}
		roots, err := x509.SystemCertPool()
		if err != nil {
			roots = x509.NewCertPool()
		}
		if !roots.AppendCertsFromPEM(pem) {
			return c, fmt.Errorf("alerts: %s: no PEM certificate in %s", EnvSMTPCAFile, f)
		}
		c.TLSConfig = &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
	}
	return c, nil
}

// errNoSMTP is an email channel's attempt on a deployment without a mail
// server: permanent until the operator configures one.
var errNoSMTP = errors.New("email is not configured on this deployment (SMTP_HOST)")

// sendEmail sends one message to the channel's recipients. The Message-ID
// is derived from (channel, event), so a duplicate that slips past the
// delivery log (a crash after the server accepted the message) carries the
// same id, which mail clients use to fold duplicates.
func sendEmail(ctx context.Context, c SMTPConfig, to []string, m notify.Message, channelID, eventID string) error {
	if c.Host == "" {
		return errNoSMTP
	}
	opts := []mail.Option{mail.WithTimeout(c.timeout())}
	port := c.Port
	tlsCfg := c.TLSConfig
	if tlsCfg == nil {
		tlsCfg = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	tlsCfg = tlsCfg.Clone()
	if tlsCfg.ServerName == "" {
		tlsCfg.ServerName = c.Host
	}
	switch c.TLS {
	case SMTPTLS:
		if port == 0 {
			port = 465
		}
		opts = append(opts, mail.WithSSL(), mail.WithTLSConfig(tlsCfg))
	case SMTPNoTLS:
		opts = append(opts, mail.WithTLSPolicy(mail.NoTLS))
	default:
		opts = append(opts, mail.WithTLSPolicy(mail.TLSMandatory), mail.WithTLSConfig(tlsCfg))
	}
	if port == 0 {
		port = 587
	}
	opts = append(opts, mail.WithPort(port))
	if c.Username != "" {
		opts = append(opts, mail.WithSMTPAuth(mail.SMTPAuthAutoDiscover), mail.WithUsername(c.Username),
			mail.WithPassword(c.Password))
	}
	client, err := mail.NewClient(c.Host, opts...)
	if err != nil {
		return fmt.Errorf("smtp client: %w", err)
	}
	msg := mail.NewMsg()
	if err := msg.From(c.From); err != nil {
		return fmt.Errorf("smtp from: %w", err)
	}
	if err := msg.To(to...); err != nil {
		return fmt.Errorf("smtp recipients: %w", err)
	}
	msg.Subject(m.Subject)
	sum := sha256.Sum256([]byte(channelID + "\x00" + eventID))
	msg.SetMessageIDWithValue(hex.EncodeToString(sum[:16]) + "@dronetrack")
	msg.SetDate()
	msg.SetGenHeader("X-Dronetrack-Event-Id", eventID)
	msg.SetBodyString(mail.TypeTextPlain, m.Text)
	msg.AddAlternativeString(mail.TypeTextHTML, m.HTML)
	ctx, cancel := context.WithTimeout(ctx, c.timeout())
	defer cancel()
	if err := client.DialAndSendWithContext(ctx, msg); err != nil {
		return fmt.Errorf("smtp: %w", err)
	}
	return nil
}

func (c SMTPConfig) timeout() time.Duration {
	if c.Timeout > 0 {
		return c.Timeout
	}
	return 15 * time.Second
}

// postChat posts a Slack or Teams payload to the channel's incoming-webhook
// URL through the SSRF-safe webhook client. The URL is a secret: errors
// name the host at most, never the URL (its path is the credential).
func postChat(ctx context.Context, client *http.Client, rawURL string, body []byte) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, rawURL, bytes.NewReader(body))
	if err != nil {
		return 0, errors.New("invalid incoming-webhook URL")
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "Dronetrack-Notify/1")
	resp, err := client.Do(req)
	if err != nil {
		return 0, redactURL(err, req.URL)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return resp.StatusCode, fmt.Errorf("%s answered %d", req.URL.Host, resp.StatusCode)
	}
	return resp.StatusCode, nil
}

// redactURL drops the URL from a client error (url.Error prints it
// whole) and keeps the cause, naming the host instead.
func redactURL(err error, u *url.URL) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	msg := strings.ReplaceAll(err.Error(), u.String(), u.Host)
	return fmt.Errorf("post to %s: %s", u.Host, msg)
}
