package local

import (
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"

	"github.com/dronetrack/dronetrack/core/config"
	"github.com/dronetrack/dronetrack/infra/funcyaml"
)

// functionEnv builds the settings `up` starts function name with, lowest
// precedence first:
//
//  1. the literal values of its func.yaml's run.envs (STORE_TIMEOUT: 5s),
//     as the cluster gives them; its '{{ configMap/secret/env }}'
//     references are the values up computes in step 2;
//  2. shared: the values up computes for every function (STORE_URL,
//     K_SINK, CACHE_URL, DRONE_KEY_PEPPER, LOG_LEVEL, --history-ttl, ...);
//  3. environment variables of up's process named like a setting of this
//     function's Config that up does not compute itself (STATE_INTERVAL=2s
//     dronetrack up; SMTP_HOST for alerts);
//  4. --set FUNCTION.SETTING=VALUE, for one function, over everything.
//
// Every function gets the shared keys, as before; a function ignores the
// settings its Config does not declare.
func functionEnv(name string, shared map[string]string, sets SetFlags, lookupEnv func(string) (string, bool)) (map[string]string, error) {
	fs, ok := Lookup(name)
	if !ok {
		return nil, fmt.Errorf("no function %q", name)
	}
	fy, err := funcyaml.Parse(fs.FuncYAML)
	if err != nil {
		return nil, fmt.Errorf("%s func.yaml: %w", name, err)
	}
	env := map[string]string{}
	for _, e := range fy.Run.Envs {
		if _, ref := funcyaml.ParseRef(e.Value); !ref {
			env[e.Name] = e.Value
		}
	}
	maps.Copy(env, shared)
	for _, k := range config.Names(fs.Config) {
		if _, computed := shared[k]; computed {
			continue
		}
		if v, ok := lookupEnv(k); ok && v != "" {
			env[k] = v
		}
	}
	for _, s := range sets {
		if s.function == name {
			env[s.key] = s.value
		}
	}
	return env, nil
}

// setFlag is one --set FUNCTION.SETTING=VALUE.
type setFlag struct{ function, key, value string }

// SetFlags collects --set; Set checks the function and the setting exist,
// so a typo fails `up` instead of being ignored.
type SetFlags []setFlag

func (s *SetFlags) String() string {
	var out []string
	for _, f := range *s {
		out = append(out, f.function+"."+f.key+"="+f.value)
	}
	return strings.Join(out, " ")
}

func (s *SetFlags) Set(v string) error {
	target, value, ok := strings.Cut(v, "=")
	fn, key, ok2 := strings.Cut(target, ".")
	if !ok || !ok2 || fn == "" || key == "" {
		return fmt.Errorf("%q: want FUNCTION.SETTING=VALUE, e.g. process.STATE_INTERVAL=2s", v)
	}
	fs, found := Lookup(fn)
	if !found {
		return fmt.Errorf("%q: no function %q (%s)", v, fn, strings.Join(slices.Sorted(slices.Values(Names())), ", "))
	}
	if !slices.Contains(config.Names(fs.Config), key) {
		return fmt.Errorf("%q: %s has no setting %s (docs/configuration.md)", v, fn, key)
	}
	*s = append(*s, setFlag{fn, key, value})
	return nil
}

// upEnv is how up reads its process environment for functionEnv.
var upEnv = os.LookupEnv
