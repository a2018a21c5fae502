//go:build !linux || !(amd64 || arm64)

package bolt

// faultAround is a no-op where the userfaultfd switch is not built (see
// faultaround_linux.go): the store works with the kernel's fault-around.
type faultAround struct{ err error }

func newFaultAround(bool) *faultAround { return &faultAround{} }

func (*faultAround) cover(addr, size uintptr) {}

// Close does nothing.
func (*faultAround) Close() {}

func (f *faultAround) reason() error { return f.err }
