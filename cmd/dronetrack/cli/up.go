package cli

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/dronetrack/dronetrack/infra/local"
)

// upCmd is `dronetrack up`: it starts the runtime (local.Start) with the
// flags' options and stops it when ctx ends.
func upCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("up", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o local.Options
	fs.StringVar(&o.DataDir, "data", local.DefaultDataDir(), "data dir: store, broker queue, key pepper, demo keys")
	fs.StringVar(&o.HTTPAddr, "listen", "127.0.0.1:8080", "address for the website and the ingest API (any interface, e.g. :443 with TLS)")
	fs.StringVar(&o.HTTPAddr, "http", "127.0.0.1:8080", "the same as --listen (its older name)")
	registerTLSFlags(fs, &o.TLS)
	fs.StringVar(&o.StoreURL, "store", "", "store URL: bolt:///abs/path.db, or firestore://PROJECT[?database=NAME] (the emulator when FIRESTORE_EMULATOR_HOST is set) (default bolt://DATA/store.db)")
	fs.StringVar(&o.CacheURL, "cache", local.DefaultCacheURL, "cache URL: local://NAME (in-process) or redis://[:PASSWORD@]HOST:PORT/DB")
	fs.IntVar(&o.Simulate, "simulate", 0, "fly N simulated demo drones against this system (0: none)")
	fs.IntVar(&o.DemoDrones, "demo-drones", 0, "seed at least N demo drones (keys in DATA/demo-keys.json), e.g. for `dronetrack load --url` from another process")
	fs.StringVar(&o.PprofAddr, "pprof", "", "serve net/http/pprof on this loopback address (e.g. 127.0.0.1:6060)")
	fs.DurationVar(&o.LinkCheckEvery, "link-check", local.DefaultLinkCheckEvery, "period of the lost-link check (the cluster's PingSource runs every 30 s)")
	fs.DurationVar(&o.HistoryTTL, "history-ttl", 0, "how long drone history is kept (default 720h; the store file holds about drones x reports/s x this x 330 bytes)")
	fs.StringVar(&o.RIDTestAuthority, "rid-test-authority", "auto", "Remote ID test authority (tokens from `dronetrack rid token`): auto = on for a loopback --http, on, off")
	level := fs.String("log-level", "warn", "debug, info, warn or error (functions and broker)")
	RegisterSimFlags(fs, &o.Sim, 0)
	registerSetFlag(fs, &o.Set)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: dronetrack up [--data DIR] [--listen 127.0.0.1:8080] [--tls-cert FILE --tls-key FILE | --acme-domain NAME] [--redirect-http :80] [--store URL] [--cache URL] [--simulate N] [simulator flags]")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := o.LogLevel.UnmarshalText([]byte(*level)); err != nil {
		return fmt.Errorf("--log-level: %w", err)
	}
	o.Log, o.Out = stderr, stdout
	sys, err := local.Start(ctx, o)
	if err != nil {
		return err
	}
	<-ctx.Done()
	return sys.Shutdown()
}

// registerTLSFlags adds the TLS flags of `up` to fs.
func registerTLSFlags(fs *flag.FlagSet, o *local.TLSOptions) {
	fs.StringVar(&o.CertFile, "tls-cert", "", "serve HTTPS with this PEM certificate chain (read again when it changes)")
	fs.StringVar(&o.KeyFile, "tls-key", "", "the PEM private key of --tls-cert")
	fs.Var((*domainList)(&o.ACMEDomains), "acme-domain", "serve HTTPS with certificates from Let's Encrypt for this DNS name (repeat or comma-separate for more; cached in DATA/acme)")
	fs.StringVar(&o.ACMEEmail, "acme-email", "", "contact address given to the ACME CA (expiry warnings)")
	fs.StringVar(&o.ACMEDirectory, "acme-directory", "", "ACME directory URL (default Let's Encrypt production)")
	fs.StringVar(&o.RedirectAddr, "redirect-http", "", "also listen for plain HTTP here (e.g. :80) and redirect it to HTTPS (and answer ACME HTTP-01 challenges)")
}

// domainList is a repeatable, comma-separable flag.
type domainList []string

func (l *domainList) String() string { return strings.Join(*l, ",") }

func (l *domainList) Set(v string) error {
	for _, d := range strings.Split(v, ",") {
		if d = strings.TrimSpace(strings.ToLower(d)); d != "" {
			*l = append(*l, d)
		}
	}
	return nil
}

// registerSetFlag adds --set to up's flags.
func registerSetFlag(fs *flag.FlagSet, s *local.SetFlags) {
	fs.Var(s, "set", "FUNCTION.SETTING=VALUE: one function's setting, over its func.yaml and the environment (repeatable; every setting in docs/configuration.md)")
}
