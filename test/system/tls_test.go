package system

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/http/cookiejar"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dronetrack/dronetrack/core/testenv"
	ingestfn "github.com/dronetrack/dronetrack/functions/ingest"

	"github.com/dronetrack/dronetrack/infra/local"
)

// httpsClient trusts pool only (not the system roots) and opens a new
// connection per request, so every request sees the certificate served now.
func httpsClient(pool *x509.CertPool) *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{
		Jar:     jar,
		Timeout: 30 * time.Second,
		Transport: &http.Transport{
			TLSClientConfig:   &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12},
			DisableKeepAlives: true,
			ForceAttemptHTTP2: true,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// TestUpServesHTTPS is the issue's done-when for TLS: up on 127.0.0.1:0
// with a certificate from a CA made here. The website, the JSON API (log in,
// list drones), the drone JSON API and the OsmAnd endpoint answer over HTTPS
// to a client trusting that CA only, with HSTS and __Host- cookies; a client
// without the CA is refused; plain HTTP to the TLS port gets net/http's 400
// and nothing else; a renewed certificate is served without a restart, and a
// broken renewal keeps the previous one.
func TestUpServesHTTPS(t *testing.T) {
	ca := testenv.NewCA(t)
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	certPEM, keyPEM, firstSN := ca.Issue(t, "127.0.0.1", "localhost")
	testenv.WriteFileAtomic(t, certFile, certPEM)
	testenv.WriteFileAtomic(t, keyFile, keyPEM)

	logs := &testenv.LogBuffer{}
	sys, demo := startTestSystem(t, local.Options{
		DataDir: filepath.Join(dir, "data"), Log: logs, Out: logs, LogLevel: slog.LevelInfo,
		TLS: local.TLSOptions{CertFile: certFile, KeyFile: keyFile, RedirectAddr: "127.0.0.1:0"},
	})
	base := sys.URL()
	if !strings.HasPrefix(base, "https://127.0.0.1:") {
		t.Fatalf("URL %q, want https://127.0.0.1:PORT", base)
	}
	c := httpsClient(ca.Pool)

	get := func(path string) (*http.Response, []byte) {
		t.Helper()
		resp, err := c.Get(base + path)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, b
	}
	checkHSTS := func(what string, resp *http.Response) {
		t.Helper()
		if got := resp.Header.Get("Strict-Transport-Security"); !strings.HasPrefix(got, "max-age=") {
			t.Errorf("%s: Strict-Transport-Security %q, want HSTS on HTTPS", what, got)
		}
	}

	// The website.
	resp, body := get("/")
	if resp.StatusCode != http.StatusOK || !bytes.Contains(body, []byte("<html")) {
		t.Fatalf("GET / over HTTPS: %d %.200s", resp.StatusCode, body)
	}
	if resp.TLS == nil || resp.TLS.PeerCertificates[0].SerialNumber.Cmp(firstSN) != 0 {
		t.Fatalf("GET / not served with the test certificate")
	}
	if resp.ProtoMajor != 2 {
		t.Errorf("GET / over %s, want HTTP/2 (negotiated by ALPN)", resp.Proto)
	}
	checkHSTS("website", resp)

	// The JSON API: log in, which sets __Host- cookies (Secure, Path=/, no
	// Domain), then list drones with them.
	login, _ := json.Marshal(map[string]string{"email": sys.DemoLogin().Email, "password": sys.DemoLogin().Password})
	resp, err := c.Post(base+"/api/v1/auth/login", "application/json", bytes.NewReader(login))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("log in over HTTPS: %d", resp.StatusCode)
	}
	var names []string
	for _, ck := range resp.Cookies() {
		names = append(names, ck.Name)
		if !strings.HasPrefix(ck.Name, "__Host-") || !ck.Secure || ck.Path != "/" || ck.Domain != "" {
			t.Errorf("cookie %s over HTTPS: Secure=%v Path=%q Domain=%q, want __Host- Secure Path=/ no Domain", ck.Name, ck.Secure, ck.Path, ck.Domain)
		}
	}
	if len(names) == 0 {
		t.Fatal("log in set no cookies")
	}
	checkHSTS("login", resp)
	resp, body = get("/api/v1/drones")
	if resp.StatusCode != http.StatusOK || !bytes.Contains(body, []byte(demo[0].DroneID)) {
		t.Fatalf("GET /api/v1/drones over HTTPS with the session: %d %.300s", resp.StatusCode, body)
	}

	// The drone JSON API and the OsmAnd endpoint.
	report := `{"ts":"` + time.Now().UTC().Add(-time.Second).Format(time.RFC3339Nano) + `","lat":47.1,"lon":8.5,"battery":80}`
	req, _ := http.NewRequest(http.MethodPost, base+"/v1/telemetry", strings.NewReader(report))
	req.Header.Set("Authorization", "Bearer "+demo[0].Key)
	req.Header.Set("Content-Type", "application/json")
	resp, err = c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("POST /v1/telemetry over HTTPS: %d %s", resp.StatusCode, body)
	}
	checkHSTS("drone API", resp)
	resp, body = get(ingestfn.PathOsmAnd + "?id=" + demo[1].Key + "&lat=47.2&lon=8.6&speed=3&timestamp=" + time.Now().UTC().Format(time.RFC3339))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("OsmAnd over HTTPS: %d %s", resp.StatusCode, body)
	}
	for _, d := range demo[:2] {
		waitTrack(t, sys, d, 1)
	}

	// A client with the system roots only does not trust the server.
	if _, err := (&http.Client{Timeout: 10 * time.Second}).Get(base + "/"); err == nil {
		t.Error("a client without the test CA connected")
	} else {
		var ua x509.UnknownAuthorityError
		if !errors.As(err, &ua) {
			t.Errorf("client without the CA: %v, want an unknown authority error", err)
		}
	}

	// Plain HTTP to the TLS port: net/http answers 400 and closes.
	plain, err := (&http.Client{Timeout: 10 * time.Second}).Get("http://" + sys.Addr().String() + "/")
	if err != nil {
		t.Fatalf("plain HTTP to the TLS port: %v, want a 400 answer", err)
	}
	body, _ = io.ReadAll(plain.Body)
	plain.Body.Close()
	if plain.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), "HTTP request to an HTTPS server") {
		t.Errorf("plain HTTP to the TLS port: %d %q, want 400 naming HTTPS", plain.StatusCode, body)
	}
	// A plain-HTTP drone post is refused the same way, and never reaches
	// ingest (its key crossed in clear, but nothing was accepted).
	preq, _ := http.NewRequest(http.MethodPost, "http://"+sys.Addr().String()+"/v1/telemetry", strings.NewReader(report))
	preq.Header.Set("Authorization", "Bearer "+demo[2].Key)
	if presp, err := (&http.Client{Timeout: 10 * time.Second}).Do(preq); err != nil || presp.StatusCode != http.StatusBadRequest {
		t.Errorf("plain-HTTP POST to the TLS port: %v %v, want 400", presp, err)
	} else {
		presp.Body.Close()
	}
	// Bytes that are neither TLS nor HTTP: the connection is closed.
	raw, err := net.DialTimeout("tcp", sys.Addr().String(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	_ = raw.SetDeadline(time.Now().Add(10 * time.Second))
	_, _ = raw.Write([]byte("\x00\x01garbage\r\n\r\n"))
	if n, err := io.Copy(io.Discard, raw); err != nil {
		t.Errorf("garbage to the TLS port: %d bytes then %v, want the connection closed", n, err)
	}
	raw.Close()
	if resp, _ := get("/"); resp.StatusCode != http.StatusOK {
		t.Fatalf("HTTPS after the plain-HTTP attempts: %d", resp.StatusCode)
	}

	// The redirect port sends browsers to HTTPS on the public port, and
	// refuses to silently upgrade a POST.
	rresp, err := c.Get("http://" + sys.RedirectAddr() + "/account/login.html?x=1")
	if err != nil {
		t.Fatal(err)
	}
	rresp.Body.Close()
	_, port, _ := net.SplitHostPort(sys.Addr().String())
	if want := "https://127.0.0.1:" + port + "/account/login.html?x=1"; rresp.StatusCode != http.StatusPermanentRedirect || rresp.Header.Get("Location") != want {
		t.Errorf("redirect port: %d Location %q, want 308 to %s", rresp.StatusCode, rresp.Header.Get("Location"), want)
	}
	rresp, err = c.Post("http://"+sys.RedirectAddr()+"/v1/telemetry", "application/json", strings.NewReader(report))
	if err != nil {
		t.Fatal(err)
	}
	rresp.Body.Close()
	if rresp.StatusCode != http.StatusBadRequest {
		t.Errorf("POST to the redirect port: %d, want 400", rresp.StatusCode)
	}

	// Renewal: a new certificate from the same CA replaces the files; the
	// next handshakes get it, without a restart.
	servedSN := func() *big.Int {
		resp, _ := get("/")
		return resp.TLS.PeerCertificates[0].SerialNumber
	}
	certPEM2, keyPEM2, secondSN := ca.Issue(t, "127.0.0.1", "localhost")
	testenv.WriteFileAtomic(t, keyFile, keyPEM2)
	testenv.WriteFileAtomic(t, certFile, certPEM2)
	waitServed := func(want *big.Int, what string) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for servedSN().Cmp(want) != 0 {
			if time.Now().After(deadline) {
				t.Fatalf("%s: still serving serial %s after 10 s, want %s", what, servedSN(), want)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	waitServed(secondSN, "renewed certificate")

	// A broken renewal (a key that does not match) keeps the last good one
	// and says why in the log.
	_, otherKey, _ := ca.Issue(t, "127.0.0.1")
	testenv.WriteFileAtomic(t, keyFile, otherKey)
	time.Sleep(2 * local.CertCheckEvery)
	for range 3 {
		if sn := servedSN(); sn.Cmp(secondSN) != 0 {
			t.Fatalf("after a mismatched key: serving %s, want the previous %s", sn, secondSN)
		}
	}
	if !strings.Contains(logs.String(), "does not load") {
		t.Errorf("a certificate that does not load is not logged:\n%s", logs.String())
	}
	// Fixed: served again.
	testenv.WriteFileAtomic(t, keyFile, keyPEM)
	testenv.WriteFileAtomic(t, certFile, certPEM)
	waitServed(firstSN, "certificate after the broken renewal was fixed")
}

// waitTrack waits until the drone's history holds at least n points.
func waitTrack(t *testing.T, sys *local.System, d local.DemoKey, n int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for len(readTrack(t, sys.Store(), d.TenantID, d.DroneID)) < n {
		if time.Now().After(deadline) {
			t.Fatalf("drone %s: fewer than %d points stored after 30 s", d.DroneID, n)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestUpACMEWiring: up with --acme-domain starts without asking any CA (a
// certificate is only requested by a handshake for the domain), prints the
// domain's URL, answers ACME HTTP-01 challenge paths on the redirect port
// through autocert (not with a redirect) and redirects everything else, and
// refuses TLS handshakes for names it was not given.
func TestUpACMEWiring(t *testing.T) {
	logs := &testenv.LogBuffer{}
	sys, _ := startTestSystem(t, local.Options{
		Log: logs, Out: logs,
		TLS: local.TLSOptions{ACMEDomains: []string{"drones.example.com"}, ACMEDirectory: "https://127.0.0.1:1/directory", RedirectAddr: "127.0.0.1:0"},
	})
	_, port, _ := net.SplitHostPort(sys.Addr().String())
	if want := "https://drones.example.com:" + port; sys.URL() != want {
		t.Errorf("URL %q, want %q", sys.URL(), want)
	}
	noFollow := &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	get := func(path string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, "http://"+sys.RedirectAddr()+path, nil)
		req.Host = "drones.example.com"
		resp, err := noFollow.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	if resp := get("/.well-known/acme-challenge/unknown-token"); resp.StatusCode != http.StatusNotFound {
		t.Errorf("ACME challenge path on the redirect port: %d, want autocert's 404 for an unknown token", resp.StatusCode)
	}
	if resp := get("/account/login.html"); resp.StatusCode != http.StatusPermanentRedirect ||
		resp.Header.Get("Location") != "https://drones.example.com:"+port+"/account/login.html" {
		t.Errorf("redirect port: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", sys.Addr().String(),
		&tls.Config{ServerName: "other.example.com", InsecureSkipVerify: true}) // the refusal is the point, not the chain
	if err == nil {
		conn.Close()
		t.Error("TLS handshake for a name not given succeeded")
	}
	// Refused by the host policy, before any CA is asked.
	for deadline := time.Now().Add(5 * time.Second); !strings.Contains(logs.String(), `other.example.com\" not configured in HostWhitelist`); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the handshake error is not the host policy's:\n%s", logs.String())
		}
	}
}
