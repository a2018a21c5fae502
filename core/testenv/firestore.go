package testenv

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// DefaultFirestoreJar is where the Cloud SDK installs the Firestore emulator
// on the go-family machine images. FIRESTORE_EMULATOR_JAR overrides it.
const DefaultFirestoreJar = "/usr/lib/google-cloud-sdk/platform/cloud-firestore-emulator/cloud-firestore-emulator.jar"

const firestoreMainClass = "com.google.cloud.datastore.emulator.firestore.CloudFirestore"

var (
	fsOnce sync.Once
	fsHost string
	fsErr  error
)

// Firestore returns the host:port of a Firestore emulator and sets
// FIRESTORE_EMULATOR_HOST to it, so firestore.NewClient talks to the emulator
// without credentials. It uses FIRESTORE_EMULATOR_HOST when that emulator
// answers, and otherwise starts the emulator jar directly (java, not the
// gcloud wrapper, so stopping it really stops it), once per test binary.
// Give each test its own project with NewProjectID instead of resetting data.
func Firestore(t testing.TB) string {
	t.Helper()
	fsOnce.Do(func() { fsHost, fsErr = firestore() })
	if fsErr != nil {
		t.Fatalf("Firestore emulator unavailable: %v", fsErr)
	}
	if err := os.Setenv("FIRESTORE_EMULATOR_HOST", fsHost); err != nil {
		t.Fatalf("set FIRESTORE_EMULATOR_HOST: %v", err)
	}
	return fsHost
}

func firestore() (string, error) {
	if h := os.Getenv("FIRESTORE_EMULATOR_HOST"); h != "" {
		if firestoreOK(h) {
			return h, nil
		}
		// A stale variable (e.g. left from an emulator that is gone) must
		// not block the tests: start our own and say so on failure.
		host, err := startFirestore()
		if err != nil {
			return "", fmt.Errorf("FIRESTORE_EMULATOR_HOST=%s does not answer GET / with Ok, and starting one failed: %w", h, err)
		}
		return host, nil
	}
	return startFirestore()
}

// firestoreOK reports whether an emulator answers GET / with "Ok".
func firestoreOK(host string) bool {
	c := http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get("http://" + host + "/")
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64))
	return resp.StatusCode == http.StatusOK && strings.TrimSpace(string(b)) == "Ok"
}

func startFirestore() (string, error) {
	java, jar, err := emulatorCommand()
	if err != nil {
		return "", err
	}
	dir, err := os.MkdirTemp("", "testenv-firestore-")
	if err != nil {
		return "", fmt.Errorf("temp dir: %w", err)
	}
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		port, err := freePort()
		if err != nil {
			return "", err
		}
		host := "127.0.0.1:" + strconv.Itoa(port)
		c, err := startChild("firestore emulator", filepath.Join(dir, fmt.Sprintf("emulator-%d.log", port)), dir,
			java, "-cp", jar, firestoreMainClass, "--host", "127.0.0.1", "--port", strconv.Itoa(port))
		if err != nil {
			return "", err
		}
		if err := c.waitReady(90*time.Second, func() bool { return firestoreOK(host) }); err != nil {
			c.stop()
			lastErr = err
			continue
		}
		atExit(func() {
			stopFirestore(host, c)
			os.RemoveAll(dir)
		})
		return host, nil
	}
	return "", lastErr
}

// stopFirestore asks the emulator to shut down and then makes sure the java
// process is gone.
func stopFirestore(host string, c *child) {
	hc := http.Client{Timeout: 2 * time.Second}
	if resp, err := hc.Post("http://"+host+"/shutdown", "text/plain", nil); err == nil {
		resp.Body.Close()
		select {
		case <-c.exited:
		case <-time.After(3 * time.Second):
		}
	}
	c.stop()
}

var projectSeq atomic.Int64

// NewProjectID returns a project id no other test uses, derived from the
// test name for readable emulator logs. Emulator data is per project, so a
// fresh id isolates a test without resetting the emulator.
func NewProjectID(t testing.TB) string {
	t.Helper()
	var b strings.Builder
	for _, r := range strings.ToLower(t.Name()) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			b.WriteRune(r)
		default:
			b.WriteByte('-')
		}
		if b.Len() >= 30 {
			break
		}
	}
	name := strings.Trim(b.String(), "-")
	if name == "" {
		name = "t"
	}
	var rnd [4]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		t.Fatalf("random project id: %v", err)
	}
	return fmt.Sprintf("test-%s-%d-%s", name, projectSeq.Add(1), hex.EncodeToString(rnd[:]))
}
