package bolt

import (
	"bytes"
	"sort"
	"unsafe"

	"go.etcd.io/bbolt"
)

// prefault maps the pages a hot write's transaction will read before the
// write is queued for the group commit, on the caller's goroutine. The
// group commit's one writer goroutine caps the store's write rate, and a
// good part of its time went into first reads of pages through bbolt's
// mapping (page faults, bbolt's Page.FastCheck in profiles): copy-on-write
// puts every page a commit writes at another place in the file, so a
// drone's pages are new to the mapping at each of its writes, and a trim
// drops the rest. walk, run here in a read transaction, looks up the keys
// the write will (pageWalk.path) and has the kernel map each page on the
// way with madvise(MADV_POPULATE_READ) before reading it, which costs a
// fraction of a fault (populate; a plain read off Linux). A page a commit
// moves between this and the write's transaction is faulted in by the
// writer as before: nothing depends on this but the writer's pace.
// docs/performance.md, "Round 7: the writer's page faults".
func (s *Store) prefault(walk func(w *pageWalk)) {
	if s.cfg.noPrefault {
		return
	}
	tx, err := s.db.Begin(false)
	if err != nil {
		return
	}
	info := s.db.Info()
	// The mapping is not Go memory: its address converted through a
	// variable, which go vet accepts.
	w := pageWalk{tx: tx, data: *(*unsafe.Pointer)(unsafe.Pointer(&info.Data)), psize: uintptr(info.PageSize)}
	w.npages = uintptr(tx.Size()) / w.psize
	walk(&w)
	_ = tx.Rollback()
	s.group.afterRead()
}

// pageWalk reads pages of a read transaction tx through bbolt's mapping
// at data (the transaction keeps it from being mapped anew), npages pages
// of psize bytes as of tx.
type pageWalk struct {
	tx            *bbolt.Tx
	data          unsafe.Pointer
	psize, npages uintptr
}

// bbolt's page layout (its file format, go.etcd.io/bbolt/internal/common):
// a header, then for a branch page count elements naming each child page
// by the first key under it.
type pageHeader struct {
	id       uint64
	flags    uint16
	count    uint16
	overflow uint32
}

type branchElement struct {
	pos, ksize uint32 // the key: ksize bytes pos bytes after this element
	pgid       uint64
}

const branchPageFlag = 0x01

// bucket is b's sub-bucket name with the pages to it mapped (nil: none).
func (w *pageWalk) bucket(b *bbolt.Bucket, name []byte) *bbolt.Bucket {
	if b == nil {
		return nil
	}
	w.path(b, name)
	return b.Bucket(name)
}

// path maps the pages from b's root to the leaf that holds key (or would),
// as bbolt's Cursor.Seek descends: each page is populated before it is
// read. A bucket inline in its parent's leaf has no pages of its own.
func (w *pageWalk) path(b *bbolt.Bucket, key []byte) {
	if b == nil {
		return
	}
	id := uintptr(b.Root())
	for depth := 0; depth < maxDepth; depth++ {
		if id < 2 || id >= w.npages { // 0 and 1 are the meta pages; 0 is also "inline"
			return
		}
		page := unsafe.Add(w.data, id*w.psize)
		populate(uintptr(page), w.psize)
		p := (*pageHeader)(page)
		if p.overflow > 0 && id+1+uintptr(p.overflow) <= w.npages {
			populate(uintptr(page)+w.psize, uintptr(p.overflow)*w.psize)
		}
		if p.flags != branchPageFlag || p.count == 0 {
			return
		}
		elems := unsafe.Slice((*branchElement)(unsafe.Add(page, unsafe.Sizeof(pageHeader{}))), p.count)
		exact := false
		i := sort.Search(len(elems), func(i int) bool {
			e := &elems[i]
			k := unsafe.Slice((*byte)(unsafe.Add(unsafe.Pointer(e), e.pos)), e.ksize)
			c := bytes.Compare(k, key)
			exact = exact || c == 0
			return c >= 0
		})
		if !exact && i > 0 {
			i--
		}
		id = uintptr(elems[i].pgid)
	}
}

// maxDepth bounds a descent: a B+tree of 4 KiB pages is far shallower.
const maxDepth = 32

// droneWrite maps what WriteDrone's transaction reads: the drone's
// document, its history bucket where the points go, its flight detector,
// and the flights and flight index entries pre puts (nil: not known).
func (w *pageWalk) droneWrite(tenantID, droneID string, pts []encodedPoint, detKey []byte, pre *preparedDrone) {
	w.path(w.tx.Bucket(bucketDrones), []byte(droneID))
	if len(pts) > 0 {
		h := w.bucket(w.tx.Bucket(bucketTrack), []byte(droneID))
		for i := range pts {
			if i == 0 || pts[i].key != pts[i-1].key {
				w.path(h, pts[i].key[:])
			}
		}
	}
	w.path(w.tx.Bucket(bucketFlightDetectors), detKey)
	if pre == nil || !pre.flights.ok {
		return
	}
	recs, idx := w.tx.Bucket(bucketFlights), w.tx.Bucket(bucketDroneFlights)
	for i, f := range pre.flights.ch.Upsert {
		w.path(recs, pre.flights.records[2*i])
		w.path(idx, startKey(tenantID, droneID, f.Start))
	}
}
