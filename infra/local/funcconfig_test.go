package local

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/dronetrack/dronetrack/core/config"
	"github.com/dronetrack/dronetrack/infra/funcyaml"
)

// funcConfigEnv is a lookupEnv over a map.
func funcConfigEnv(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

// functionEnv layers func.yaml literals, up's shared values, the
// environment and --set, in that order.
func TestFunctionEnvPrecedence(t *testing.T) {
	shared := map[string]string{"STORE_URL": "bolt:///s.db", "LOG_LEVEL": "warn", "HISTORY_TTL": "168h"}
	environ := funcConfigEnv(map[string]string{
		"STATE_INTERVAL": "2s",        // process's setting, not computed by up: taken
		"STORE_URL":      "bolt:///x", // computed by up: the environment does not override it
		"SMTP_HOST":      "mail",      // not process's setting: not passed to process
	})
	var sets SetFlags
	for _, s := range []string{"process.HISTORY_TTL=24h", "alerts.RULES_TTL=1s"} {
		if err := sets.Set(s); err != nil {
			t.Fatal(err)
		}
	}
	env, err := functionEnv(FnProcess, shared, sets, environ)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"STORE_TIMEOUT":  "5s", // process's func.yaml literal
		"STORE_URL":      "bolt:///s.db",
		"LOG_LEVEL":      "warn",
		"STATE_INTERVAL": "2s",
		"HISTORY_TTL":    "24h", // --set over up's --history-ttl
	}
	for k, v := range want {
		if env[k] != v {
			t.Errorf("process %s = %q, want %q (env %v)", k, env[k], v, env)
		}
	}
	if _, ok := env["SMTP_HOST"]; ok {
		t.Errorf("process got alerts' SMTP_HOST: %v", env)
	}
	if _, ok := env["RULES_TTL"]; ok {
		t.Errorf("process got alerts' --set: %v", env)
	}
	// ingest's func.yaml sets KEY_CACHE_TTL; alerts takes SMTP_HOST from the environment.
	if env, _ := functionEnv(FnIngest, shared, nil, environ); env["KEY_CACHE_TTL"] != "30s" {
		t.Errorf("ingest KEY_CACHE_TTL = %q, want func.yaml's 30s", env["KEY_CACHE_TTL"])
	}
	if env, _ := functionEnv(FnAlerts, shared, sets, environ); env["SMTP_HOST"] != "mail" || env["RULES_TTL"] != "1s" {
		t.Errorf("alerts env %v, want SMTP_HOST from the environment and RULES_TTL from --set", env)
	}
}

func TestSetFlagRejectsUnknown(t *testing.T) {
	for _, bad := range []string{"process", "process.STATE_INTERVAL", "nosuch.X=1", "process.SMTP_HOST=x", ".X=1", "process.=1"} {
		var s SetFlags
		if err := s.Set(bad); err == nil {
			t.Errorf("--set %s accepted", bad)
		}
	}
}

// Every function's func.yaml names only settings its Config declares, so
// the cluster never sets a variable the function ignores.
func TestFuncYAMLNamesConfigSettings(t *testing.T) {
	for _, fs := range Registry {
		name := fs.Name
		names := config.Names(fs.Config)
		fy := mustFuncYAML(t, fs.FuncYAML)
		for _, e := range fy.Run.Envs {
			if !slices.Contains(names, e.Name) {
				t.Errorf("%s func.yaml sets %s, which %s's Config does not declare", name, e.Name, name)
			}
		}
	}
}

// docs/configuration.md lists every setting of every function's Config,
// in the function's section or under Shared, with the struct's default.
func TestConfigurationDocListsEverySetting(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("..", "..", "docs", "configuration.md"))
	if err != nil {
		t.Fatal(err)
	}
	sections := map[string]string{}
	var cur string
	for _, line := range strings.Split(string(raw), "\n") {
		if h, ok := strings.CutPrefix(line, "## "); ok {
			cur = strings.ToLower(strings.TrimSpace(h))
			continue
		}
		sections[cur] += line + "\n"
	}
	for _, fs := range Registry {
		name := fs.Name
		for _, s := range config.Settings(fs.Config) {
			row := docRow(sections[name], s.Name)
			if row == "" {
				row = docRow(sections["shared"], s.Name)
			}
			if row == "" {
				t.Errorf("docs/configuration.md: %s's %s is not listed (section %q or Shared)", name, s.Name, name)
				continue
			}
			if s.Default != "" && !strings.Contains(row, "`"+s.Default+"`") && !strings.Contains(row, "default `"+s.Default+"`") {
				t.Errorf("docs/configuration.md: %s's %s row does not give its default `%s`: %s", name, s.Name, s.Default, row)
			}
		}
	}
}

// docRow is the first line of text mentioning `name` (a table row or a
// sentence).
func docRow(text, name string) string {
	for _, line := range strings.Split(text, "\n") {
		if strings.Contains(line, "`"+name+"`") {
			return line
		}
	}
	return ""
}

func mustFuncYAML(t *testing.T, raw []byte) funcyaml.Function {
	t.Helper()
	f, err := funcyaml.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return f
}
