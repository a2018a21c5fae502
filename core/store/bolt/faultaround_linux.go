//go:build linux && (amd64 || arm64)

package bolt

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"unsafe"

	"golang.org/x/sys/unix"
)

// faultAround turns the kernel's fault-around off for bbolt's mapping of
// the store file. On a fault in a file mapping Linux maps, besides the page
// faulted on, the neighbouring pages the page cache holds (64 KiB around
// it, or the whole large folio): every page a transaction touches puts 16
// or more in the process's resident set, so what accumulates between trims
// (unmapResident) is mostly pages nobody read (docs/performance.md, "Round
// 6: resident store pages"). madvise(MADV_RANDOM), which bbolt sets, stops
// readahead but not fault-around, and fault_around_bytes is a system-wide
// debugfs knob. The one per-mapping switch is a userfaultfd registration in
// write-protect mode: the kernel does no fault-around in such a mapping
// (mm/memory.c, uffd_disable_fault_around). Registered with
// UFFD_FEATURE_WP_ASYNC (Linux 6.7) and never write-protecting a page, the
// registration changes nothing else: the mapping is read-only, and a read
// faults as before but maps the one page it reads. UFFD_USER_MODE_ONLY makes it available
// without privileges. Where the kernel or a seccomp filter refuses, the
// store works as before (fault-around on).
type faultAround struct {
	mu         sync.Mutex
	fd         int     // the userfaultfd, -1 when unavailable or not wanted
	addr, size uintptr // bbolt's mapping and file size when registered last
	err        error   // why fd is -1 (tests)
}

// userfaultfd ABI (linux/userfaultfd.h); the ioctl numbers are those of
// the generic ioctl encoding (amd64, arm64).
const (
	uffdUserModeOnly   = 1       // UFFD_USER_MODE_ONLY
	uffdAPI            = 0xaa    // UFFD_API
	uffdFeatureWPAsync = 1 << 15 // UFFD_FEATURE_WP_ASYNC
	uffdRegisterModeWP = 1 << 1  // UFFDIO_REGISTER_MODE_WP
	uffdioAPI          = 0xc018aa3f
	uffdioRegister     = 0xc020aa00
)

// newFaultAround opens the userfaultfd that turns fault-around off (on:
// none, fault-around stays on).
func newFaultAround(on bool) *faultAround {
	f := &faultAround{fd: -1}
	if on {
		return f
	}
	fd, _, e := unix.Syscall(unix.SYS_USERFAULTFD, unix.O_CLOEXEC|unix.O_NONBLOCK|uffdUserModeOnly, 0, 0)
	if e != 0 {
		f.err = fmt.Errorf("userfaultfd: %w", e)
		return f
	}
	api := struct{ api, features, ioctls uint64 }{api: uffdAPI, features: uffdFeatureWPAsync}
	if _, _, e := unix.Syscall(unix.SYS_IOCTL, fd, uffdioAPI, uintptr(unsafe.Pointer(&api))); e != 0 {
		unix.Close(int(fd))
		f.err = fmt.Errorf("userfaultfd API with WP_ASYNC: %w", e)
		return f
	}
	f.fd = int(fd)
	return f
}

// cover registers bbolt's mapping, which starts at addr, for a file of size
// bytes; the caller holds a read transaction, which keeps bbolt from
// mapping the file anew meanwhile. bbolt maps it anew only as the file
// grows, so an unchanged addr and size need no look at /proc. It does
// nothing once registration failed: the store then works with
// fault-around.
func (f *faultAround) cover(addr, size uintptr) {
	if addr == 0 {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fd < 0 || (addr == f.addr && size == f.size) {
		return
	}
	start, end, err := mappingAt(addr)
	if err == nil {
		reg := struct{ start, len, mode, ioctls uint64 }{start: uint64(start), len: uint64(end - start), mode: uffdRegisterModeWP}
		if _, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(f.fd), uffdioRegister, uintptr(unsafe.Pointer(&reg))); e != 0 {
			err = fmt.Errorf("userfaultfd register %#x-%#x: %w", start, end, e)
		}
	}
	if err != nil {
		f.err = err
		f.close()
		return
	}
	f.addr, f.size = addr, size
}

// close drops the registration (the kernel ends it with the descriptor).
func (f *faultAround) close() {
	if f.fd >= 0 {
		unix.Close(f.fd)
		f.fd = -1
	}
}

// reason is why fault-around is on against the store's wish; nil if it
// is not.
func (f *faultAround) reason() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.err
}

// Close ends the registration.
func (f *faultAround) Close() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.close()
}

// mappingAt is the mapping that starts at addr (/proc/self/maps), whole:
// registering part of it would split it.
func mappingAt(addr uintptr) (start, end uintptr, err error) {
	m, err := os.Open("/proc/self/maps")
	if err != nil {
		return 0, 0, err
	}
	defer m.Close()
	sc := bufio.NewScanner(m)
	for sc.Scan() {
		r, _, _ := strings.Cut(sc.Text(), " ")
		lo, hi, ok := strings.Cut(r, "-")
		if !ok {
			continue
		}
		s, err1 := strconv.ParseUint(lo, 16, 64)
		e, err2 := strconv.ParseUint(hi, 16, 64)
		if err1 == nil && err2 == nil && uintptr(s) == addr {
			return addr, uintptr(e), nil
		}
	}
	if err := sc.Err(); err != nil {
		return 0, 0, err
	}
	return 0, 0, fmt.Errorf("no mapping at %#x", addr)
}
