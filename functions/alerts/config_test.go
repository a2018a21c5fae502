package function

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/dronetrack/dronetrack/core/config"
)

func TestConfigErrorsNameVariable(t *testing.T) {
	base := map[string]string{EnvStoreURL: "bolt:///x", EnvSink: "http://127.0.0.1:1"}
	for _, tc := range []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{EnvRulesTTL: "soon"}, EnvRulesTTL},
		{map[string]string{EnvRulesTTL: "-1s"}, EnvRulesTTL},
		{map[string]string{EnvStoreTimeout: "0s"}, EnvStoreTimeout},
		{map[string]string{EnvWebhookAllowPrivate: "maybe"}, EnvWebhookAllowPrivate},
		{map[string]string{EnvSMTPHost: "mail", EnvSMTPFrom: "a@b", EnvSMTPPort: "abc"}, EnvSMTPPort},
		{map[string]string{EnvSMTPHost: "mail", EnvSMTPFrom: "a@b", EnvSMTPPort: "70000"}, EnvSMTPPort},
		{map[string]string{EnvSMTPHost: "mail", EnvSMTPFrom: "a@b", EnvSMTPTLS: "ssl3"}, EnvSMTPTLS},
		{map[string]string{EnvSMTPHost: "mail"}, EnvSMTPFrom},
		{map[string]string{EnvStoreURL: ""}, EnvStoreURL},
		{map[string]string{EnvSink: ""}, EnvSink},
	} {
		env := map[string]string{}
		for k, v := range base {
			env[k] = v
		}
		for k, v := range tc.env {
			env[k] = v
		}
		var c Config
		if err := config.Parse(context.Background(), env, &c); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: error %v, want one naming %s", tc.env, err, tc.want)
		}
	}
}

func TestConfigDefaults(t *testing.T) {
	var c Config
	env := map[string]string{EnvStoreURL: "bolt:///x", EnvSink: "http://127.0.0.1:1", EnvSMTPHost: "mail",
		EnvSMTPFrom: "a@b", EnvSMTPTLS: "TLS"}
	if err := config.Parse(context.Background(), env, &c); err != nil {
		t.Fatal(err)
	}
	if c.RulesTTL != 5*time.Second || c.StoreTimeout != 5*time.Second || c.WebhookAllowPrivate {
		t.Errorf("defaults: %+v", c)
	}
	// A handler built without Start (tests) takes the same defaults.
	if got := withStoreDeadline(nil, 0).(*deadlineStore).timeout; got != c.StoreTimeout {
		t.Errorf("store deadline for 0 = %v, want STORE_TIMEOUT's default %v", got, c.StoreTimeout)
	}
	h := NewHandler(nil, nil, Options{})
	if h.opts.RulesTTL != c.RulesTTL {
		t.Errorf("handler RulesTTL for 0 = %v, want RULES_TTL's default %v", h.opts.RulesTTL, c.RulesTTL)
	}
	s, err := smtpFromConfig(c)
	if err != nil || s.TLS != SMTPTLS || s.Host != "mail" || s.From != "a@b" {
		t.Errorf("smtp %+v, %v", s, err)
	}
}
