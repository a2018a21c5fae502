//go:build !linux

package bolt

// dropMapped does nothing off Linux (see unmapResident).
func dropMapped(addr, size uintptr) {}
