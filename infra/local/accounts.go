package local

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/dronetrack/dronetrack/core/accounts"
	"github.com/dronetrack/dronetrack/core/store"
)

// DemoLoginFile keeps the demo owner's login (0600 in the data dir): made
// once on the first up, printed on every up, so the person on this machine
// can always log in and nobody else can guess it.
const DemoLoginFile = "demo-login.json"

// demoEmail is the demo tenant's owner.
const demoEmail = "demo@dronetrack.localhost"

// DemoLogin is the demo tenant owner's email and password (DATA/demo-login.json).
type DemoLogin struct {
	Email    string `json:"email"`
	Password string `json:"password"`
}

func (l DemoLogin) String() string { return l.Email + " / " + l.Password }

// generatePassword returns 128 random bits as 22 URL-safe characters.
func generatePassword() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("generate password: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b[:]), nil
}

// ensureDemoLogin makes the demo tenant's owner once and returns its login.
// The demo tenant must exist.
func ensureDemoLogin(ctx context.Context, st store.Store, dir string) (DemoLogin, error) {
	path := filepath.Join(dir, DemoLoginFile)
	var l DemoLogin
	raw, err := os.ReadFile(path)
	switch {
	case err == nil:
		if err := json.Unmarshal(raw, &l); err != nil {
			return DemoLogin{}, fmt.Errorf("read %s: %w", path, err)
		}
	case errors.Is(err, os.ErrNotExist):
		pw, err := generatePassword()
		if err != nil {
			return DemoLogin{}, err
		}
		l = DemoLogin{Email: demoEmail, Password: pw}
		b, _ := json.MarshalIndent(l, "", "  ")
		if err := writeFileAtomic(path, append(b, '\n'), 0o600); err != nil {
			return DemoLogin{}, fmt.Errorf("write %s: %w", path, err)
		}
	default:
		return DemoLogin{}, fmt.Errorf("read %s: %w", path, err)
	}
	if _, err := st.UserByEmail(ctx, l.Email); err == nil {
		return l, nil
	}
	svc, err := accounts.New(st, accounts.Config{})
	if err != nil {
		return DemoLogin{}, err
	}
	if _, err := svc.CreateUser(ctx, DemoTenantID, l.Email, l.Password, store.RoleOwner); err != nil &&
		!errors.Is(err, accounts.ErrEmailTaken) {
		return DemoLogin{}, fmt.Errorf("demo login: %w", err)
	}
	return l, nil
}
