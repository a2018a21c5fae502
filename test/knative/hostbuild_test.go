package knative

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/mod/modfile"
)

// TestHostBuild: each function's committed deployable main
// (functions/X/cmd/X/main.go) is exactly the main knative func's host
// builder generates for it, func-go is pinned at the scaffolding's version
// in the function's go.mod, every function's hostbuild.work is the same,
// and the host build (scaffold in .func/build, go build with GOWORK set to
// hostbuild.work, CGO off) produces a binary for every function.
func TestHostBuild(t *testing.T) {
	root, err := RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	bins := bins(t)
	t.Logf("host build of %d functions: %v", len(bins), buildTime.Round(time.Millisecond))
	var work []byte
	for _, name := range Functions {
		dir := filepath.Join(root, "functions", name)
		data, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err != nil {
			t.Fatal(err)
		}
		mf, err := modfile.Parse("go.mod", data, nil)
		if err != nil {
			t.Fatal(err)
		}
		mod := mf.Module.Mod.Path
		main, err := os.ReadFile(filepath.Join(dir, "cmd", name, "main.go"))
		if err != nil {
			t.Errorf("%s: no deployable main: %v", name, err)
		} else if !bytes.Equal(main, ScaffoldMain(mod)) {
			t.Errorf("%s: cmd/%s/main.go differs from the host builder's main:\n%s\nwant:\n%s", name, name, main, ScaffoldMain(mod))
		}
		pinned := false
		for _, r := range mf.Require {
			if r.Mod.Path == "knative.dev/func-go" {
				pinned = r.Mod.Version == FuncGoVersion
				if !pinned {
					t.Errorf("%s: go.mod requires func-go %s, want %s (knative func %s)", name, r.Mod.Version, FuncGoVersion, FuncVersion)
				}
			}
		}
		if !pinned {
			t.Errorf("%s: go.mod does not pin knative.dev/func-go %s", name, FuncGoVersion)
		}
		// What the builder generated: main.go, and go.mod requiring the
		// function (replaced by the link f) and func-go.
		gen, err := os.ReadFile(filepath.Join(dir, BuildDir, "go.mod"))
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{mod + " => ./f", "knative.dev/func-go " + FuncGoVersion} {
			if !strings.Contains(string(gen), want) {
				t.Errorf("%s: scaffold go.mod lacks %q:\n%s", name, want, gen)
			}
		}
		if target, err := os.Readlink(filepath.Join(dir, BuildDir, "f")); err != nil || target != "../.." {
			t.Errorf("%s: scaffold link f -> %q (%v), want ../..", name, target, err)
		}
		w, err := os.ReadFile(filepath.Join(dir, WorkFile))
		if err != nil {
			t.Fatal(err)
		}
		if work == nil {
			work = w
		} else if !bytes.Equal(w, work) {
			t.Errorf("%s: %s differs from ingest's", name, WorkFile)
		}
		if fi, err := os.Stat(bins[name]); err != nil || fi.Size() == 0 {
			t.Errorf("%s: no binary at %s: %v", name, bins[name], err)
		}
	}
}

// sinkRecorder stands in for the broker's ingress (K_SINK): it keeps every
// event posted to it, raw, and answers 202.
type sinkRecorder struct {
	mu     sync.Mutex
	events []recorded
}

type recorded struct {
	header http.Header
	body   []byte
}

func (s *sinkRecorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	s.mu.Lock()
	s.events = append(s.events, recorded{r.Header.Clone(), body})
	s.mu.Unlock()
	w.WriteHeader(http.StatusAccepted)
}

func (s *sinkRecorder) all() []recorded {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]recorded(nil), s.events...)
}

// deliver posts a recorded CloudEvent (binary mode: Ce-* headers and body)
// to url, as the broker delivers it, and returns the reply.
func deliver(t *testing.T, url string, e recorded) (int, recorded) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(e.body))
	for k, v := range e.header {
		if strings.HasPrefix(strings.ToLower(k), "ce-") || strings.EqualFold(k, "Content-Type") {
			req.Header[k] = v
		}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, recorded{resp.Header.Clone(), body}
}

// TestEachFunctionStandalone runs every host-built function as its own
// process under func-go's runtime (LISTEN_ADDRESS, configuration from the
// environment, /health/readiness and /health/liveness), on the cluster's
// adapters (Firestore emulator, Redis), and hands a report along the
// spine by hand: a drone posts to ingest, whose event (caught at K_SINK) is
// delivered to process, whose reply event is delivered to cache-refresh and
// alerts; serve-map then shows the drone's state. Each then stops on
// SIGTERM with exit status 0 (func-go drains, then calls Stop).
func TestEachFunctionStandalone(t *testing.T) {
	bins := bins(t)
	f := newFixture(t)
	sink := &sinkRecorder{}
	sinkSrv := httptest.NewServer(sink)
	defer sinkSrv.Close()
	env := append(f.env(), "K_SINK="+sinkSrv.URL)

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	reps := map[string]*Replica{}
	for _, name := range Functions {
		r, err := StartReplica(name, bins[name], env)
		if err != nil {
			t.Fatal(err)
		}
		reps[name] = r
		defer func() {
			select {
			case <-r.Exited():
			default:
				r.Kill()
			}
			if t.Failed() {
				t.Logf("%s output:\n%s", name, r.Output())
			}
		}()
	}
	for _, name := range Functions {
		r := reps[name]
		if err := r.WaitReady(ctx); err != nil {
			t.Fatal(err)
		}
		t.Logf("%-13s exec->ready %v", name, r.Ready.Sub(r.Exec).Round(time.Millisecond))
		code, body := get(t, r.URL()+"/health/liveness", nil)
		if code != http.StatusOK || body != "ALIVE" {
			t.Errorf("%s liveness: %d %q, want 200 ALIVE (func-go's answer)", name, code, body)
		}
	}

	// ingest: a drone's report is authenticated against the store and
	// published to K_SINK.
	ts := time.Now().Add(-time.Second).Truncate(time.Millisecond)
	code, body := postReport(t, reps["ingest"].URL(), f.key, report(ts, 47.1))
	if code != http.StatusAccepted {
		t.Fatalf("ingest: %d %s, want 202", code, body)
	}
	if code, _ := postReport(t, reps["ingest"].URL(), "wrong-key", report(ts, 47.1)); code != http.StatusUnauthorized {
		t.Errorf("ingest with a wrong key: %d, want 401", code)
	}
	got := sink.all()
	if len(got) != 1 || got[0].header.Get("Ce-Type") != "dev.dronetrack.telemetry.received.v1" {
		t.Fatalf("K_SINK got %d events (%v), want one telemetry.received", len(got), got)
	}
	// process: writes the store, replies with state.updated.
	code, reply := deliver(t, reps["process"].URL(), got[0])
	if code != http.StatusOK || reply.header.Get("Ce-Type") != "dev.dronetrack.drone.state.updated.v1" {
		t.Fatalf("process: %d %s %s, want 200 with a state.updated reply", code, reply.header.Get("Ce-Type"), reply.body)
	}
	st, err := f.st.LatestState(ctx, f.tenant, f.drone)
	if err != nil || !st.TS.Equal(ts) {
		t.Errorf("store after process: %+v %v, want the report at %v", st, err, ts)
	}
	// cache-refresh and alerts take the reply event.
	for _, name := range []string{"cache-refresh", "alerts"} {
		if code, out := deliver(t, reps[name].URL(), reply); code/100 != 2 {
			t.Errorf("%s: %d %s, want 2xx", name, code, out.body)
		}
	}
	// serve-map: the drone's state for its owner, 401 without a session.
	code, body = get(t, reps["serve-map"].URL()+"/api/v1/drones/"+f.drone, f)
	var d struct {
		State *struct{ Lat float64 } `json:"state"`
	}
	if err := json.Unmarshal([]byte(body), &d); code != http.StatusOK || err != nil || d.State == nil || d.State.Lat != 47.1 {
		t.Errorf("serve-map drone: %d %s, want 200 with lat 47.1", code, body)
	}
	if code, _ := get(t, reps["serve-map"].URL()+"/api/v1/drones/"+f.drone, nil); code != http.StatusUnauthorized {
		t.Errorf("serve-map without a session: %d, want 401", code)
	}

	for _, name := range Functions {
		if err := reps[name].Terminate(10 * time.Second); err != nil {
			t.Errorf("%s on SIGTERM: %v, want exit status 0", name, err)
		}
	}
}

func postReport(t testing.TB, base, key, body string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, base+"/v1/telemetry", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+key)
	return do(t, req)
}

// get fetches url, as f's owner when f is not nil.
func get(t testing.TB, url string, f *fixture) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	if f != nil {
		f.authed(req)
	}
	return do(t, req)
}

// do sends req and returns the status and body; a request that gets no
// response fails the test.
func do(t testing.TB, req *http.Request) (int, string) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}
