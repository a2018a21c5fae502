package local

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/dronetrack/dronetrack/core/problem"
	"github.com/dronetrack/dronetrack/core/publish"
	"github.com/dronetrack/dronetrack/core/secheaders"
	"golang.org/x/crypto/acme"
	"golang.org/x/crypto/acme/autocert"
)

// acmeCacheDir is where --acme-domain keeps its account key and
// certificates inside the data dir, so a restart does not ask the CA again
// (Let's Encrypt rate-limits issuance per domain).
const acmeCacheDir = "acme"

// TLSOptions are the HTTPS settings of `up`'s public listener. With none
// set the listener speaks plain HTTP (the loopback default of `make run`).
type TLSOptions struct {
	// CertFile and KeyFile are a PEM certificate chain and its key. They
	// are read again when either file changes (certbot renewals, a
	// Kubernetes secret mount), without a restart.
	CertFile, KeyFile string
	// ACMEDomains get certificates from an ACME CA (Let's Encrypt unless
	// ACMEDirectory says otherwise) through autocert, cached in
	// DATA/acme. The CA must reach this machine on :443 (TLS-ALPN-01) or,
	// with RedirectAddr on :80, over HTTP-01.
	ACMEDomains   []string
	ACMEEmail     string
	ACMEDirectory string
	// RedirectAddr, when set, serves plain HTTP there (":80") that
	// redirects every request to HTTPS, and answers ACME HTTP-01 challenges.
	RedirectAddr string
}

// enabled says whether the public listener serves HTTPS.
func (o TLSOptions) enabled() bool { return o.CertFile != "" || len(o.ACMEDomains) > 0 }

func (o TLSOptions) Validate() error {
	switch {
	case (o.CertFile == "") != (o.KeyFile == ""):
		return errors.New("--tls-cert and --tls-key go together")
	case o.CertFile != "" && len(o.ACMEDomains) > 0:
		return errors.New("--tls-cert/--tls-key and --acme-domain exclude each other: pick files or automatic certificates")
	case o.RedirectAddr != "" && !o.enabled():
		return errors.New("--redirect-http needs HTTPS: --tls-cert/--tls-key or --acme-domain")
	case len(o.ACMEDomains) == 0 && (o.ACMEEmail != "" || o.ACMEDirectory != ""):
		return errors.New("--acme-email and --acme-directory need --acme-domain")
	}
	for _, d := range o.ACMEDomains {
		if d == "" || strings.ContainsAny(d, "/: ") || net.ParseIP(d) != nil {
			return fmt.Errorf("--acme-domain %q: want a DNS name such as drones.example.com", d)
		}
	}
	return nil
}

// publicTLS is the TLS side of the public listener: its tls.Config, and
// for ACME the handler that answers HTTP-01 challenges on the redirect
// port.
type publicTLS struct {
	config *tls.Config
	// acme answers HTTP-01 challenges on the redirect port; nil without
	// --acme-domain.
	acme *autocert.Manager
	// host is the name the printed URL uses: the first ACME domain, else
	// the listen address.
	host string
}

// setupTLS builds the public listener's TLS from o. dataDir holds the
// ACME cache.
func setupTLS(o TLSOptions, dataDir string, log *slog.Logger) (*publicTLS, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	p := &publicTLS{config: cfg}
	if o.CertFile != "" {
		kp, err := newCertReloader(o.CertFile, o.KeyFile, log)
		if err != nil {
			return nil, err
		}
		cfg.GetCertificate = kp.GetCertificate
		return p, nil
	}
	cache := filepath.Join(dataDir, acmeCacheDir)
	if err := os.MkdirAll(cache, 0o700); err != nil {
		return nil, fmt.Errorf("acme cache: %w", err)
	}
	m := &autocert.Manager{
		Prompt:     autocert.AcceptTOS,
		Cache:      autocert.DirCache(cache),
		HostPolicy: autocert.HostWhitelist(o.ACMEDomains...),
		Email:      o.ACMEEmail,
	}
	if o.ACMEDirectory != "" {
		m.Client = &acme.Client{DirectoryURL: o.ACMEDirectory}
	}
	acmeCfg := m.TLSConfig() // GetCertificate and the acme-tls/1 protocol
	cfg.GetCertificate = acmeCfg.GetCertificate
	cfg.NextProtos = acmeCfg.NextProtos
	p.acme = m
	p.host = o.ACMEDomains[0]
	return p, nil
}

// redirectHandler sends every plain-HTTP request to the same host and path
// over HTTPS on httpsPort (the public listener's). Only GET and HEAD are redirected permanently (308 keeps the
// method, but a drone that posts reports to http:// should be fixed, not
// silently upgraded: its key already crossed the network in clear), other
// methods get 400 with a problem saying so.
func redirectHandler(httpsPort string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host := r.Host
		if h, _, err := net.SplitHostPort(host); err == nil {
			host = h
		}
		if host != "" && httpsPort != "443" {
			host = net.JoinHostPort(host, httpsPort)
		}
		if host == "" {
			problem.Write(w, http.StatusBadRequest, "HTTPS required", "this server speaks HTTPS; the request named no host to redirect to")
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			problem.Write(w, http.StatusBadRequest, "HTTPS required",
				"this server accepts "+r.Method+" over HTTPS only: send it to https://"+host+r.URL.RequestURI())
			return
		}
		http.Redirect(w, r, "https://"+host+r.URL.RequestURI(), http.StatusPermanentRedirect)
	})
}

// withHSTS adds Strict-Transport-Security to every response served over
// TLS (the drone API too, not only the website serve-map already covers),
// so a browser that once reached the site over HTTPS never falls back to
// plain HTTP.
func withHSTS(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.TLS != nil {
			w.Header().Set("Strict-Transport-Security", secheaders.HSTS)
		}
		next.ServeHTTP(w, r)
	})
}

// serveRedirect starts the plain-HTTP redirect listener; it stops with the
// returned function.
func serveRedirect(addr string, h http.Handler, log *slog.Logger) (func(context.Context) error, string, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, "", fmt.Errorf("--redirect-http %s: %w (binding :80 needs CAP_NET_BIND_SERVICE)", addr, err)
	}
	srv := &http.Server{Handler: h, ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
	limitServer(srv)
	go func() { _ = srv.Serve(ln) }()
	return srv.Shutdown, ln.Addr().String(), nil
}

// CertCheckEvery bounds how often a handshake looks at the certificate
// files: a stat of two files per second at most, however busy the port.
const CertCheckEvery = time.Second

// certReloader serves a certificate from files and reads them again when
// they change, so a renewed certificate is used without a restart. A
// handshake at most every certCheckEvery stats both files; when their size,
// time or identity changed, the pair is loaded again. A pair that does not
// load (a renewal caught half-written, a key that does not match) keeps the
// previous certificate and logs why; the next check tries again.
type certReloader struct {
	certFile, keyFile string
	log               *slog.Logger

	mu      sync.Mutex
	cert    *tls.Certificate
	stamp   string // size and mtime of both files when cert was loaded
	checked time.Time
	failed  string // the stamp that last failed to load, logged once
}

func newCertReloader(certFile, keyFile string, log *slog.Logger) (*certReloader, error) {
	c := &certReloader{certFile: certFile, keyFile: keyFile, log: log}
	stamp, err := c.fileStamp()
	if err != nil {
		return nil, err
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("--tls-cert %s / --tls-key %s: %w", certFile, keyFile, err)
	}
	c.cert, c.stamp, c.checked = &cert, stamp, time.Now()
	return c, nil
}

func (c *certReloader) fileStamp() (string, error) {
	var b bytes.Buffer
	for _, f := range []string{c.certFile, c.keyFile} {
		fi, err := os.Stat(f) // follows symlinks: certbot's live/ links change target
		if err != nil {
			return "", fmt.Errorf("TLS file: %w", err)
		}
		fmt.Fprintf(&b, "%s:%d:%d;", f, fi.Size(), fi.ModTime().UnixNano())
	}
	return b.String(), nil
}

// GetCertificate is tls.Config.GetCertificate.
func (c *certReloader) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if time.Since(c.checked) < CertCheckEvery {
		return c.cert, nil
	}
	c.checked = time.Now()
	stamp, err := c.fileStamp()
	if err != nil || stamp == c.stamp || stamp == c.failed {
		if err != nil && c.failed != err.Error() {
			c.failed = err.Error()
			c.log.Error("TLS certificate files unreadable; serving the previous certificate", "err", err)
		}
		return c.cert, nil
	}
	cert, err := tls.LoadX509KeyPair(c.certFile, c.keyFile)
	if err != nil {
		c.failed = stamp
		c.log.Error("TLS certificate changed but does not load; serving the previous one", "cert", c.certFile, "key", c.keyFile, "err", err)
		return c.cert, nil
	}
	c.cert, c.stamp, c.failed = &cert, stamp, ""
	c.log.Info("TLS certificate reloaded", "cert", c.certFile)
	return c.cert, nil
}

// servePublic opens the public listener, plain HTTP or HTTPS as s.opts.TLS
// says, and the redirect listener when asked.
func (s *System) servePublic() error {
	o, log := s.opts, s.log
	handler := s.Handler()
	if o.TLS.enabled() {
		t, err := setupTLS(o.TLS, s.dir, log)
		if err != nil {
			return err
		}
		s.tls = t
		handler = withHSTS(handler)
	} else if !LoopbackAddr(o.HTTPAddr) {
		log.Warn("public listener speaks plain HTTP on a non-loopback address: drone keys and sessions cross the network in clear; "+
			"use --tls-cert/--tls-key or --acme-domain unless a TLS proxy in front sets X-Forwarded-Proto", "addr", o.HTTPAddr)
	}
	ln, err := net.Listen("tcp", o.HTTPAddr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w (is another dronetrack up running? try --listen 127.0.0.1:0)", o.HTTPAddr, err)
	}
	s.ln = ln
	s.public = &http.Server{
		Handler:  handler,
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	limitServer(s.public) // slow loris, header floods, idle connections
	serve := func() error { return s.public.Serve(ln) }
	if s.tls != nil {
		// ServeTLS adds h2 and http/1.1 to NextProtos; with GetCertificate
		// set it needs no files. A plain-HTTP request to this port is
		// answered 400 by net/http ("Client sent an HTTP request to an
		// HTTPS server.") and its connection closed.
		s.public.TLSConfig = s.tls.config
		serve = func() error { return s.public.ServeTLS(ln, "", "") }
	}
	go func() {
		if err := serve(); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("public listener stopped", "err", err)
		}
	}()
	if o.TLS.RedirectAddr != "" {
		_, port, _ := net.SplitHostPort(ln.Addr().String())
		h := redirectHandler(port)
		if s.tls.acme != nil {
			h = s.tls.acme.HTTPHandler(h)
		}
		stop, addr, err := serveRedirect(o.TLS.RedirectAddr, h, log)
		if err != nil {
			return err
		}
		s.redirect, s.redirectAddr = stop, addr
	}
	return nil
}

// URL is the public base URL.
func (s *System) URL() string {
	if s.tls == nil {
		return "http://" + s.ln.Addr().String()
	}
	addr := s.ln.Addr().String()
	if s.tls.host != "" {
		_, port, _ := net.SplitHostPort(addr)
		addr = s.tls.host
		if port != "443" {
			addr = net.JoinHostPort(s.tls.host, port)
		}
	}
	return "https://" + addr
}

// simClient is the in-process simulator's client when the public listener
// speaks HTTPS: its certificate names the public host, which need not
// resolve here, so the simulator hands its requests to the public handler
// in process (core/publish.LocalTransport) instead of dialing, whether or
// not the functions' own hops are in process.
func (s *System) simClient() *http.Client {
	if u, err := url.Parse(s.URL()); err == nil {
		publish.RegisterLocal(u.Host, s.public.Handler)
	}
	return &http.Client{Transport: publish.LocalTransport{Next: http.DefaultTransport}, Timeout: 30 * time.Second}
}
