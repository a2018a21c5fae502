package local

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/dronetrack/dronetrack/core/sim"
	"github.com/dronetrack/dronetrack/core/store"
	ingestfn "github.com/dronetrack/dronetrack/functions/ingest"
)

// DefaultCacheURL is the in-process cache every function of one `up` shares.
const DefaultCacheURL = "local://dronetrack"

// Demo data seeded on the first run.
const (
	DemoTenantID   = "demo"
	demoTenantName = "Demo fleet"
	demoDrones     = 10 // seeded without --simulate; --simulate N seeds N
)

// Options configure one system; `dronetrack up` (cmd/dronetrack/cli) fills them from flags, tests
// directly.
type Options struct {
	DataDir  string
	HTTPAddr string
	// TLS makes the public listener speak HTTPS (tls.go); zero for plain
	// HTTP.
	TLS TLSOptions
	// StoreURL is the store every function and the seeding use, as
	// core/store/storeurl reads it; "" for the data dir's bolt file.
	StoreURL string
	// CacheURL is the fleet cache, as core/cache reads it; "" for the
	// in-process local://dronetrack.
	CacheURL string
	LogLevel slog.Level
	Log      io.Writer // structured logs (text)
	Out      io.Writer // URL, demo login, simulator figures
	Simulate int       // drones the in-process simulator flies; 0 for none
	// DemoDrones is how many demo drones to seed (at least demoDrones, and
	// at least Simulate).
	DemoDrones int
	Sim        SimSettings // the simulator's settings when Simulate > 0
	// PprofAddr, when set, serves net/http/pprof there for profiling.
	PprofAddr string
	// StopTimeout bounds the graceful shutdown before it gives up.
	StopTimeout time.Duration
	// LinkCheckEvery is the lost-link scheduler's period (default 30 s, as
	// the cluster's PingSource).
	LinkCheckEvery time.Duration
	// HistoryTTL is how long history is kept (process's HISTORY_TTL); 0
	// for process's default. On one machine it sizes the store file: about
	// drones x reports/s x HistoryTTL x 330 bytes.
	HistoryTTL time.Duration
	// RIDTestAuthority is --rid-test-authority: auto (on for a loopback
	// listener), on or off (rid.go).
	RIDTestAuthority string
	// Set is --set FUNCTION.SETTING=VALUE (funcconfig.go).
	Set SetFlags
}

// System is Dronetrack on one machine: the local broker, every function on
// its own loopback server, the public listener and the admin endpoint.
type System struct {
	opts   Options
	log    *slog.Logger
	dir    string
	store  store.Store // shared handle (storeurl) used for seeding and admin
	broker Broker
	fns    []*Hosted // in Registry order
	byName map[string]*Hosted
	public *http.Server
	ln     net.Listener
	admin  func(context.Context) error
	sched  *scheduler // lost-link checks (the PingSource's stand-in)
	// storeURL and cacheURL are what every function got as STORE_URL and
	// CACHE_URL.
	storeURL, cacheURL string
	// DemoLogin is the demo tenant owner's email and password.
	demoLogin DemoLogin

	// The HTTPS side of the public listener (tls.go).
	tls          *publicTLS                  // nil for plain HTTP
	redirect     func(context.Context) error // the --redirect-http listener's stop
	redirectAddr string                      // where it listens

	simCancel context.CancelFunc
	simDone   chan struct{}
	simSum    sim.Summary

	shutdownOnce sync.Once
	shutdownErr  error
}

// Start opens everything and returns once the public listener serves;
// Shutdown undoes it in reverse. Failures half-way close what was opened.
func Start(ctx context.Context, o Options) (_ *System, err error) {
	if o.Log == nil {
		o.Log = io.Discard
	}
	if o.Out == nil {
		o.Out = io.Discard
	}
	if o.StopTimeout <= 0 {
		o.StopTimeout = 60 * time.Second
	}
	dir, err := absDataDir(o.DataDir)
	if err != nil {
		return nil, err
	}
	log := slog.New(slog.NewTextHandler(o.Log, &slog.HandlerOptions{Level: o.LogLevel}))
	// Refuse a newer data dir, upgrade an older one (format.go).
	if from, err := PrepareDataDir(dir); err != nil {
		return nil, err
	} else if from > 0 && from < DataDirFormat {
		fmt.Fprintf(o.Out, "data dir %s upgraded from format %d to %d\n", dir, from, DataDirFormat)
	}
	tuneGC()
	s := &System{opts: o, log: log, dir: dir, byName: map[string]*Hosted{}}
	defer func() {
		if err != nil {
			cctx, cancel := context.WithTimeout(context.Background(), o.StopTimeout)
			defer cancel()
			_ = s.closeAll(cctx)
		}
	}()

	s.storeURL, s.cacheURL = o.StoreURL, o.CacheURL
	if s.storeURL == "" {
		s.storeURL = StoreURL(dir)
	}
	if s.cacheURL == "" {
		s.cacheURL = DefaultCacheURL
	}
	// The demo keys, demo login and pepper in the data dir belong to the
	// drones and users of one store: refuse to pair them with another.
	record, err := checkStore(dir, s.storeURL)
	if err != nil {
		return nil, err
	}
	pepper, err := LoadPepper(dir)
	if err != nil {
		return nil, err
	}
	if s.store, err = OpenStore(ctx, s.storeURL); err != nil {
		return nil, err
	}
	if fa, ok := s.store.(interface{ FaultAround() error }); ok {
		if err := fa.FaultAround(); err != nil {
			log.Warn("store: the kernel's fault-around stays on for the store file, so more of it stays resident between trims (docs/operations.md, Memory of up)", "err", err)
		}
	}
	if record { // only once it opened: an invalid URL does not bind the data dir
		if err := recordStore(dir, s.storeURL); err != nil {
			return nil, err
		}
	}

	// Bind every function first: the broker needs their URLs to resolve the
	// Triggers' subscribers, and they need the broker's ingress as K_SINK.
	for _, f := range Registry {
		h, err := Listen(f.Name, f.New(), log)
		if err != nil {
			return nil, err
		}
		s.fns = append(s.fns, h)
		s.byName[f.Name] = h
	}
	subscribers := map[string]string{}
	for name, h := range s.byName {
		subscribers[name] = h.URL()
	}
	if s.broker, err = openBroker(ctx, filepath.Join(dir, brokerDir), subscribers, log); err != nil {
		return nil, err
	}

	cfg := map[string]string{
		"STORE_URL":        s.storeURL,
		"K_SINK":           s.broker.IngressURL(),
		"CACHE_URL":        s.cacheURL,
		"DRONE_KEY_PEPPER": pepper,
		"LOG_LEVEL":        strings.ToLower(o.LogLevel.String()),
	}
	if o.HistoryTTL > 0 {
		cfg["HISTORY_TTL"] = o.HistoryTTL.String()
	}
	if o.TLS.enabled() {
		cfg["COOKIE_SECURE"] = "always" // __Host- cookies, as on the cluster
	}
	for k, v := range ExtraFunctionConfig(dir) {
		cfg[k] = v
	}
	ridCfg, err := RIDAuthorityConfig(o.RIDTestAuthority, dir, o.HTTPAddr)
	if err != nil {
		return nil, err
	}
	for k, v := range ridCfg {
		cfg[k] = v
	}
	// Start in Registry order: consumers before the producer.
	for _, f := range Registry {
		name, h := f.Name, s.byName[f.Name]
		env, err := functionEnv(name, cfg, o.Set, upEnv)
		if err != nil {
			return nil, err
		}
		if err := h.fn.Start(ctx, env); err != nil {
			return nil, fmt.Errorf("start %s: %w", name, err)
		}
		rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		err = h.waitReady(rctx)
		cancel()
		if err != nil {
			return nil, err
		}
		log.Debug("function started", "function", name, "url", h.URL())
	}

	if o.LinkCheckEvery <= 0 {
		o.LinkCheckEvery = DefaultLinkCheckEvery
	}
	if s.sched, err = startScheduler(s.broker.IngressURL(), o.LinkCheckEvery, log); err != nil {
		return nil, err
	}

	adm := &StoreAdmin{store: s.store, pepper: pepper, broker: s.broker}
	n := max(demoDrones, o.Simulate, o.DemoDrones)
	demo, err := EnsureDemoDrones(ctx, adm, dir, n)
	if err != nil {
		return nil, fmt.Errorf("seed demo data: %w", err)
	}
	if s.demoLogin, err = ensureDemoLogin(ctx, s.store, dir); err != nil {
		return nil, err
	}
	// The events of a restored backup that were not yet delivered (backup.go).
	if r, err := requeueRestored(ctx, s.broker, dir); err != nil {
		return nil, err
	} else if r.pending+r.dead > 0 {
		fmt.Fprintf(o.Out, "  requeued %d events and %d dead letters of the restored backup\n", r.pending, r.dead)
	}
	if s.admin, err = serveAdmin(adm, dir, s.backupRoutes); err != nil {
		return nil, err
	}

	if err := s.servePublic(); err != nil { // tls.go: plain HTTP or HTTPS
		return nil, err
	}

	fmt.Fprintf(o.Out, "Dronetrack is up: open %s\n", s.URL())
	fmt.Fprintf(o.Out, "  data dir %s (demo tenant %q, %d demo drones; keys in %s)\n", dir, DemoTenantID, len(demo), filepath.Join(dir, DemoKeysFile))
	fmt.Fprintf(o.Out, "  store %s, cache %s\n", RedactURL(s.storeURL), RedactURL(s.cacheURL))
	fmt.Fprintf(o.Out, "  demo login: %s  (log in at %s/account/login.html; kept in %s)\n",
		s.demoLogin, s.URL(), filepath.Join(dir, DemoLoginFile))
	fmt.Fprintf(o.Out, "  ingest: POST %s%s with Authorization: Bearer <drone key>\n", s.URL(), sim.IngestPath)
	fmt.Fprintf(o.Out, "          also CloudEvents at POST %s%s, OsmAnd/Traccar Client at %s%s?id=<drone key>\n",
		s.URL(), ingestfn.PathEvents, s.URL(), ingestfn.PathOsmAnd)
	if s.redirectAddr != "" {
		fmt.Fprintf(o.Out, "  plain HTTP on %s redirects to HTTPS\n", s.redirectAddr)
	}

	if ridCfg != nil {
		fmt.Fprintf(o.Out, "  Remote ID SP: %s/rid/v2/uss/flights?view=lat1,lng1,lat2,lng2 with a token from `dronetrack rid token --scope rid.display_provider --data %s`\n",
			s.URL(), dir)
	}

	if o.PprofAddr != "" {
		if err := servePprof(o.PprofAddr, log); err != nil {
			return nil, err
		}
		fmt.Fprintf(o.Out, "  pprof: http://%s/debug/pprof/\n", o.PprofAddr)
	}

	if o.Simulate > 0 {
		s.StartSim(ctx, demo[:o.Simulate])
	}
	return s, nil
}

// Handler is the public listener's handler: it sends the ingest API to
// ingest and everything else to serve-map.
// The public listener plays Knative's ingress gateway; it calls the
// functions' handlers directly instead of proxying over loopback, which
// would add a hop per report for nothing (the broker still talks to every
// function over HTTP, exactly as on Knative).
func (s *System) Handler() http.Handler {
	ingest, serveMap := s.byName[FnIngest].fn, s.byName[FnServeMap].fn
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == sim.IngestPath || strings.HasPrefix(r.URL.Path, sim.IngestPath+"/") ||
			r.URL.Path == ingestfn.PathOsmAnd || r.URL.Path == ingestfn.PathEvents {
			ingest.Handle(w, r)
			return
		}
		serveMap.Handle(w, r)
	})
}

// StartSim flies the simulator against the public listener with the given
// demo drones until shutdown (--simulate).
func (s *System) StartSim(ctx context.Context, demo []DemoKey) {
	keys := make([]string, len(demo))
	for i, d := range demo {
		keys[i] = d.Key
	}
	sf := s.opts.Sim
	if sf.Duration <= 0 && sf.Count <= 0 {
		sf.Duration = 100 * 365 * 24 * time.Hour // until shutdown
	}
	cfg, err := sf.Config(s.URL(), keys, s.opts.Out)
	if err != nil {
		s.log.Error("simulator not started", "err", err)
		return
	}
	if s.tls != nil {
		cfg.Client = s.simClient() // the certificate names the public host, not loopback
	}
	cfg.LiveEvery = 10 * time.Second // a terminal running up is for reading URLs too
	simCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s.simCancel, s.simDone = cancel, make(chan struct{})
	fmt.Fprintf(s.opts.Out, "  simulating %d drones at %g reports/s each\n", len(keys), cfg.Rate)
	go func() {
		defer close(s.simDone)
		sum, err := sim.Run(simCtx, cfg)
		if err != nil {
			s.log.Error("simulator failed", "err", err)
			return
		}
		s.simSum = sum
		fmt.Fprint(s.opts.Out, "simulator summary:\n"+sum.String())
	}()
}

// Shutdown stops the system gracefully: the simulator, the public listener
// (no new reports), ingest, then the broker drains deliveries while the
// consumers still run, then every function stops (flushing its buffers) and
// the store closes. It is bounded by StopTimeout.
func (s *System) Shutdown() error {
	s.shutdownOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), s.opts.StopTimeout)
		defer cancel()
		s.shutdownErr = s.closeAll(ctx)
	})
	return s.shutdownErr
}

func (s *System) closeAll(ctx context.Context) error {
	var errs []error
	step := func(what string, err error) {
		if err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("shutdown", "step", what, "err", err)
			errs = append(errs, fmt.Errorf("%s: %w", what, err))
		}
	}
	if s.simCancel != nil {
		s.simCancel()
		<-s.simDone
	}
	if s.public != nil {
		step("public listener", s.public.Shutdown(ctx))
	}
	if s.redirect != nil {
		step("redirect listener", s.redirect(ctx))
	}
	if s.admin != nil {
		step("admin endpoint", s.admin(ctx))
	}
	if h := s.byName[FnIngest]; h != nil {
		step("ingest", h.Shutdown(ctx))
	}
	s.sched.stop()
	if s.broker != nil {
		step("broker", s.broker.Shutdown(ctx))
	}
	for _, f := range Registry {
		if h := s.byName[f.Name]; h != nil && f.Name != FnIngest {
			step(f.Name, h.Shutdown(ctx))
		}
	}
	if s.store != nil {
		step("store", s.store.Close())
	}
	if len(errs) == 0 {
		fmt.Fprintln(s.opts.Out, "dronetrack stopped cleanly")
	}
	return errors.Join(errs...)
}

// EnsureDemoDrones makes sure the demo tenant exists with at least n demo
// drones whose keys are in DIR/demo-keys.json, and returns them.
func EnsureDemoDrones(ctx context.Context, adm Admin, dir string, n int) ([]DemoKey, error) {
	path := filepath.Join(dir, DemoKeysFile)
	dk, err := ReadDemoKeys(path)
	if err != nil {
		return nil, err
	}
	if _, err := adm.CreateTenant(ctx, DemoTenantID, demoTenantName); err != nil && !isAlreadyExists(err) {
		return nil, err
	}
	had := len(dk)
	var addErr error
	for len(dk) < n {
		d, err := adm.AddDrone(ctx, DemoTenantID, fmt.Sprintf("demo-%03d", len(dk)+1))
		if err != nil {
			addErr = err
			break
		}
		dk = append(dk, DemoKey(d))
	}
	// Keep every key made, even when a later one failed: a key not written
	// now is lost for good.
	if len(dk) > had {
		if err := writeDemoKeys(path, dk); err != nil {
			return nil, errors.Join(addErr, err)
		}
	}
	if addErr != nil {
		return nil, addErr
	}
	return dk, nil
}

// RedactURL hides a password in a URL (redis://:secret@host) before it is
// printed.
func RedactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}

func isAlreadyExists(err error) bool {
	return errors.Is(err, store.ErrAlreadyExists) || strings.Contains(err.Error(), "already exists")
}

// servePprof exposes the profiler for performance work; it lives until the
// process exits.
func servePprof(addr string, log *slog.Logger) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("pprof listener: %w", err)
	}
	// Block and mutex profiles are off unless asked for (profiling only:
	// sampling every blocking event costs CPU on the hot path).
	if v, err := strconv.Atoi(os.Getenv("DRONETRACK_PPROF_BLOCK_RATE")); err == nil && v > 0 {
		runtime.SetBlockProfileRate(v)
	}
	if v, err := strconv.Atoi(os.Getenv("DRONETRACK_PPROF_MUTEX_FRACTION")); err == nil && v > 0 {
		runtime.SetMutexProfileFraction(v)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	go func() {
		if err := http.Serve(ln, mux); err != nil {
			log.Warn("pprof stopped", "err", err)
		}
	}()
	return nil
}

// Functions are the hosted functions in Registry order.
func (s *System) Functions() []*Hosted { return s.fns }

// Function is the hosted function of that name, nil if none.
func (s *System) Function(name string) *Hosted { return s.byName[name] }

// DataDir is the absolute data dir.
func (s *System) DataDir() string { return s.dir }

// Store is the system's own handle on the store (the one it seeds and
// administers with); the functions open the same URL.
func (s *System) Store() store.Store { return s.store }

// Broker is the local broker.
func (s *System) Broker() Broker { return s.broker }

// StoreURL and CacheURL are what every function got as STORE_URL and
// CACHE_URL.
func (s *System) StoreURL() string { return s.storeURL }

// CacheURL: see StoreURL.
func (s *System) CacheURL() string { return s.cacheURL }

// DemoLogin is the demo tenant owner's email and password.
func (s *System) DemoLogin() DemoLogin { return s.demoLogin }

// Logger is the system's structured log.
func (s *System) Logger() *slog.Logger { return s.log }

// Addr is the public listener's address (host:port as bound).
func (s *System) Addr() net.Addr { return s.ln.Addr() }

// RedirectAddr is where the --redirect-http listener listens, "" without one.
func (s *System) RedirectAddr() string { return s.redirectAddr }
