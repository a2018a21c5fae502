package infra

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// maxExposure is the highest `systemd-analyze security` exposure the
// one-machine unit may have (0 = fully locked down, 10 = unprotected;
// systemd calls up to 2.0 "OK").
const maxExposure = 2.0

// TestOneMachineUnit checks infra/one-machine/ with systemd's own tools:
// `systemd-analyze verify` on the service, the backup service and its timer
// (every directive known and well-formed, references resolved) and
// `systemd-analyze security --offline` on both services (their hardening),
// plus the choices docs/operations.md relies on. The binary path is replaced
// by an executable that exists here, since verify checks it.
func TestOneMachineUnit(t *testing.T) {
	sa, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Fatalf("systemd-analyze is needed to check the systemd unit (Debian: apt-get install systemd): %v", err)
	}
	raw, err := os.ReadFile(filepath.Join("one-machine", "dronetrack.service"))
	if err != nil {
		t.Fatal(err)
	}
	unit := string(raw)
	for _, want := range []string{
		"ExecStart=/usr/local/bin/dronetrack up --data /var/lib/dronetrack $DRONETRACK_FLAGS",
		"StateDirectory=dronetrack\n", "User=dronetrack\n", "ProtectSystem=strict\n", "NoNewPrivileges=yes\n",
		"CapabilityBoundingSet=CAP_NET_BIND_SERVICE\n", "EnvironmentFile=-/etc/dronetrack/dronetrack.env\n",
	} {
		if !strings.Contains(unit, want) {
			t.Errorf("the unit lacks %q", want)
		}
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	// The units go into one directory (the timer names its service, the
	// backup service the main one), binary paths replaced.
	dir := t.TempDir()
	units := []string{"dronetrack.service", "dronetrack-backup.service", "dronetrack-backup.timer"}
	var paths []string
	for _, u := range units {
		b, err := os.ReadFile(filepath.Join("one-machine", u))
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, u)
		if err := os.WriteFile(p, []byte(strings.ReplaceAll(string(b), "/usr/local/bin/dronetrack", self)), 0o644); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, p)
	}

	out, err := exec.Command(sa, append([]string{"verify"}, paths...)...).CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}

	for _, u := range units[:2] {
		out, err = exec.Command(sa, "security", "--offline=yes", "--no-pager", filepath.Join(dir, u)).CombinedOutput()
		if err != nil {
			t.Fatalf("systemd-analyze security --offline=yes %s: %v\n%s", u, err, out)
		}
		m := regexp.MustCompile(`Overall exposure level for ` + regexp.QuoteMeta(u) + `: ([0-9.]+)`).FindSubmatch(out)
		if m == nil {
			t.Fatalf("no exposure level for %s in:\n%s", u, out)
		}
		level, _ := strconv.ParseFloat(string(m[1]), 64)
		t.Logf("systemd-analyze security %s: exposure %.1f", u, level)
		if level > maxExposure {
			t.Errorf("%s: exposure %.1f > %.1f: the unit lost hardening\n%s", u, level, maxExposure, out)
		}
	}

	for _, f := range []string{"dronetrack.sysusers", "dronetrack.env"} {
		if _, err := os.Stat(filepath.Join("one-machine", f)); err != nil {
			t.Errorf("one-machine/%s: %v", f, err)
		}
	}
}
