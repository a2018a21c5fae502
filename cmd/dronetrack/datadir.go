package main

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
)

// Files `up` keeps in its data directory.
const (
	storeFile    = "store.db"       // bbolt store
	brokerDir    = "broker"         // JetStream files of the local broker
	pepperFile   = "pepper"         // DRONE_KEY_PEPPER, generated on first run, 0600
	demoKeysFile = "demo-keys.json" // the demo drones' keys, 0600 (see demoKey)
	adminFile    = "admin.json"     // address and token of a running up's admin endpoint, 0600
)

// defaultDataDir is where `up` keeps its state unless --data says otherwise:
// $XDG_DATA_HOME/dronetrack, else the platform's per-user data directory.
func defaultDataDir() string {
	if d := os.Getenv("XDG_DATA_HOME"); d != "" {
		return filepath.Join(d, "dronetrack")
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return filepath.Join(os.TempDir(), "dronetrack")
	}
	switch runtime.GOOS {
	case "darwin":
		return filepath.Join(home, "Library", "Application Support", "dronetrack")
	case "windows":
		if d := os.Getenv("LocalAppData"); d != "" {
			return filepath.Join(d, "dronetrack")
		}
	}
	return filepath.Join(home, ".local", "share", "dronetrack")
}

// absDataDir makes dir absolute (store URLs need absolute paths) and creates it.
func absDataDir(dir string) (string, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", fmt.Errorf("data dir %q: %w", dir, err)
	}
	if err := os.MkdirAll(abs, 0o700); err != nil {
		return "", fmt.Errorf("create data dir: %w", err)
	}
	return abs, nil
}

// storeURL is the bbolt store inside a data dir.
func storeURL(dir string) string { return "bolt://" + filepath.ToSlash(filepath.Join(dir, storeFile)) }

// loadPepper returns the data dir's key pepper, generating it on first use.
// Drone keys are stored only as HMACs under it, so losing the file makes
// every registered key invalid; it never leaves the data dir.
func loadPepper(dir string) (string, error) {
	path := filepath.Join(dir, pepperFile)
	b, err := os.ReadFile(path)
	if err == nil {
		p := strings.TrimSpace(string(b))
		if p == "" {
			return "", fmt.Errorf("pepper file %s is empty", path)
		}
		return p, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("read pepper: %w", err)
	}
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return "", fmt.Errorf("generate pepper: %w", err)
	}
	p := hex.EncodeToString(raw)
	if err := writeFileAtomic(path, []byte(p+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("write pepper: %w", err)
	}
	return p, nil
}

// demoKey is one demo drone with its key. Keys exist in clear only when a
// drone is created; the demo keeps its drones' keys in DIR/demo-keys.json
// (0600) so `up --simulate` and `sim` can fly them after a restart. Drones
// added with `drone add` are not written there: their key is printed once.
type demoKey struct {
	TenantID string `json:"tenantId"`
	DroneID  string `json:"droneId"`
	Name     string `json:"name"`
	Key      string `json:"key"`
}

func readDemoKeys(path string) ([]demoKey, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read demo keys: %w", err)
	}
	var keys []demoKey
	if err := json.Unmarshal(b, &keys); err != nil {
		return nil, fmt.Errorf("demo keys %s: %w", path, err)
	}
	return keys, nil
}

func writeDemoKeys(path string, keys []demoKey) error {
	b, err := json.MarshalIndent(keys, "", "  ")
	if err != nil {
		return err
	}
	return writeFileAtomic(path, append(b, '\n'), 0o600)
}

// writeFileAtomic writes through a temp file and rename so a crash never
// leaves a half-written key or pepper file.
func writeFileAtomic(path string, data []byte, perm os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(perm); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
