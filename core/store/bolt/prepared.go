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
	m  map[string]writtenDoc
}

// writtenDoc is a document's stored bytes and, when the writer kept it,
// its decoded form (val, nil when not kept), which nobody modifies.
type writtenDoc struct {
	raw []byte
	val any
}

// get returns the bytes last put at k; ok is false when none were (v nil
// with ok true: the document did not exist then).
func (l *lastWritten) get(k string) (v []byte, ok bool) {
	v, _, ok = l.getDecoded(k)
	return v, ok
}

// getDecoded is get with the decoded form put with the bytes, if any.
func (l *lastWritten) getDecoded(k string) (v []byte, val any, ok bool) {
	l.mu.Lock()
	e, ok := l.m[k]
	l.mu.Unlock()
	return e.raw, e.val, ok
}

// put records v as what k holds. v is not modified afterwards by anyone.
func (l *lastWritten) put(k string, v []byte) { l.putDecoded(k, v, nil) }

// putDecoded is put with v's decoded form (nil: none), which is not
// modified afterwards by anyone either.
func (l *lastWritten) putDecoded(k string, v []byte, val any) {
	l.mu.Lock()
	if l.m == nil {
		l.m = map[string]writtenDoc{}
	}
	l.m[k] = writtenDoc{raw: v, val: val}
	l.mu.Unlock()
}
