package cli

import (
	"errors"
	"flag"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dronetrack/dronetrack/infra/local"
)

// TestTLSFlagsValidated: contradictory or incomplete TLS flags fail before
// anything starts, naming the flags.
func TestTLSFlagsValidated(t *testing.T) {
	for _, tc := range []struct {
		o    local.TLSOptions
		want string
	}{
		{local.TLSOptions{CertFile: "c.pem"}, "--tls-cert and --tls-key"},
		{local.TLSOptions{KeyFile: "k.pem"}, "--tls-cert and --tls-key"},
		{local.TLSOptions{CertFile: "c.pem", KeyFile: "k.pem", ACMEDomains: []string{"a.example"}}, "exclude each other"},
		{local.TLSOptions{RedirectAddr: ":80"}, "--redirect-http needs HTTPS"},
		{local.TLSOptions{ACMEEmail: "a@b.example"}, "need --acme-domain"},
		{local.TLSOptions{ACMEDomains: []string{"10.0.0.1"}}, "want a DNS name"},
		{local.TLSOptions{ACMEDomains: []string{"https://a.example"}}, "want a DNS name"},
	} {
		err := tc.o.Validate()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want an error with %q", tc.o, err, tc.want)
		}
	}
	dir := t.TempDir()
	if err := Run(t.Context(), []string{"up", "--data", dir, "--listen", "127.0.0.1:0", "--tls-cert", filepath.Join(dir, "none.pem"), "--tls-key", filepath.Join(dir, "none.key")}, io.Discard, io.Discard); err == nil ||
		!strings.Contains(err.Error(), "none.pem") {
		t.Errorf("up with missing certificate files: %v, want an error naming the file", err)
	}
}

// TestOneMachineEnvFlagsParse: every DRONETRACK_FLAGS line of
// infra/one-machine/dronetrack.env (the ones commented out too) is flags up
// accepts, so the documented settings cannot rot. `up ... -h` parses the
// flags before -h and stops there.
func TestOneMachineEnvFlagsParse(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("..", "..", "..", "infra", "one-machine", "dronetrack.env"))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, line := range strings.Split(string(raw), "\n") {
		flags, ok := strings.CutPrefix(strings.TrimPrefix(line, "#"), "DRONETRACK_FLAGS=")
		if !ok {
			continue
		}
		n++
		args := append([]string{"up", "--data", t.TempDir()}, strings.Fields(flags)...)
		if err := Run(t.Context(), append(args, "-h"), io.Discard, io.Discard); !errors.Is(err, flag.ErrHelp) {
			t.Errorf("dronetrack.env flags %q: %v", flags, err)
		}
	}
	if n < 3 {
		t.Errorf("%d DRONETRACK_FLAGS lines, want the three documented ones", n)
	}
}
