//go:build !linux

package bolt

// dropMapped does nothing off Linux (see unmapResident).
func dropMapped(addr, size uintptr) {}

// fileRSS is not read off Linux: nothing is trimmed there.
type fileRSS struct{}

func openFileRSS() *fileRSS { return &fileRSS{} }

func (*fileRSS) bytes() int64 { return -1 }

// Close does nothing.
func (*fileRSS) Close() {}
