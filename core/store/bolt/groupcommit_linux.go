package bolt

import (
	"bytes"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// dropMapped is madvise(MADV_DONTNEED) over [addr, addr+size) (see
// unmapResident). Errors are ignored: at worst the pages stay mapped.
func dropMapped(addr, size uintptr) {
	if addr == 0 || size == 0 {
		return
	}
	_, _, _ = unix.Syscall(unix.SYS_MADVISE, addr, size, unix.MADV_DONTNEED)
}

// fileRSS reads the process's resident file-backed pages from
// /proc/self/statm (its third field, which counts shared memory too), kept
// open: a pread, a few microseconds.
type fileRSS struct{ f *os.File }

func openFileRSS() *fileRSS {
	f, err := os.Open("/proc/self/statm")
	if err != nil {
		return &fileRSS{}
	}
	return &fileRSS{f: f}
}

// bytes is the resident file-backed memory, -1 when it cannot be read.
func (r *fileRSS) bytes() int64 {
	if r.f == nil {
		return -1
	}
	var buf [128]byte
	n, _ := r.f.ReadAt(buf[:], 0)
	fields := bytes.Fields(buf[:n])
	if len(fields) < 3 {
		return -1
	}
	pages, err := strconv.ParseInt(string(fields[2]), 10, 64)
	if err != nil {
		return -1
	}
	return pages * int64(os.Getpagesize())
}

// Close closes the file.
func (r *fileRSS) Close() {
	if r.f != nil {
		r.f.Close()
	}
}
