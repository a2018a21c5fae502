// Package config is the one place where a function's settings are parsed.
// Each function declares one typed struct whose fields carry `env` tags
// (name, default, required: github.com/sethvargo/go-envconfig's syntax) and
// a `doc` tag; Parse fills it from the map func-go hands to Start (the
// environment under Knative, the map `dronetrack up` builds locally) and
// validates it, and Settings lists the fields so `up` and
// docs/configuration.md are derived from the same struct instead of copies.
package config

import (
	"context"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/sethvargo/go-envconfig"

	"github.com/dronetrack/dronetrack/core/ratelimit"
)

// Validator is implemented by config structs with rules across fields or
// ranges the type alone does not express; Parse calls it after decoding.
type Validator interface {
	Validate() error
}

// Parse decodes env into dst, a pointer to a config struct, and validates
// it. An empty value counts as unset (Knative renders an empty ConfigMap key
// as ""), so the default applies. Errors name the environment variable;
// every missing required one is named at once ("missing config A, B").
func Parse(ctx context.Context, env map[string]string, dst any) error {
	var missing []string
	for _, s := range Settings(dst) {
		if s.Required && env[s.Name] == "" {
			missing = append(missing, s.Name)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("missing config %s", strings.Join(missing, ", "))
	}
	keep := map[string]bool{}
	for _, s := range Settings(dst) {
		keep[s.Name] = s.KeepEmpty
	}
	err := envconfig.ProcessWith(ctx, &envconfig.Config{Target: dst, Lookuper: lookuper{env, keep}})
	if err != nil {
		return named(dst, err)
	}
	if v, ok := dst.(Validator); ok {
		return v.Validate()
	}
	return nil
}

// Defaults returns a T (a config struct) whose settings with a default in
// their tag hold it and whose others are zero: what Parse gives when nothing
// is set, minus the required settings and Validate. A handler that takes a
// zero option to mean "the default" fills it from here, so each default has
// one home, the struct tag, whether the function was started by Start or
// built directly by a test. It panics if a tag's default does not decode,
// which Parse would report on every start.
func Defaults[T any]() T {
	var dst T
	v := reflect.ValueOf(&dst).Elem()
	var fields []reflect.StructField
	var index []int
	for _, s := range Settings(&dst) {
		if s.Default == "" {
			continue
		}
		f, _ := v.Type().FieldByName(s.Field)
		index = append(index, f.Index[0])
		// The default alone, without the field's other options.
		f.Tag = reflect.StructTag(fmt.Sprintf("env:%q", s.Name+",default="+s.Default))
		f.Index, f.Offset = nil, 0
		fields = append(fields, f)
	}
	if len(fields) == 0 {
		return dst
	}
	tmp := reflect.New(reflect.StructOf(fields))
	err := envconfig.ProcessWith(context.Background(), &envconfig.Config{Target: tmp.Interface(), Lookuper: lookuper{}})
	if err != nil {
		panic(fmt.Sprintf("config: defaults of %T: %v", dst, named(&dst, err)))
	}
	for j, i := range index {
		v.Field(i).Set(tmp.Elem().Field(j))
	}
	return dst
}

// lookuper looks keys up in a map, treating "" as missing except for the
// settings tagged `config:"empty"`, where "" is a value (TILES_URL="": no
// map tiles).
type lookuper struct {
	m    map[string]string
	keep map[string]bool
}

func (l lookuper) Lookup(key string) (string, bool) {
	v, ok := l.m[key]
	if l.keep[key] {
		return v, ok
	}
	return v, v != ""
}

// named rewrites envconfig's "Field: reason" into "ENV_NAME: reason" so an
// operator sees the variable to fix, not a Go field name.
func named(dst any, err error) error {
	field, reason, ok := strings.Cut(err.Error(), ": ")
	if !ok {
		return err
	}
	for _, s := range Settings(dst) {
		if s.Field == field {
			return fmt.Errorf("%s: %s", s.Name, reason)
		}
	}
	return err
}

// Setting is one field of a config struct, as documented.
type Setting struct {
	Name     string // environment variable
	Field    string // Go field name
	Default  string // "" when none
	Required bool
	Doc      string // the field's `doc` tag
	// KeepEmpty: "" is a value, not unset (tag `config:"empty"`).
	KeepEmpty bool
}

// Settings lists the settings of a config struct (or a pointer to one) in
// field order.
func Settings(cfg any) []Setting {
	t := reflect.TypeOf(cfg)
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	var out []Setting
	for i := range t.NumField() {
		f := t.Field(i)
		tag, ok := f.Tag.Lookup("env")
		if !ok {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		s := Setting{Name: name, Field: f.Name, Doc: f.Tag.Get("doc"), KeepEmpty: f.Tag.Get("config") == "empty"}
		for opts != "" {
			var o string
			o, opts, _ = strings.Cut(opts, ",")
			switch {
			case o == "required":
				s.Required = true
			case strings.HasPrefix(o, "default="):
				// a default is the last option: it may hold commas
				s.Default = strings.TrimPrefix(o, "default=")
				if opts != "" {
					s.Default += "," + opts
				}
				opts = ""
			}
		}
		out = append(out, s)
	}
	return out
}

// Duration is a time.Duration setting that also takes plain seconds ("30"
// as well as "30s"), for settings documented that way.
type Duration time.Duration

// EnvDecode parses a Go duration or a whole number of seconds.
func (d *Duration) EnvDecode(_ context.Context, s string) error {
	if s == "" { // envconfig hands a decoder unset values too
		return nil
	}
	if n, err := strconv.Atoi(s); err == nil {
		*d = Duration(time.Duration(n) * time.Second)
		return nil
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// RateLimit is a rate-limit setting, "RATE/s:BURST" or "off", checked when
// parsed. (A string, not ratelimit.Limit: envconfig names the variable in
// errors of non-struct decoders only.)
type RateLimit string

// EnvDecode checks the limit with ratelimit.ParseLimit.
func (l *RateLimit) EnvDecode(_ context.Context, s string) error {
	if s != "" { // envconfig hands a decoder unset values too
		if _, err := ratelimit.ParseLimit(s); err != nil {
			return err
		}
	}
	*l = RateLimit(s)
	return nil
}

// Limit is the parsed value; unset is the zero Limit.
func (l RateLimit) Limit() ratelimit.Limit {
	if l == "" {
		return ratelimit.Limit{}
	}
	v, _ := ratelimit.ParseLimit(string(l)) // checked by EnvDecode
	return v
}

// Names returns the environment variable names of a config struct.
func Names(cfg any) []string {
	var out []string
	for _, s := range Settings(cfg) {
		out = append(out, s.Name)
	}
	return out
}
