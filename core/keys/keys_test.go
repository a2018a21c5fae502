package keys_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"strings"
	"testing"

	"github.com/dronetrack/dronetrack/core/keys"
)

func TestGenerateShapeAndUniqueness(t *testing.T) {
	seen := map[string]bool{}
	for range 100 {
		k, err := keys.Generate()
		if err != nil {
			t.Fatal(err)
		}
		if len(k) != 47 {
			t.Fatalf("len(%q) = %d, want 47", k, len(k))
		}
		if !strings.HasPrefix(k, "dtk_") {
			t.Fatalf("%q lacks prefix dtk_", k)
		}
		raw, err := base64.RawURLEncoding.DecodeString(k[4:])
		if err != nil || len(raw) != 32 {
			t.Fatalf("%q: body is not 32 bytes of base64url: %v (%d bytes)", k, err, len(raw))
		}
		if !keys.WellFormed(k) {
			t.Fatalf("WellFormed(%q) = false for a generated key", k)
		}
		if seen[k] {
			t.Fatalf("duplicate key %q", k)
		}
		seen[k] = true
	}
}

func TestWellFormedRejects(t *testing.T) {
	good, _ := keys.Generate()
	for _, s := range []string{
		"",
		"dtk_",
		good[:len(good)-1],
		good + "A",
		"xtk_" + good[4:],
		good[:10] + "+" + good[11:], // std base64 alphabet, not url
		good[:10] + "=" + good[11:],
	} {
		if keys.WellFormed(s) {
			t.Errorf("WellFormed(%q) = true, want false", s)
		}
	}
}

func TestHash(t *testing.T) {
	pepper := []byte("0123456789abcdef0123456789abcdef")
	key := "dtk_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"

	m := hmac.New(sha256.New, pepper)
	m.Write([]byte(key))
	want := hex.EncodeToString(m.Sum(nil))

	if got := keys.Hash(pepper, key); got != want {
		t.Errorf("Hash = %s, want HMAC-SHA256 hex %s", got, want)
	}
	if keys.Hash(pepper, key) != keys.Hash(pepper, key) {
		t.Error("Hash is not deterministic; equality lookups would fail")
	}
	if keys.Hash([]byte("another pepper, another pepper!!"), key) == want {
		t.Error("Hash ignores the pepper")
	}
	if keys.Hash(pepper, key+"x") == want {
		t.Error("Hash ignores the key")
	}
	if strings.Contains(keys.Hash(pepper, key), key[4:]) {
		t.Error("Hash leaks the key")
	}
}

func BenchmarkHash(b *testing.B) {
	pepper := []byte("0123456789abcdef0123456789abcdef")
	key, _ := keys.Generate()
	for b.Loop() {
		keys.Hash(pepper, key)
	}
}
