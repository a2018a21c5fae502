package testenv

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"
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

// A private emulator killed and restarted keeps what it committed, on the
// same address, and refuses connections while it is down.
func TestStartFirestoreKillRestartKeepsData(t *testing.T) {
	project := NewProjectID(t)
	e := StartFirestore(t, project)
	host := e.Host()
	doc := "http://" + host + "/v1/projects/" + project + "/databases/(default)/documents/c/a"
	put := func(v string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPatch, doc, strings.NewReader(`{"fields":{"v":{"stringValue":"`+v+`"}}}`))
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("write %s: %v", v, err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			b, _ := io.ReadAll(resp.Body)
			t.Fatalf("write %s: %s: %s", v, resp.Status, b)
		}
	}
	get := func() string {
		t.Helper()
		resp, err := http.Get(doc)
		if err != nil {
			t.Fatalf("read: %v", err)
		}
		defer resp.Body.Close()
		var d struct {
			Fields struct {
				V struct {
					StringValue string `json:"stringValue"`
				} `json:"v"`
			} `json:"fields"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&d); err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("read: %s, %v", resp.Status, err)
		}
		return d.Fields.V.StringValue
	}

	put("one")
	e.Kill()
	if _, err := net.DialTimeout("tcp", host, time.Second); err == nil {
		t.Fatalf("%s accepts connections while the emulator is killed", host)
	}
	e.Restart()
	if e.Host() != host {
		t.Fatalf("Host after restart = %s, want %s", e.Host(), host)
	}
	if got := get(); got != "one" {
		t.Fatalf("after restart v = %q, want the committed %q", got, "one")
	}
	// A second cycle keeps writes made after the first restart.
	put("two")
	e.Kill()
	e.Restart()
	if got := get(); got != "two" {
		t.Fatalf("after second restart v = %q, want %q", got, "two")
	}

	// Frozen, it holds connections without answering; thawed, it answers.
	e.Freeze()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, doc, nil)
	if resp, err := http.DefaultClient.Do(req); err == nil {
		resp.Body.Close()
		t.Fatalf("frozen emulator answered %s", resp.Status)
	}
	e.Thaw()
	if got := get(); got != "two" {
		t.Fatalf("after thaw v = %q, want %q", got, "two")
	}
}

func TestFreezeRedis(t *testing.T) {
	addr, _ := StartRedis(t)
	thaw := FreezeRedis(t, addr)
	if err := redisPing(addr); err == nil {
		t.Fatalf("frozen Redis %s answered PING", addr)
	}
	thaw()
	if err := redisPing(addr); err != nil {
		t.Fatalf("PING after thaw: %v", err)
	}
}
