package testenv

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"
)

// FirestoreEmulator is a Firestore emulator private to one test, which the
// test may freeze, kill and restart without disturbing other tests. Clients
// reach it at Host, which stays the same across restarts.
//
// The emulator keeps its data in memory and the standalone jar ignores
// --export-on-exit (a SIGTERM or POST /shutdown exports nothing; only the
// firebase CLI implements it, by calling the export API itself), so Kill
// models a database process that dies but keeps what it committed: it
// first cuts every client connection and refuses new ones (as a dead
// process does), then exports the project's data through the emulator's
// export API, then SIGKILLs the java process. Restart starts a new java
// process on the same port with --import-data of that export and lets
// clients in again. Cutting clients before the export is what makes the
// export hold every write a client was told had committed: a write the
// emulator committed whose answer was cut is in the export too, as it
// would be in a real database that crashed after a commit.
//
// To cut and readmit clients the emulator listens on a private port behind
// a TCP relay in the test binary; Host is the relay's address. The relay
// adds nothing else: bytes pass through unchanged.
type FirestoreEmulator struct {
	t       testing.TB
	project string
	dir     string
	java    string
	jar     string
	port    int // the java process's own port, the same across restarts

	mu      sync.Mutex
	c       *child // nil while killed
	relay   *relay
	imports string // the last export's metadata file, imported on restart
}

// StartFirestore starts a private emulator for project (the only project
// Kill keeps: the emulator exports one project at a time) and returns it
// once it answers. It is stopped at the end of the test. Unlike Firestore
// it does not set FIRESTORE_EMULATOR_HOST: call t.Setenv with Host.
func StartFirestore(t testing.TB, project string) *FirestoreEmulator {
	t.Helper()
	java, jar, err := emulatorCommand()
	if err != nil {
		t.Fatalf("private Firestore emulator: %v", err)
	}
	e := &FirestoreEmulator{t: t, project: project, dir: t.TempDir(), java: java, jar: jar}
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		if e.port, err = freePort(); err != nil {
			t.Fatal(err)
		}
		if lastErr = e.startJava(""); lastErr == nil {
			break
		}
	}
	if lastErr != nil {
		t.Fatalf("start private Firestore emulator: %v", lastErr)
	}
	r, err := newRelay("127.0.0.1:0", e.backend())
	if err != nil {
		e.c.stop()
		t.Fatalf("private Firestore emulator relay: %v", err)
	}
	e.relay = r
	t.Cleanup(e.close)
	return e
}

// Host is the host:port clients use (FIRESTORE_EMULATOR_HOST).
func (e *FirestoreEmulator) Host() string { return e.relay.addr }

// Freeze stops the emulator process (SIGSTOP): connections stay open and
// calls hang, as in a network partition or a stalled server. Thaw resumes.
func (e *FirestoreEmulator) Freeze() { e.signal(syscall.SIGSTOP) }

// Thaw resumes a frozen emulator (SIGCONT).
func (e *FirestoreEmulator) Thaw() { e.signal(syscall.SIGCONT) }

func (e *FirestoreEmulator) signal(sig syscall.Signal) {
	e.t.Helper()
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.c == nil {
		e.t.Fatalf("Firestore emulator: signal %v: not running", sig)
	}
	if err := syscall.Kill(-e.c.cmd.Process.Pid, sig); err != nil {
		e.t.Fatalf("Firestore emulator: signal %v: %v", sig, err)
	}
}

// Kill stops the database: every client connection is cut and new ones are
// refused, the project's committed data is exported, and the java process
// is killed with SIGKILL. Call Restart to bring it back with that data.
func (e *FirestoreEmulator) Kill() {
	e.t.Helper()
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.c == nil {
		e.t.Fatal("Firestore emulator: Kill: already killed")
	}
	e.relay.cut()
	exp, err := e.export()
	if err != nil {
		e.t.Fatalf("Firestore emulator: export before kill: %v", err)
	}
	e.imports = exp
	_ = syscall.Kill(-e.c.cmd.Process.Pid, syscall.SIGKILL)
	<-e.c.exited
	e.c = nil
}

// Restart starts a new emulator process on the same port with the data Kill
// exported, waits until it answers and readmits clients at Host.
func (e *FirestoreEmulator) Restart() {
	e.t.Helper()
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.c != nil {
		e.t.Fatal("Firestore emulator: Restart: still running")
	}
	var err error
	for attempt := 0; attempt < 3; attempt++ { // the port may linger a moment after the kill
		if err = e.startJava(e.imports); err == nil {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	if err != nil {
		e.t.Fatalf("Firestore emulator: restart on port %d: %v", e.port, err)
	}
	if err := e.relay.resume(); err != nil {
		e.t.Fatalf("Firestore emulator: readmit clients at %s: %v", e.relay.addr, err)
	}
}

func (e *FirestoreEmulator) backend() string { return "127.0.0.1:" + strconv.Itoa(e.port) }

// startJava starts the java process on e.port, importing importFile when
// set, and waits until it answers. Called with e.mu held (or before e is
// shared).
func (e *FirestoreEmulator) startJava(importFile string) error {
	args := []string{e.java, "-cp", e.jar, firestoreMainClass, "--host", "127.0.0.1", "--port", strconv.Itoa(e.port)}
	if importFile != "" {
		args = append(args, "--import-data", importFile)
	}
	logPath := filepath.Join(e.dir, fmt.Sprintf("emulator-%d.log", time.Now().UnixNano()))
	c, err := startChild("private firestore emulator", logPath, e.dir, args...)
	if err != nil {
		return err
	}
	if err := c.waitReady(90*time.Second, func() bool { return firestoreOK(e.backend()) }); err != nil {
		c.stop()
		return err
	}
	e.c = c
	return nil
}

// export writes the project's (default) database to a new directory with
// the emulator's export API and returns the export's metadata file, the
// argument --import-data takes.
func (e *FirestoreEmulator) export() (string, error) {
	dir, err := os.MkdirTemp(e.dir, "export-")
	if err != nil {
		return "", fmt.Errorf("export dir: %w", err)
	}
	body, _ := json.Marshal(map[string]string{
		"database":         "projects/" + e.project + "/databases/(default)",
		"export_directory": dir,
	})
	u := "http://" + e.backend() + "/emulator/v1/projects/" + url.PathEscape(e.project) + ":export"
	hc := http.Client{Timeout: time.Minute}
	resp, err := hc.Post(u, "application/json", bytes.NewReader(body))
	if err != nil {
		return "", fmt.Errorf("POST %s: %w", u, err)
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 2000))
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("POST %s: %s: %s", u, resp.Status, msg)
	}
	meta, err := filepath.Glob(filepath.Join(dir, "*", "*.overall_export_metadata"))
	if err != nil || len(meta) != 1 {
		return "", fmt.Errorf("export in %s: want one *.overall_export_metadata, found %v (%v)", dir, meta, err)
	}
	return meta[0], nil
}

func (e *FirestoreEmulator) close() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.relay.close()
	if e.c != nil {
		_ = syscall.Kill(-e.c.cmd.Process.Pid, syscall.SIGCONT) // a frozen process ignores SIGTERM
		e.c.stop()
		e.c = nil
	}
}

// emulatorCommand finds java and the emulator jar (FIRESTORE_EMULATOR_JAR or
// DefaultFirestoreJar).
func emulatorCommand() (java, jar string, err error) {
	jar = os.Getenv("FIRESTORE_EMULATOR_JAR")
	if jar == "" {
		jar = DefaultFirestoreJar
	}
	if _, err := os.Stat(jar); err != nil {
		return "", "", fmt.Errorf("emulator jar not found (%v): install the Cloud SDK component cloud-firestore-emulator, "+
			"set FIRESTORE_EMULATOR_JAR to the jar, or run an emulator and set FIRESTORE_EMULATOR_HOST", err)
	}
	java, err = exec.LookPath("java")
	if err != nil {
		return "", "", fmt.Errorf("java not found on PATH (%v): the Firestore emulator needs a JRE 11+", err)
	}
	return java, jar, nil
}

// relay forwards TCP connections from addr to backend. cut closes the
// listener and every connection (clients see what a dead server gives:
// reset connections, then connection refused); resume listens on the same
// address again.
type relay struct {
	addr    string
	backend string

	mu    sync.Mutex
	ln    net.Listener // nil while cut
	conns map[net.Conn]struct{}
	wg    sync.WaitGroup
}

func newRelay(addr, backend string) (*relay, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("relay listen %s: %w", addr, err)
	}
	r := &relay{addr: ln.Addr().String(), backend: backend, conns: map[net.Conn]struct{}{}}
	r.serve(ln)
	return r, nil
}

func (r *relay) serve(ln net.Listener) {
	r.ln = ln
	r.wg.Go(func() {
		for {
			in, err := ln.Accept()
			if err != nil {
				return // closed by cut or close
			}
			r.wg.Go(func() { r.pipe(in) })
		}
	})
}

// pipe relays one client connection until either side closes or cut.
func (r *relay) pipe(in net.Conn) {
	out, err := net.DialTimeout("tcp", r.backend, 5*time.Second)
	if err != nil {
		in.Close()
		return
	}
	if !r.track(in, out) {
		in.Close()
		out.Close()
		return
	}
	done := make(chan struct{}, 2)
	cp := func(dst, src net.Conn) {
		_, _ = io.Copy(dst, src)
		done <- struct{}{}
	}
	go cp(out, in)
	go cp(in, out)
	<-done
	in.Close()
	out.Close()
	<-done
	r.untrack(in, out)
}

// track registers a connection pair unless the relay was cut meanwhile.
func (r *relay) track(cs ...net.Conn) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.ln == nil {
		return false
	}
	for _, c := range cs {
		r.conns[c] = struct{}{}
	}
	return true
}

func (r *relay) untrack(cs ...net.Conn) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, c := range cs {
		delete(r.conns, c)
	}
}

// cut closes the listener and every relayed connection, and waits until no
// byte can pass any more.
func (r *relay) cut() {
	r.mu.Lock()
	if r.ln != nil {
		r.ln.Close()
		r.ln = nil
	}
	for c := range r.conns {
		// SO_LINGER 0: a reset, as the kernel sends for a killed process's
		// sockets with unread data, rather than an orderly close.
		if tc, ok := c.(*net.TCPConn); ok {
			_ = tc.SetLinger(0)
		}
		c.Close()
	}
	r.mu.Unlock()
	r.wg.Wait()
}

// resume listens on the relay's address again.
func (r *relay) resume() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.ln != nil {
		return errors.New("relay not cut")
	}
	var ln net.Listener
	var err error
	for attempt := 0; attempt < 20; attempt++ {
		if ln, err = net.Listen("tcp", r.addr); err == nil {
			r.serve(ln)
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("relay listen %s again: %w", r.addr, err)
}

func (r *relay) close() { r.cut() }
