package loadgen

import (
	"bytes"
	"errors"
	"os"
	"strconv"
	"strings"
)

// proc reads a process's RSS and CPU time from /proc (Linux); elsewhere
// both read as 0.
type proc string

// procOf is the /proc entry of pid, or of this process when pid is 0.
func procOf(pid int) proc {
	if pid <= 0 {
		return "self"
	}
	return proc(strconv.Itoa(pid))
}

// rssMB reads VmRSS from /proc/PID/status.
func (p proc) rssMB() float64 {
	b, err := os.ReadFile("/proc/" + string(p) + "/status")
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 64)
			return kb / 1024
		}
	}
	return 0
}

// cpuSeconds is user+system CPU time of the process from /proc/PID/stat.
func (p proc) cpuSeconds() float64 {
	b, err := os.ReadFile("/proc/" + string(p) + "/stat")
	if err != nil {
		return 0
	}
	// Fields after the command name (which is in parentheses).
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0
	}
	ut, err1 := strconv.ParseFloat(f[11], 64)
	st, err2 := strconv.ParseFloat(f[12], 64)
	if errors.Join(err1, err2) != nil {
		return 0
	}
	return (ut + st) / 100 // USER_HZ is 100 on Linux
}
