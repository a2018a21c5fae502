package bolt

import "golang.org/x/sys/unix"

// populate has the kernel map [addr, addr+size) of bbolt's mapping into
// the process's page tables (madvise MADV_POPULATE_READ, Linux 5.14): the
// page cache's pages, read from the file when not cached, without a page
// fault each. Errors are ignored: a page left unmapped faults when read.
func populate(addr, size uintptr) {
	_, _, _ = unix.Syscall(unix.SYS_MADVISE, addr, size, unix.MADV_POPULATE_READ)
}
