// Package funcyaml reads knative func's func.yaml strictly, so a misspelt or
// misplaced field fails a test instead of being ignored by `func build` or
// `func deploy`. Function mirrors the fields of func's schema
// (schema/func_yaml-schema.json in knative/func) that Dronetrack uses; a
// field outside this subset is an error too, which keeps every func.yaml
// within what the infra tests compare against the manifests.
package funcyaml

import (
	"errors"
	"fmt"
	"os"
	"regexp"
	"strings"
	"time"

	kjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"
)

// Function is a func.yaml.
type Function struct {
	SpecVersion string    `json:"specVersion"`
	Name        string    `json:"name"`
	Runtime     string    `json:"runtime"`
	Registry    string    `json:"registry,omitempty"`
	Image       string    `json:"image,omitempty"`
	Namespace   string    `json:"namespace,omitempty"`
	Created     time.Time `json:"created"`
	Invoke      string    `json:"invoke,omitempty"`
	Build       Build     `json:"build"`
	Run         Run       `json:"run"`
	Deploy      Deploy    `json:"deploy"`
}

// Build is func's BuildSpec.
type Build struct {
	Builder   string `json:"builder,omitempty"`
	BuildEnvs []Env  `json:"buildEnvs,omitempty"`
}

// Run is func's RunSpec: the environment the function gets.
type Run struct {
	Envs []Env `json:"envs,omitempty"`
}

// Env is one environment entry. Value may be a literal or a func template:
// '{{ configMap:NAME:KEY }}', '{{ secret:NAME:KEY }}', '{{ env:VAR }}'.
type Env struct {
	Name  string `json:"name,omitempty"`
	Value string `json:"value"`
}

// Deploy is func's DeploySpec.
type Deploy struct {
	Namespace          string            `json:"namespace,omitempty"`
	Annotations        map[string]string `json:"annotations,omitempty"`
	Options            Options           `json:"options,omitempty"`
	Labels             []Label           `json:"labels,omitempty"`
	HealthEndpoints    HealthEndpoints   `json:"healthEndpoints,omitempty"`
	ServiceAccountName string            `json:"serviceAccountName,omitempty"`
}

// Options are the Knative Service settings func derives annotations and
// resources from.
type Options struct {
	Scale     *Scale     `json:"scale,omitempty"`
	Resources *Resources `json:"resources,omitempty"`
}

// Scale becomes the autoscaling.knative.dev/{min-scale,max-scale,metric,
// target,target-utilization-percentage} annotations.
type Scale struct {
	Min         *int64   `json:"min,omitempty"`
	Max         *int64   `json:"max,omitempty"`
	Metric      string   `json:"metric,omitempty"`
	Target      *float64 `json:"target,omitempty"`
	Utilization *float64 `json:"utilization,omitempty"`
}

// Resources become the container's requests and limits.
type Resources struct {
	Requests *ResourceList `json:"requests,omitempty"`
	Limits   *ResourceList `json:"limits,omitempty"`
}

// ResourceList holds Kubernetes quantities; Concurrency (limits only)
// becomes containerConcurrency.
type ResourceList struct {
	CPU         string `json:"cpu,omitempty"`
	Memory      string `json:"memory,omitempty"`
	Concurrency *int64 `json:"concurrency,omitempty"`
}

// Label is one deploy label.
type Label struct {
	Key   string `json:"key"`
	Value string `json:"value,omitempty"`
}

// HealthEndpoints are the paths func configures as probes.
type HealthEndpoints struct {
	Liveness  string `json:"liveness,omitempty"`
	Readiness string `json:"readiness,omitempty"`
}

// Load reads and strictly decodes a func.yaml, then checks it against the
// constraints of func's schema.
func Load(path string) (Function, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return Function{}, fmt.Errorf("func.yaml: %w", err)
	}
	f, err := Parse(raw)
	if err != nil {
		return Function{}, fmt.Errorf("%s: %w", path, err)
	}
	return f, nil
}

// Parse is Load for bytes in memory.
func Parse(raw []byte) (Function, error) {
	js, err := yaml.YAMLToJSONStrict(raw)
	if err != nil {
		return Function{}, err
	}
	var f Function
	strict, err := kjson.UnmarshalStrict(js, &f)
	if err != nil {
		return Function{}, err
	}
	if len(strict) > 0 {
		return Function{}, errors.Join(strict...)
	}
	return f, f.Validate()
}

var (
	namePattern  = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)
	envPattern   = regexp.MustCompile(`^[-._a-zA-Z][-._a-zA-Z0-9]*$`)
	labelPattern = regexp.MustCompile(`^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$`)
	templateRef  = regexp.MustCompile(`^\{\{\s*(configMap|secret|env):([^:}\s]+)(?::([^}\s]+))?\s*\}\}$`)
)

// Validate checks the constraints func's schema states for these fields.
func (f Function) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if f.SpecVersion == "" {
		bad("specVersion is required")
	}
	if f.Created.IsZero() {
		bad("created is required")
	}
	if !namePattern.MatchString(f.Name) {
		bad("name %q must match %s", f.Name, namePattern)
	}
	switch f.Invoke {
	case "", "http", "cloudevent":
	default:
		bad("invoke %q: want http or cloudevent", f.Invoke)
	}
	switch f.Build.Builder {
	case "", "host", "pack", "s2i":
	default:
		bad("build.builder %q: want host, pack or s2i", f.Build.Builder)
	}
	for i, e := range f.Run.Envs {
		if e.Name != "" && !envPattern.MatchString(e.Name) {
			bad("run.envs[%d].name %q must match %s", i, e.Name, envPattern)
		}
		if e.Name == "" {
			if r, ok := ParseRef(e.Value); !ok || r.Key != "" || r.Source == "env" {
				bad("run.envs[%d]: an entry without name must import a whole configMap or secret ('{{ configMap:NAME }}')", i)
			}
		}
		if strings.Contains(e.Value, "{{") {
			if _, ok := ParseRef(e.Value); !ok {
				bad("run.envs[%d].value %q is not a func template ({{ configMap:NAME:KEY }}, {{ secret:NAME:KEY }}, {{ env:VAR }})", i, e.Value)
			}
		}
	}
	for i, l := range f.Deploy.Labels {
		if !labelPattern.MatchString(l.Key) {
			bad("deploy.labels[%d].key %q is not a label key", i, l.Key)
		}
	}
	if s := f.Deploy.Options.Scale; s != nil {
		if s.Min != nil && *s.Min < 0 || s.Max != nil && *s.Max < 0 {
			bad("deploy.options.scale: min and max must be >= 0")
		}
		if s.Min != nil && s.Max != nil && *s.Max > 0 && *s.Min > *s.Max {
			bad("deploy.options.scale: min %d > max %d", *s.Min, *s.Max)
		}
		switch s.Metric {
		case "", "concurrency", "rps":
		default:
			bad("deploy.options.scale.metric %q: want concurrency or rps", s.Metric)
		}
	}
	return errors.Join(errs...)
}

// Ref is a parsed func env template.
type Ref struct {
	Source string // "configMap", "secret" or "env"
	Name   string // ConfigMap or Secret name, or the local variable for env
	Key    string // "" imports every key of the ConfigMap or Secret
}

// ParseRef parses '{{ configMap:NAME:KEY }}', '{{ secret:NAME:KEY }}',
// '{{ configMap:NAME }}' or '{{ env:VAR }}'; ok is false for a literal.
func ParseRef(value string) (Ref, bool) {
	m := templateRef.FindStringSubmatch(strings.TrimSpace(value))
	if m == nil {
		return Ref{}, false
	}
	return Ref{Source: m[1], Name: m[2], Key: m[3]}, true
}
