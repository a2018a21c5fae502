package bolt

import "sync"

// lastWritten holds the stored bytes of the documents the hot writes
// (WriteDrone, EvaluateAlerts) read and write with every report, as they
// last left them, by key (a drone id, or a tenant\0drone\0 key). A write
// works out its values from them before its transaction, and the
// transaction compares them with what it reads: bytes that are stale
// (another write came between, a failed commit, a deleted drone) cost only
// the work done again in the transaction, never a wrong write. One entry a
// drone and kind, about a kilobyte a drone.
type lastWritten struct {
	mu sync.Mutex
	m  map[string][]byte
}

// get returns the bytes last put at k; ok is false when none were (v nil
// with ok true: the document did not exist then).
func (l *lastWritten) get(k string) (v []byte, ok bool) {
	l.mu.Lock()
	v, ok = l.m[k]
	l.mu.Unlock()
	return v, ok
}

// put records v as what k holds. v is not modified afterwards by anyone.
func (l *lastWritten) put(k string, v []byte) {
	l.mu.Lock()
	if l.m == nil {
		l.m = map[string][]byte{}
	}
	l.m[k] = v
	l.mu.Unlock()
}
