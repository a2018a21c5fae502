package bolt

import "golang.org/x/sys/unix"

// dropMapped is madvise(MADV_DONTNEED) over [addr, addr+size) (see
// unmapResident). Errors are ignored: at worst the pages stay mapped.
func dropMapped(addr, size uintptr) {
	if addr == 0 || size == 0 {
		return
	}
	_, _, _ = unix.Syscall(unix.SYS_MADVISE, addr, size, unix.MADV_DONTNEED)
}
