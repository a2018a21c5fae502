// Package keys makes and hashes drone API keys.
//
// A key is "dtk_" followed by 32 random bytes in unpadded base64url (43
// characters). The store keeps only Hash(pepper, key): an HMAC-SHA256 under a
// server-side secret (DRONE_KEY_PEPPER).
//
// Why a keyed hash and not argon2/bcrypt as for passwords: a key carries 256
// bits from crypto/rand, so nobody can guess or brute-force it and a slow
// hash buys nothing; people's passwords are guessable, keys are not. A fast,
// deterministic hash lets ingest authenticate with one indexed equality
// lookup (and cache it) on every request, which a salted slow hash cannot.
// The pepper makes a leaked table of hashes useless on its own: without the
// pepper an attacker cannot even test a candidate key against it.
package keys

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"strings"
)

// Prefix marks a Dronetrack drone key, so a leaked key is recognisable by
// secret scanners and a wrong kind of credential is rejected before hashing.
const Prefix = "dtk_"

// Len is the length of a key: the prefix and 43 base64url characters.
const Len = len(Prefix) + 43

// MinPepperLen is the shortest pepper a service should accept; shorter
// secrets are guessable and would defeat the point of the pepper.
const MinPepperLen = 16

// Generate returns a new random key. It fails only when the system's random
// source does.
func Generate() (string, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("generate drone key: %w", err)
	}
	return Prefix + base64.RawURLEncoding.EncodeToString(b[:]), nil
}

// WellFormed reports whether s has the shape of a key, so callers can reject
// garbage without hashing or a store lookup.
func WellFormed(s string) bool {
	if len(s) != Len || !strings.HasPrefix(s, Prefix) {
		return false
	}
	for i := len(Prefix); i < len(s); i++ {
		c := s[i]
		if !('A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// Hash returns the hex HMAC-SHA256 of key under pepper: the value stored as a
// drone's KeyHash and looked up by equality.
func Hash(pepper []byte, key string) string {
	m := hmac.New(sha256.New, pepper)
	m.Write([]byte(key))
	return hex.EncodeToString(m.Sum(nil))
}
