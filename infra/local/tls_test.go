package local

import (
	"crypto/tls"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestACMEConfig: --acme-domain keeps its cache in DATA/acme (0700), offers
// the acme-tls/1 protocol for TLS-ALPN-01 challenges, and refuses to get a
// certificate for a name it was not given (no CA is asked for it).
func TestACMEConfig(t *testing.T) {
	dir := t.TempDir()
	pt, err := setupTLS(TLSOptions{ACMEDomains: []string{"drones.example.com"}, ACMEDirectory: "https://127.0.0.1:1/directory"}, dir, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(filepath.Join(dir, acmeCacheDir)); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("acme cache dir: %v %v, want 0700", fi, err)
	}
	hasALPN := false
	for _, p := range pt.config.NextProtos {
		hasALPN = hasALPN || p == "acme-tls/1"
	}
	if !hasALPN {
		t.Errorf("NextProtos %v lack acme-tls/1", pt.config.NextProtos)
	}
	if _, err := pt.config.GetCertificate(&tls.ClientHelloInfo{ServerName: "other.example.com"}); err == nil ||
		!strings.Contains(err.Error(), "not allowed") && !strings.Contains(err.Error(), "host") {
		t.Errorf("certificate for a name not given: %v, want the host policy's refusal", err)
	}
	if pt.host != "drones.example.com" {
		t.Errorf("printed host %q", pt.host)
	}
}
