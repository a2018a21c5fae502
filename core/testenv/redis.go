package testenv

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// DefaultRedisAddr is where a developer machine or CI usually runs Redis.
const DefaultRedisAddr = "127.0.0.1:6379"

var (
	redisOnce sync.Once
	redisAddr string
	redisErr  error
)

// Redis returns the address of a Redis server shared by the test binary:
// REDIS_ADDR when set (it must answer PING), else DefaultRedisAddr when it
// answers PING, else a redis-server started for this binary (no persistence)
// and stopped when it exits. Tests sharing it must use their own keys or
// database; use StartRedis for a server a test may kill.
func Redis(t testing.TB) string {
	t.Helper()
	redisOnce.Do(func() { redisAddr, redisErr = sharedRedis() })
	if redisErr != nil {
		t.Fatalf("Redis unavailable: %v", redisErr)
	}
	return redisAddr
}

func sharedRedis() (string, error) {
	if a := os.Getenv("REDIS_ADDR"); a != "" {
		if err := redisPing(a); err != nil {
			return "", fmt.Errorf("REDIS_ADDR=%s does not answer PING: %w", a, err)
		}
		return a, nil
	}
	if redisPing(DefaultRedisAddr) == nil {
		return DefaultRedisAddr, nil
	}
	dir, err := os.MkdirTemp("", "testenv-redis-")
	if err != nil {
		return "", fmt.Errorf("temp dir: %w", err)
	}
	addr, c, err := startRedis(dir, 0)
	if err != nil {
		os.RemoveAll(dir)
		return "", fmt.Errorf("nothing answers PING at %s and %w", DefaultRedisAddr, err)
	}
	atExit(func() {
		c.stop()
		os.RemoveAll(dir)
	})
	return addr, nil
}

// StartRedis starts a private redis-server for this test alone, in a
// directory of its own with persistence off, and returns its address and a
// stop function: for tests that kill Redis mid-way. stop is idempotent and
// also runs at the end of the test. RestartRedis brings it back on the same
// address.
func StartRedis(t testing.TB) (addr string, stop func()) {
	t.Helper()
	addr, c, err := startRedis(t.TempDir(), 0)
	if err != nil {
		t.Fatalf("start private Redis: %v", err)
	}
	t.Cleanup(c.stop)
	private.put(addr, c)
	return addr, c.stop
}

// RestartRedis starts a private redis-server on addr (from an earlier
// StartRedis whose server was stopped), empty, and returns its stop function.
func RestartRedis(t testing.TB, addr string) (stop func()) {
	t.Helper()
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatalf("restart Redis at %q: %v", addr, err)
	}
	port, err := strconv.Atoi(p)
	if err != nil || port == 0 {
		t.Fatalf("restart Redis at %q: bad port", addr)
	}
	_, c, err := startRedis(t.TempDir(), port)
	if err != nil {
		t.Fatalf("restart Redis at %s: %v", addr, err)
	}
	t.Cleanup(c.stop)
	private.put(addr, c)
	return c.stop
}

// FreezeRedis stops the private redis-server at addr (from StartRedis or
// RestartRedis) with SIGSTOP: connections stay open and commands never
// answer, as in a partition or a stalled server. thaw resumes it (SIGCONT);
// it also runs at the end of the test.
func FreezeRedis(t testing.TB, addr string) (thaw func()) {
	t.Helper()
	c := private.get(addr)
	if c == nil || !c.running() {
		t.Fatalf("FreezeRedis %s: no running private redis-server there (StartRedis)", addr)
	}
	pgid := c.cmd.Process.Pid
	if err := syscall.Kill(-pgid, syscall.SIGSTOP); err != nil {
		t.Fatalf("FreezeRedis %s: %v", addr, err)
	}
	var once sync.Once
	thaw = func() { once.Do(func() { _ = syscall.Kill(-pgid, syscall.SIGCONT) }) }
	t.Cleanup(thaw) // registered after stop's cleanup, so it runs first: a frozen process ignores SIGTERM
	return thaw
}

// private maps the address of each private redis-server to its process,
// for FreezeRedis.
var private = &children{m: map[string]*child{}}

type children struct {
	mu sync.Mutex
	m  map[string]*child
}

func (cs *children) put(addr string, c *child) {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	cs.m[addr] = c
}

func (cs *children) get(addr string) *child {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	return cs.m[addr]
}

// startRedis starts redis-server in dir on port (a free one when 0) and
// waits until it answers PING.
func startRedis(dir string, port int) (string, *child, error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return "", nil, fmt.Errorf("redis-server not found on PATH (%v): install redis-server or set REDIS_ADDR", err)
	}
	fixed := port != 0
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		if !fixed {
			if port, err = freePort(); err != nil {
				return "", nil, err
			}
		}
		addr := "127.0.0.1:" + strconv.Itoa(port)
		c, err := startChild("redis-server", filepath.Join(dir, fmt.Sprintf("redis-%d.log", port)), dir,
			bin, "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
			"--dir", dir)
		if err != nil {
			return "", nil, err
		}
		if err := c.waitReady(20*time.Second, func() bool { return redisPing(addr) == nil }); err != nil {
			c.stop()
			lastErr = err
			if fixed {
				break
			}
			continue
		}
		return addr, c, nil
	}
	return "", nil, lastErr
}

// redisPing sends PING in RESP and expects +PONG, without a client library,
// so testenv does not pull one into every test binary.
func redisPing(addr string) error {
	conn, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := conn.Write([]byte("*1\r\n$4\r\nPING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		return err
	}
	if strings.TrimSpace(line) != "+PONG" {
		return fmt.Errorf("PING answered %q", strings.TrimSpace(line))
	}
	return nil
}
