// Package testenv gives tests across the repository the real services they
// need (the Firestore emulator, Redis) without mocks and without skipping.
//
// A helper first uses a service that is already running (named by the usual
// environment variable, or Redis on its default port) and otherwise starts
// one itself: one per test binary, stopped when the binary exits. Packages
// that start services should call Main from TestMain so the processes are
// stopped at once; as a safety net every child is also started with a
// parent-death signal so it cannot outlive a crashed test binary.
//
// When a service can be neither found nor started the helper fails the test
// with a message saying what is missing: a test that needs a service never
// skips.
//
// Fault tests get services of their own, which they may break: StartRedis
// and RestartRedis (killed and restarted empty), FreezeRedis (SIGSTOP), and
// StartFirestore, an emulator that can be frozen, or killed and restarted
// on the same address with the data it had committed.
package testenv

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Main runs the tests and then stops every service this package started, so
// a package's TestMain is just `func TestMain(m *testing.M) { testenv.Main(m) }`.
func Main(m *testing.M) {
	code := m.Run()
	StopAll()
	os.Exit(code)
}

var (
	stopMu sync.Mutex
	stops  []func()
)

// atExit registers a stop function run by StopAll (last registered first).
func atExit(f func()) {
	stopMu.Lock()
	defer stopMu.Unlock()
	stops = append(stops, f)
}

// StopAll stops every service started by this package for the whole binary.
// Main calls it; call it yourself only from a TestMain that cannot use Main.
func StopAll() {
	stopMu.Lock()
	fs := stops
	stops = nil
	stopMu.Unlock()
	for i := len(fs) - 1; i >= 0; i-- {
		fs[i]()
	}
}

// child is a service process started by this package.
type child struct {
	name   string
	cmd    *exec.Cmd
	logf   string
	exited chan struct{} // closed when the process has exited
	err    error         // Wait's result, valid after exited is closed
	once   sync.Once
}

// startChild starts a service process with its output in logPath. The child
// gets its own process group and SIGKILL when the test binary dies.
func startChild(name, logPath string, dir string, argv ...string) (*child, error) {
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("testenv: %s log: %w", name, err)
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = dir
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("testenv: start %s (%s): %w", name, strings.Join(argv, " "), err)
	}
	c := &child{name: name, cmd: cmd, logf: logPath, exited: make(chan struct{})}
	go func() {
		c.err = cmd.Wait()
		logFile.Close()
		close(c.exited)
	}()
	return c, nil
}

// running reports whether the process has not exited yet.
func (c *child) running() bool {
	select {
	case <-c.exited:
		return false
	default:
		return true
	}
}

// stop terminates the process group (SIGTERM, then SIGKILL after 5 s) and
// waits for the process to exit. Safe to call more than once.
func (c *child) stop() {
	c.once.Do(func() {
		if !c.running() {
			return
		}
		pgid := c.cmd.Process.Pid
		_ = syscall.Kill(-pgid, syscall.SIGTERM)
		select {
		case <-c.exited:
		case <-time.After(5 * time.Second):
			_ = syscall.Kill(-pgid, syscall.SIGKILL)
			<-c.exited
		}
	})
}

// logTail returns the last lines of the child's output, for failure messages.
func (c *child) logTail() string {
	b, err := os.ReadFile(c.logf)
	if err != nil {
		return "(no log: " + err.Error() + ")"
	}
	const max = 2000
	if len(b) > max {
		b = b[len(b)-max:]
	}
	return strings.TrimSpace(string(b))
}

// waitReady polls ready until it returns true, the child exits or the
// timeout passes.
func (c *child) waitReady(timeout time.Duration, ready func() bool) error {
	deadline := time.Now().Add(timeout)
	for {
		if ready() {
			return nil
		}
		if !c.running() {
			return fmt.Errorf("testenv: %s exited before it was ready (%v); output:\n%s", c.name, c.err, c.logTail())
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("testenv: %s not ready after %v; output:\n%s", c.name, timeout, c.logTail())
		}
		time.Sleep(100 * time.Millisecond)
	}
}
