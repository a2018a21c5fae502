//go:build !linux

package bolt

// populate does nothing off Linux: the walk's reads fault the pages in.
func populate(addr, size uintptr) {}
