package config

import (
	"context"
	"strings"
	"testing"
	"time"
)

type sample struct {
	URL     string        `env:"SAMPLE_URL,required" doc:"where"`
	Other   string        `env:"SAMPLE_OTHER,required"`
	Every   time.Duration `env:"SAMPLE_EVERY,default=2s" doc:"how often"`
	TTL     Duration      `env:"SAMPLE_TTL,default=30"`
	List    []string      `env:"SAMPLE_LIST,default=a,b"`
	Unset   Duration      `env:"SAMPLE_UNSET"`
	private int
}

func (s *sample) Validate() error {
	if s.Every > time.Hour {
		return errTooLong
	}
	return nil
}

var errTooLong = errorString("SAMPLE_EVERY: at most 1h")

type errorString string

func (e errorString) Error() string { return string(e) }

func TestParse(t *testing.T) {
	ctx := context.Background()
	var s sample
	err := Parse(ctx, map[string]string{"SAMPLE_OTHER": ""}, &s)
	if err == nil || err.Error() != "missing config SAMPLE_URL, SAMPLE_OTHER" {
		t.Fatalf("missing: %v", err)
	}
	// "" is unset: the default applies.
	if err := Parse(ctx, map[string]string{"SAMPLE_URL": "u", "SAMPLE_OTHER": "o", "SAMPLE_EVERY": ""}, &s); err != nil {
		t.Fatal(err)
	}
	if s.Every != 2*time.Second || time.Duration(s.TTL) != 30*time.Second || strings.Join(s.List, "|") != "a|b" || s.Unset != 0 {
		t.Errorf("defaults: %+v", s)
	}
	s = sample{}
	if err := Parse(ctx, map[string]string{"SAMPLE_URL": "u", "SAMPLE_OTHER": "o", "SAMPLE_TTL": "1m"}, &s); err != nil || time.Duration(s.TTL) != time.Minute {
		t.Errorf("TTL 1m: %v, %v", time.Duration(s.TTL), err)
	}
	for env, want := range map[string]string{"SAMPLE_EVERY": "soon", "SAMPLE_TTL": "x"} {
		err := Parse(ctx, map[string]string{"SAMPLE_URL": "u", "SAMPLE_OTHER": "o", env: want}, &sample{})
		if err == nil || !strings.HasPrefix(err.Error(), env+": ") {
			t.Errorf("%s=%s: %v, want an error starting with the variable", env, want, err)
		}
	}
	if err := Parse(ctx, map[string]string{"SAMPLE_URL": "u", "SAMPLE_OTHER": "o", "SAMPLE_EVERY": "2h"}, &sample{}); err != errTooLong {
		t.Errorf("Validate not applied: %v", err)
	}
}

func TestSettings(t *testing.T) {
	got := Settings(&sample{})
	want := []Setting{
		{Name: "SAMPLE_URL", Field: "URL", Required: true, Doc: "where"},
		{Name: "SAMPLE_OTHER", Field: "Other", Required: true},
		{Name: "SAMPLE_EVERY", Field: "Every", Default: "2s", Doc: "how often"},
		{Name: "SAMPLE_TTL", Field: "TTL", Default: "30"},
		{Name: "SAMPLE_LIST", Field: "List", Default: "a,b"},
		{Name: "SAMPLE_UNSET", Field: "Unset"},
	}
	if len(got) != len(want) {
		t.Fatalf("got %+v", got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("setting %d: %+v, want %+v", i, got[i], want[i])
		}
	}
}

// Defaults gives the tag defaults, decoded as Parse decodes them, and
// leaves required and default-less settings zero (no error for the
// required ones, no Validate).
func TestDefaults(t *testing.T) {
	d := Defaults[sample]()
	if d.Every != 2*time.Second || d.TTL != Duration(30*time.Second) || len(d.List) != 2 || d.List[1] != "b" {
		t.Errorf("defaults: %+v", d)
	}
	if d.URL != "" || d.Other != "" || d.Unset != 0 {
		t.Errorf("settings without a default are set: %+v", d)
	}
	var parsed sample
	if err := Parse(context.Background(), map[string]string{"SAMPLE_URL": "u", "SAMPLE_OTHER": "o"}, &parsed); err != nil {
		t.Fatal(err)
	}
	if parsed.Every != d.Every || parsed.TTL != d.TTL {
		t.Errorf("Parse gives %+v, Defaults %+v", parsed, d)
	}
}
