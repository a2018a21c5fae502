package local

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
	StoreFile    = "store.db"       // bbolt store
	brokerDir    = "broker"         // JetStream files of the local broker
	PepperFile   = "pepper"         // DRONE_KEY_PEPPER, generated on first run, 0600
	DemoKeysFile = "demo-keys.json" // the demo drones' keys, 0600 (see demoKey)
	AdminFile    = "admin.json"     // address and token of a running up's admin endpoint, 0600
	storeURLFile = "store-url"      // the store up ran against when not the data dir's bolt file
)

// DefaultDataDir is where `up` keeps its state unless --data says otherwise:
// $XDG_DATA_HOME/dronetrack, else the platform's per-user data directory.
func DefaultDataDir() string {
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

// StoreURL is the bbolt store inside a data dir.
func StoreURL(dir string) string { return "bolt://" + filepath.ToSlash(filepath.Join(dir, StoreFile)) }

// checkStore says whether the data dir may be used with the store url: the
// demo keys, the demo login and the pepper it keeps are only good for the
// drones and users of the store they were made in. A data dir already used
// (with demo keys, or a DIR/store-url) is refused with any store but its
// own. record is true for a fresh data dir and another store than its bolt
// file: call recordStore once that store opened.
func checkStore(dir, url string) (record bool, err error) {
	recorded, err := RecordedStore(dir)
	if err != nil {
		return false, err
	}
	if recorded == "" {
		if _, err := os.Stat(filepath.Join(dir, DemoKeysFile)); err == nil {
			recorded = StoreURL(dir) // used before, with its own bolt file
		}
	}
	switch {
	case recorded == url:
		return false, nil
	case recorded != "":
		return false, fmt.Errorf("data dir %s belongs to store %s (its demo keys, login and pepper are that store's): "+
			"pass --store %s, or another --data for %s", dir, recorded, recorded, url)
	}
	return url != StoreURL(dir), nil
}

// recordStore writes url to DIR/store-url, so later runs and admin
// commands know which store the data dir belongs to.
func recordStore(dir, url string) error {
	if err := writeFileAtomic(filepath.Join(dir, storeURLFile), []byte(url+"\n"), 0o600); err != nil {
		return fmt.Errorf("record the store of the data dir: %w", err)
	}
	return nil
}

// RecordedStore is the store URL in DIR/store-url, "" when there is none.
func RecordedStore(dir string) (string, error) {
	b, err := os.ReadFile(filepath.Join(dir, storeURLFile))
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("read the store of the data dir: %w", err)
	}
	return strings.TrimSpace(string(b)), nil
}

// LoadPepper returns the data dir's key pepper, generating it on first use.
// Drone keys are stored only as HMACs under it, so losing the file makes
// every registered key invalid; it never leaves the data dir.
func LoadPepper(dir string) (string, error) {
	path := filepath.Join(dir, PepperFile)
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

// DemoKey is one demo drone with its key. Keys exist in clear only when a
// drone is created; the demo keeps its drones' keys in DIR/demo-keys.json
// (0600) so `up --simulate` and `sim` can fly them after a restart. Drones
// added with `drone add` are not written there: their key is printed once.
type DemoKey struct {
	TenantID string `json:"tenantId"`
	DroneID  string `json:"droneId"`
	Name     string `json:"name"`
	Key      string `json:"key"`
}

// ReadDemoKeys reads DATA/demo-keys.json; none yet is no error.
func ReadDemoKeys(path string) ([]DemoKey, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read demo keys: %w", err)
	}
	var keys []DemoKey
	if err := json.Unmarshal(b, &keys); err != nil {
		return nil, fmt.Errorf("demo keys %s: %w", path, err)
	}
	return keys, nil
}

func writeDemoKeys(path string, keys []DemoKey) error {
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
