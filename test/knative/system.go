package knative

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/dronetrack/dronetrack/core/broker"
	"github.com/dronetrack/dronetrack/infra"
)

// Functions are the Knative Services Dronetrack deploys, one per function
// module under functions/.
var Functions = []string{"ingest", "process", "cache-refresh", "alerts", "serve-map"}

// RepoRoot finds the repository root (the directory holding go.work) from
// the working directory up.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.work")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("go.work not found above the working directory")
		}
		dir = parent
	}
}

// BuildAll host-builds every function (Build) and returns the binaries by
// function name.
func BuildAll(ctx context.Context, root string) (map[string]string, error) {
	bins := map[string]string{}
	for _, name := range Functions {
		bin, err := Build(ctx, filepath.Join(root, "functions", name))
		if err != nil {
			return nil, err
		}
		bins[name] = bin
	}
	return bins, nil
}

// Options configure Up.
type Options struct {
	// Bins are the host-built function binaries by name (BuildAll).
	Bins map[string]string
	// Replicas is how many replicas of each function start with the
	// system; a function at 0 scales from zero on its first request.
	Replicas map[string]int
	// Env is every function's environment (STORE_URL, CACHE_URL,
	// DRONE_KEY_PEPPER, FIRESTORE_EMULATOR_HOST...); K_SINK is added.
	Env []string
	// FunctionEnv adds settings for one function (KEY_CACHE_TTL...).
	FunctionEnv map[string][]string
	// DataDir holds the broker's JetStream store.
	DataDir string
	// Logger receives the broker's logs; discarded when nil.
	Logger *slog.Logger
}

// System is Dronetrack on one machine as Knative runs it: the broker (the
// core/broker library in this process, its ingress on a loopback port) and
// a Service of replicas per function, each replica its own process.
type System struct {
	Broker   *broker.Broker
	Services map[string]*Service

	ingress net.Listener
	srv     *http.Server
}

// Up starts the broker with the Broker and Triggers of infra/base and a
// Service per function with its initial replicas, each ready.
func Up(ctx context.Context, o Options) (sys *System, err error) {
	raw, err := infra.BrokerManifests()
	if err != nil {
		return nil, err
	}
	m, err := broker.ParseManifests(raw)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	sys = &System{Services: map[string]*Service{}, ingress: ln}
	defer func() {
		if err != nil {
			sys.Close(context.Background(), nil)
		}
	}()
	sink := "K_SINK=http://" + ln.Addr().String()
	for _, name := range Functions {
		bin := o.Bins[name]
		if bin == "" {
			return sys, fmt.Errorf("no binary for %s", name)
		}
		env := append(append(append([]string{}, o.Env...), sink), o.FunctionEnv[name]...)
		s, err := NewService(name, bin, env)
		if err != nil {
			return sys, err
		}
		s.ScaleFromZero = o.Replicas[name] == 0
		sys.Services[name] = s
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	cfg := broker.Config{
		DataDir:  o.DataDir,
		Triggers: m.Triggers,
		Logger:   log,
		// As `dronetrack up`: deliveries held by a slow or locked drone
		// must not cap every other drone's (core/broker's default is 64).
		MaxInFlight: 1024,
		Resolve: func(ref broker.Reference) (string, error) {
			if s, ok := sys.Services[ref.Name]; ok && ref.Kind == "Service" {
				return s.URL(), nil
			}
			if ref.Name == "dead-letter" {
				return "", broker.ErrNoSink // dead letters stay in the broker's stream
			}
			return "", fmt.Errorf("no Service %s", ref)
		},
	}
	for _, bm := range m.Brokers {
		if bm.Metadata.Name == "default" {
			cfg.Delivery = bm.Spec.Delivery
		}
	}
	if sys.Broker, err = broker.Open(ctx, cfg); err != nil {
		return sys, err
	}
	sys.srv = &http.Server{Handler: sys.Broker.Ingress(), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = sys.srv.Serve(ln) }()
	for _, name := range Functions {
		for range o.Replicas[name] {
			if _, err := sys.Services[name].Start(ctx); err != nil {
				return sys, err
			}
		}
	}
	return sys, nil
}

// Close stops the broker first (its ingress refuses new events, deliveries
// in flight finish while their functions still run), then every replica.
// It logs how long each took to log when log is not nil.
func (s *System) Close(ctx context.Context, log func(format string, args ...any)) {
	start := time.Now()
	if s.Broker != nil {
		_ = s.Broker.Shutdown(ctx)
	}
	if s.srv != nil {
		_ = s.srv.Close()
	} else {
		_ = s.ingress.Close()
	}
	if log != nil {
		log("broker stopped in %v", time.Since(start).Round(time.Millisecond))
	}
	for _, name := range Functions {
		start := time.Now()
		s.Services[name].Close()
		if log != nil {
			log("%s stopped in %v", name, time.Since(start).Round(time.Millisecond))
		}
	}
}

// Output is every replica's output, for failure messages.
func (s *System) Output() string {
	var b strings.Builder
	for _, name := range Functions {
		b.WriteString(s.Services[name].Output())
	}
	return b.String()
}
