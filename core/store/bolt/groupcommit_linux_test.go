package bolt

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dronetrack/dronetrack/core/store"
	"github.com/dronetrack/dronetrack/core/store/storeurl"
	"github.com/google/go-cmp/cmp"
	bbolt "go.etcd.io/bbolt"
	"golang.org/x/sys/unix"
)

// mappedKB is the resident size of this process's mappings of path
// (/proc/self/smaps).
func mappedKB(t *testing.T, path string) int {
	t.Helper()
	f, err := os.Open("/proc/self/smaps")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	kb, in := 0, false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) > 0 && strings.Contains(fields[0], "-") && !strings.HasSuffix(fields[0], ":") {
			in = len(fields) >= 6 && fields[len(fields)-1] == path
			continue
		}
		if in && len(fields) >= 2 && fields[0] == "Rss:" {
			n, _ := strconv.Atoi(fields[1])
			kb += n
		}
	}
	return kb
}

// The store's file pages a read touched leave the process's resident set
// when the group commit trims, and what the store holds reads the same
// afterwards.
func TestUnmapResidentKeepsData(t *testing.T) {
	ctx := context.Background()
	s, path, t0 := openWithHistory(t, nil, "d1", "d2")
	read := func() []store.TrackPoint {
		var all []store.TrackPoint
		for _, d := range []string{"d1", "d2"} {
			got, err := s.Track(ctx, store.TrackQuery{TenantID: "a", DroneID: d, From: t0, To: t0.Add(time.Hour * 2)})
			if err != nil {
				t.Fatal(err)
			}
			all = append(all, got...)
		}
		return all
	}
	before := read()
	if len(before) != 8000 {
		t.Fatalf("read %d points, want 8000", len(before))
	}
	if kb := mappedKB(t, path); kb == 0 {
		t.Fatal("no page of the store file resident after reading it: the check would prove nothing")
	}
	s.group.unmapResident()
	if kb := mappedKB(t, path); kb != 0 {
		t.Errorf("%d kB of the store file still resident after unmapResident, want 0", kb)
	}
	if diff := cmp.Diff(before, read()); diff != "" {
		t.Errorf("points read after unmapResident differ (-before +after):\n%s", diff)
	}
	// Writes go on over the dropped pages.
	if err := s.AppendTrack(ctx, []store.TrackPoint{pt("a", "d1", t0.Add(5000*time.Second), time.Time{})}); err != nil {
		t.Fatal(err)
	}
	if got := read(); len(got) != 8001 {
		t.Errorf("read %d points after another write, want 8001", len(got))
	}
}

// Pages that reads alone mapped (no write after them, so no write loop to
// trim them) leave the process's resident set by themselves.
func TestReadOnlyBurstIsTrimmed(t *testing.T) {
	ctx := context.Background()
	s, path, t0 := openWithHistory(t, nil, "d1")
	// Whatever the writes mapped is trimmed first, so what is resident
	// below is the reads'.
	waitMapped(t, path, "after the writes")
	got, err := s.Track(ctx, store.TrackQuery{TenantID: "a", DroneID: "d1", From: t0, To: t0.Add(2 * time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 4000 {
		t.Fatalf("read %d points, want 4000", len(got))
	}
	if kb := mappedKB(t, path); kb == 0 {
		t.Fatal("no page of the store file resident after reading it: the check would prove nothing")
	}
	waitMapped(t, path, "after a read with no write after it")
}

// waitMapped waits until no page of the store file is resident; the trim
// runs on a timer, so the wait is generous and only its end is checked.
func waitMapped(t *testing.T, path, when string) {
	t.Helper()
	deadline := time.Now().Add(20 * trimEvery)
	for {
		kb := mappedKB(t, path)
		if kb == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d kB of the store file still resident %s", kb, when)
		}
		time.Sleep(trimEvery / 10)
	}
}

// openWithHistory opens a store in a test's temp dir (closed when the test
// ends), with opts besides WithPruneEvery(0), with drones of tenant a, each given 4,000 points of history a
// second apart from the returned time, written in 20 transactions.
func openWithHistory(t *testing.T, opts []Option, drones ...string) (*Store, string, time.Time) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "s.db")
	s, err := Open(path, append([]Option{WithPruneEvery(0)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	owners := map[string]string{}
	for _, d := range drones {
		owners[d] = "a"
	}
	setup(t, s, owners)
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for b := range 20 {
		var pts []store.TrackPoint
		for i := range 200 {
			ts := t0.Add(time.Duration(b*200+i) * time.Second)
			for _, d := range drones {
				pts = append(pts, pt("a", d, ts, time.Time{}))
			}
		}
		if err := s.AppendTrack(context.Background(), pts); err != nil {
			t.Fatal(err)
		}
	}
	return s, path, t0
}

// A page of the store file read through bbolt's mapping puts that page in
// the process's resident set, not the 64 KiB or more around it that the
// kernel's fault-around would map with it.
func TestReadMapsOnlyPagesRead(t *testing.T) {
	// Enough history for a file of well over 1 MiB (16 pages 64 KiB apart).
	s, path, _ := openWithHistory(t, nil, "d1", "d2", "d3", "d4", "d5", "d6", "d7", "d8", "d9", "d10")
	requireFaultAroundOff(t, s)
	const pages = 16
	err := s.db.View(func(tx *bbolt.Tx) error {
		size, ps := int(tx.Size()), s.db.Info().PageSize
		if size < pages*64<<10 {
			t.Fatalf("store file of %d bytes: too small to read %d pages 64 KiB apart", size, pages)
		}
		s.group.unmapResident()
		for i := range pages { // a page in the middle of each 16th of the file
			if _, err := tx.Page((2*i + 1) * size / (2 * pages) / ps); err != nil {
				return err
			}
		}
		// The two meta pages that View read before the trim come back
		// with the next transaction, so allow for them.
		if kb, want := mappedKB(t, path), (pages+2)*ps/1024; kb > want {
			t.Errorf("%d kB of the store file resident after reading %d pages: want at most %d", kb, pages, want)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// While the writer is busy, what reads map is trimmed only once the
// resident file pages have grown by the budget: a trim makes the writer
// fault its pages in again. Once it goes quiet, they are trimmed anyway.
func TestBusyWriterTrimsByBudget(t *testing.T) {
	for _, c := range []struct {
		name   string
		budget int64
		trims  bool // while the write is in progress
	}{
		{"under budget", 1 << 40, false},
		{"over budget", 1, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			ctx := context.Background()
			s, path, t0 := openWithHistory(t, []Option{WithTrimBudget(c.budget)}, "d1", "d2", "d3", "d4")
			waitMapped(t, path, "after the writes")
			// A write that holds the writer in its commit until released.
			started, release, done := make(chan struct{}), make(chan struct{}), make(chan error, 1)
			go func() {
				done <- s.group.do(func(*bbolt.Tx) error {
					select {
					case <-started:
					default:
						close(started)
					}
					<-release
					return nil
				})
			}()
			<-started
			trims := s.group.trims.Load()
			for _, d := range []string{"d1", "d2", "d3", "d4"} {
				if _, err := s.Track(ctx, store.TrackQuery{TenantID: "a", DroneID: d, From: t0, To: t0.Add(2 * time.Hour)}); err != nil {
					t.Fatal(err)
				}
			}
			if c.trims {
				deadline := time.Now().Add(20 * trimEvery)
				for s.group.trims.Load() == trims {
					if time.Now().After(deadline) {
						t.Fatal("no trim while the writer was busy, with the budget exceeded")
					}
					time.Sleep(trimEvery / 10)
				}
			} else {
				time.Sleep(4 * trimEvery) // the timer armed by the reads has fired
				if n := s.group.trims.Load() - trims; n != 0 {
					t.Errorf("%d trims while the writer was busy, under budget: want none", n)
				}
				if kb := mappedKB(t, path); kb == 0 {
					t.Error("the reads' pages are not resident while the writer is busy, under budget")
				}
			}
			close(release)
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			waitMapped(t, path, "after the writer went quiet")
		})
	}
}

// requireFaultAroundOff fails the test when s could not turn fault-around
// off, unless the kernel predates UFFD_FEATURE_WP_ASYNC (Linux 6.7), where
// the store runs with it on by design: on a kernel that has it, a refusal
// (a seccomp filter, say) is what the test is there to catch.
func requireFaultAroundOff(t *testing.T, s *Store) {
	t.Helper()
	err := s.FaultAround()
	if err == nil {
		return
	}
	var u unix.Utsname
	if unix.Uname(&u) == nil {
		var major, minor int
		if _, scanErr := fmt.Sscanf(unix.ByteSliceToString(u.Release[:]), "%d.%d", &major, &minor); scanErr == nil && (major < 6 || major == 6 && minor < 7) {
			t.Skipf("Linux %d.%d has no userfaultfd WP_ASYNC (6.7+): the store keeps fault-around on here (%v)", major, minor, err)
		}
	}
	t.Fatalf("fault-around could not be turned off for the store mapping on this kernel: %v", err)
}

// faultaround=on in a store URL leaves the kernel's fault-around on (no
// userfaultfd registration); by default it is turned off, and the two
// settings cannot share one open file.
func TestURLFaultAround(t *testing.T) {
	dir := t.TempDir()
	open := func(path, query string) *Store {
		t.Helper()
		st, err := storeurl.Open(context.Background(), "bolt://"+filepath.ToSlash(filepath.Join(dir, path))+query)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		return st.(*handle).Store
	}
	requireFaultAroundOff(t, open("default.db", ""))
	if on := open("on.db", "?faultaround=on"); on.group.faults.fd >= 0 || on.FaultAround() != nil {
		// Left on by choice: nothing for up to warn of.
		t.Errorf("faultaround=on: userfaultfd %d (FaultAround %v), want none opened and no reason", on.group.faults.fd, on.FaultAround())
	}
	if st, err := storeurl.Open(context.Background(), "bolt://"+filepath.ToSlash(filepath.Join(dir, "on.db"))+"?faultaround=off"); err == nil {
		st.Close()
		t.Error("the same file opened with faultaround=off while open with faultaround=on")
	}
	if _, err := storeurl.Open(context.Background(), "bolt://"+filepath.ToSlash(filepath.Join(dir, "x.db"))+"?faultaround=maybe"); err == nil || !strings.Contains(err.Error(), "faultaround") {
		t.Errorf("faultaround=maybe: %v, want an error naming the option", err)
	}
}
