package function

import (
	"fmt"

	"github.com/dronetrack/dronetrack/core/config"
	"strings"
	"time"
)

// Config is alerts' settings, parsed by core/config from the map func-go
// hands to Start (the Env* constants are its env names).
type Config struct {
	StoreURL            string        `env:"STORE_URL,required" doc:"store of tenants, rules, channels and deliveries"`
	Sink                string        `env:"K_SINK,required" doc:"broker ingress alerts publish to (the SinkBinding injects it on the cluster)"`
	LogLevel            string        `env:"LOG_LEVEL" doc:"debug, info, warn or error (default info)"`
	RulesTTL            time.Duration `env:"RULES_TTL,default=5s" doc:"how long a tenant's settings and fences are cached"`
	StoreTimeout        time.Duration `env:"STORE_TIMEOUT,default=5s" doc:"bound of each store call; past it a delivery answers 503 and the broker redelivers"`
	WebhookAllowPrivate bool          `env:"WEBHOOK_ALLOW_PRIVATE,default=false" doc:"true lets webhooks reach loopback, private and link-local addresses (one-machine mode, tests)"`
	SMTPHost            string        `env:"SMTP_HOST" doc:"mail server for email channels; unset: email channels report that no mail server is set"`
	SMTPPort            int           `env:"SMTP_PORT" doc:"mail server port (default 587 for starttls, 465 for tls)"`
	SMTPTLS             string        `env:"SMTP_TLS,default=starttls" doc:"starttls, tls (implicit) or none (a local relay only)"`
	SMTPUsername        string        `env:"SMTP_USERNAME" doc:"SMTP AUTH user; empty: no AUTH"`
	SMTPPassword        string        `env:"SMTP_PASSWORD" doc:"SMTP AUTH password (a secret: never logged)"`
	SMTPFrom            string        `env:"SMTP_FROM" doc:"From address, required with SMTP_HOST"`
	SMTPCAFile          string        `env:"SMTP_CA_FILE" doc:"PEM roots to trust besides the system's (a private relay)"`
	SiteURL             string        `env:"SITE_URL" doc:"the website's URL, for links in notifications"`
}

// DefaultConfig is Config with only its tags' defaults set: the one home of
// the defaults that NewHandler and withStoreDeadline apply to zero values.
func DefaultConfig() Config { return config.Defaults[Config]() }

// Validate checks ranges and the SMTP settings that go together.
func (c *Config) Validate() error {
	if c.RulesTTL < 0 {
		return fmt.Errorf("%s=%v: want a Go duration, 0 or more", EnvRulesTTL, c.RulesTTL)
	}
	if c.StoreTimeout <= 0 {
		return fmt.Errorf("%s=%v: want a positive Go duration", EnvStoreTimeout, c.StoreTimeout)
	}
	if c.SMTPHost == "" {
		return nil
	}
	c.SMTPTLS = strings.ToLower(c.SMTPTLS)
	switch c.SMTPTLS {
	case SMTPStartTLS, SMTPTLS, SMTPNoTLS:
	default:
		return fmt.Errorf("%s=%q: want starttls, tls or none", EnvSMTPTLS, c.SMTPTLS)
	}
	if c.SMTPPort < 0 || c.SMTPPort > 65535 {
		return fmt.Errorf("%s=%d: want a port number", EnvSMTPPort, c.SMTPPort)
	}
	if c.SMTPFrom == "" {
		return fmt.Errorf("%s is set but %s is not", EnvSMTPHost, EnvSMTPFrom)
	}
	return nil
}
