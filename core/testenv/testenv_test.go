package testenv

import (
	"os"
	"testing"
)

func TestMain(m *testing.M) { Main(m) }

func TestFirestoreAnswersAndSetsEnv(t *testing.T) {
	host := Firestore(t)
	if !firestoreOK(host) {
		t.Fatalf("emulator at %s does not answer GET / with Ok", host)
	}
	if got := os.Getenv("FIRESTORE_EMULATOR_HOST"); got != host {
		t.Fatalf("FIRESTORE_EMULATOR_HOST = %q, want %q", got, host)
	}
	if again := Firestore(t); again != host {
		t.Fatalf("second Firestore call = %q, want the same emulator %q", again, host)
	}
}

func TestNewProjectIDUnique(t *testing.T) {
	seen := map[string]bool{}
	for i := 0; i < 100; i++ {
		id := NewProjectID(t)
		if seen[id] {
			t.Fatalf("NewProjectID repeated %q", id)
		}
		seen[id] = true
		for _, r := range id {
			if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-') {
				t.Fatalf("project id %q has %q; want lowercase letters, digits and hyphens", id, r)
			}
		}
	}
}

func TestRedisAnswersPing(t *testing.T) {
	addr := Redis(t)
	if err := redisPing(addr); err != nil {
		t.Fatalf("PING %s: %v", addr, err)
	}
}

func TestStartRedisStopAndRestart(t *testing.T) {
	addr, stop := StartRedis(t)
	if addr == Redis(t) {
		t.Fatalf("StartRedis returned the shared server %s; want a private one", addr)
	}
	if err := redisPing(addr); err != nil {
		t.Fatalf("PING private %s: %v", addr, err)
	}
	stop()
	if err := redisPing(addr); err == nil {
		t.Fatalf("private Redis %s still answers after stop", addr)
	}
	stop() // idempotent
	RestartRedis(t, addr)
	if err := redisPing(addr); err != nil {
		t.Fatalf("PING restarted %s: %v", addr, err)
	}
}
