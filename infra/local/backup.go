package local

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/dronetrack/dronetrack/core/broker"
	"github.com/dronetrack/dronetrack/core/problem"
	"github.com/dronetrack/dronetrack/core/store/bolt"
)

// Backups. `dronetrack backup` asks the running up (through its loopback
// admin endpoint: the bolt file and the broker's queue are that process's)
// for one consistent snapshot of its data dir, a gzipped tar:
//
//	backup.json           backupInfo, first
//	pepper, demo-keys.json, demo-login.json, acme/*   the data dir's files
//	broker-pending.jsonl  broker.PendingEvent per line: accepted events
//	                      some Trigger had not acknowledged
//	broker-deadletters.jsonl  the broker's dead letters, one per line
//	store.db              the bbolt store (Tx.WriteTo hot backup), last
//
// Consistency (broker.Snapshot): the broker holds new deliveries, writes
// its unacknowledged events, the store's read transaction begins, and
// deliveries resume. So every report acknowledged with 202 before the
// backup began is in store.db or among the pending events (which `up`
// delivers again after a restore), and a report accepted later has no
// effect in store.db. `dronetrack restore` unpacks it into a new data dir.
const (
	BackupInfoName    = "backup.json"
	BackupPendingName = "broker-pending.jsonl"
	BackupDeadName    = "broker-deadletters.jsonl"
	// BackupFormat is the layout of the archive itself.
	BackupFormat = 1
	// PendingFile holds, in a restored data dir, the pending events of
	// the backup until `up` has handed them to its broker.
	PendingFile = "restore-pending.jsonl"
	// DeadFile holds a restored backup's dead letters until up has
	// recorded them in its broker.
	DeadFile = "restore-deadletters.jsonl"
)

// backedUpFiles are the data dir's own files a backup carries besides the
// store and the queue: the key pepper (without it no drone key works) and
// the demo's keys and login. admin.json (a running process's address) and
// store-url are not: a backup is of a data dir with its bolt store.
var backedUpFiles = []string{PepperFile, DemoKeysFile, DemoLoginFile}

// BackupInfo is backup.json.
type BackupInfo struct {
	BackupFormat  int       `json:"backupFormat"`
	DataDirFormat int       `json:"dataDirFormat"`
	CreatedAt     time.Time `json:"createdAt"`
	StoreBytes    int64     `json:"storeBytes"`
	PendingEvents int       `json:"pendingEvents"`
	DeadLetters   int       `json:"deadLetters"`
	// DeliveriesHeld is how long the broker held new deliveries to take
	// the snapshot.
	DeliveriesHeld string   `json:"deliveriesHeld"`
	Files          []string `json:"files"`
}

// backupRoutes adds POST /admin/v1/backup to the admin endpoint of up.
func (s *System) backupRoutes(mux *http.ServeMux) {
	mux.HandleFunc("POST /admin/v1/backup", func(w http.ResponseWriter, r *http.Request) {
		started := false
		sw := &startWriter{w: w, start: func() {
			started = true
			w.Header().Set("Content-Type", "application/gzip")
			w.WriteHeader(http.StatusOK)
		}}
		info, err := s.Backup(r.Context(), sw)
		if err != nil {
			s.log.Error("backup failed", "err", err)
			if !started {
				problem.Write(w, http.StatusInternalServerError, "backup failed", err.Error())
				return
			}
			panic(http.ErrAbortHandler) // cut the stream: the client sees it incomplete
		}
		s.log.Info("backup taken", "store_bytes", info.StoreBytes, "pending_events", info.PendingEvents, "deliveries_held", info.DeliveriesHeld)
	})
}

// startWriter calls start before the first byte, so an error before any
// output can still be answered with a problem.
type startWriter struct {
	w     io.Writer
	start func()
	done  bool
}

func (s *startWriter) Write(p []byte) (int, error) {
	if !s.done {
		s.done = true
		s.start()
	}
	return s.w.Write(p)
}

// Backup writes one consistent backup of the running system to w.
func (s *System) Backup(ctx context.Context, w io.Writer) (BackupInfo, error) {
	info := BackupInfo{BackupFormat: BackupFormat, DataDirFormat: DataDirFormat, CreatedAt: time.Now().UTC()}
	if s.storeURL != StoreURL(s.dir) {
		return info, fmt.Errorf("this up runs on store %s, not the data dir's bolt file: back that store up with its own tools (docs/operations.md)", RedactURL(s.storeURL))
	}
	snapper, ok := s.store.(interface {
		BeginSnapshot() (*bolt.Snapshot, error)
	})
	if !ok {
		return info, errors.New("the store does not support hot backups")
	}
	bh, ok := s.broker.(*brokerHost)
	if !ok {
		return info, errors.New("the broker does not support backups")
	}

	// Pending events go to a temporary file first: their count and size
	// must be known before the archive names them, and the broker holds
	// deliveries only while they are written.
	tmp, err := os.CreateTemp(s.dir, ".backup-pending-*")
	if err != nil {
		return info, fmt.Errorf("backup: %w", err)
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	buf := bufio.NewWriter(tmp)
	enc := json.NewEncoder(buf)
	var sn *bolt.Snapshot
	stats, err := bh.b.Snapshot(ctx, func(pe broker.PendingEvent) error { return enc.Encode(pe) },
		func() (err error) { sn, err = snapper.BeginSnapshot(); return err })
	if err != nil {
		return info, fmt.Errorf("backup: %w", err)
	}
	defer sn.Close()
	if err := buf.Flush(); err != nil {
		return info, fmt.Errorf("backup: %w", err)
	}
	info.PendingEvents = stats.Events

	// Dead letters, after the hold: one recorded meanwhile belongs to an
	// event that was unacknowledged when the floors were read, so it is
	// also pending; after a restore it is delivered (and may fail) again.
	deadTmp, err := os.CreateTemp(s.dir, ".backup-deadletters-*")
	if err != nil {
		return info, fmt.Errorf("backup: %w", err)
	}
	defer os.Remove(deadTmp.Name())
	defer deadTmp.Close()
	deadBuf := bufio.NewWriter(deadTmp)
	if info.DeadLetters, err = bh.b.ExportDeadLetters(ctx, func(raw json.RawMessage) error {
		_, err := deadBuf.Write(append(append([]byte(nil), raw...), '\n'))
		return err
	}); err != nil {
		return info, fmt.Errorf("backup: %w", err)
	}
	if err := deadBuf.Flush(); err != nil {
		return info, fmt.Errorf("backup: %w", err)
	}
	info.DeliveriesHeld = stats.Paused.Round(time.Microsecond).String()
	info.StoreBytes = sn.Size()

	var files []string
	for _, f := range backedUpFiles {
		if _, err := os.Stat(filepath.Join(s.dir, f)); err == nil {
			files = append(files, f)
		}
	}
	acme, _ := os.ReadDir(filepath.Join(s.dir, acmeCacheDir))
	for _, e := range acme {
		if e.Type().IsRegular() {
			files = append(files, path.Join(acmeCacheDir, e.Name()))
		}
	}
	info.Files = files

	gz := gzip.NewWriter(w)
	tw := tar.NewWriter(gz)
	meta, _ := json.MarshalIndent(info, "", "  ")
	if err := AddBytes(tw, BackupInfoName, meta); err != nil {
		return info, err
	}
	for _, f := range files {
		b, err := os.ReadFile(filepath.Join(s.dir, filepath.FromSlash(f)))
		if err != nil {
			return info, fmt.Errorf("backup: %w", err)
		}
		if err := AddBytes(tw, f, b); err != nil {
			return info, err
		}
	}
	for _, spool := range []struct {
		name string
		f    *os.File
	}{{BackupPendingName, tmp}, {BackupDeadName, deadTmp}} {
		if err := addSpooled(tw, spool.name, spool.f, info.CreatedAt); err != nil {
			return info, fmt.Errorf("backup: %s: %w", spool.name, err)
		}
	}
	if err := tw.WriteHeader(&tar.Header{Name: StoreFile, Mode: 0o600, Size: sn.Size(), ModTime: info.CreatedAt}); err != nil {
		return info, err
	}
	if _, err := sn.WriteTo(tw); err != nil {
		return info, fmt.Errorf("backup: store: %w", err)
	}
	if err := tw.Close(); err != nil {
		return info, err
	}
	return info, gz.Close()
}

// addSpooled adds everything written to f so far as the entry name.
func addSpooled(tw *tar.Writer, name string, f *os.File, at time.Time) error {
	size, err := f.Seek(0, io.SeekCurrent)
	if err != nil {
		return err
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return err
	}
	if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o600, Size: size, ModTime: at}); err != nil {
		return err
	}
	_, err = io.CopyN(tw, f, size)
	return err
}

// AddBytes adds one file of content b to the backup archive.
func AddBytes(tw *tar.Writer, name string, b []byte) error {
	if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o600, Size: int64(len(b)), ModTime: time.Now()}); err != nil {
		return err
	}
	_, err := tw.Write(b)
	return err
}

// Backup streams the running up's backup into path: through a temporary
// file that is checked whole (a cut stream fails the gzip or tar reader)
// and synced before it is renamed into place.
func (r *RemoteAdmin) Backup(ctx context.Context, dst string) (BackupInfo, error) {
	var info BackupInfo
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.info.URL+"/admin/v1/backup", nil)
	if err != nil {
		return info, err
	}
	req.Header.Set("Authorization", "Bearer "+r.info.Token)
	resp, err := (&http.Client{}).Do(req) // no timeout: the store may be large
	if err != nil {
		return info, fmt.Errorf("backup: admin endpoint of the running up: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		var p struct{ Detail string }
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		if json.Unmarshal(b, &p) == nil && p.Detail != "" {
			return info, errors.New("backup: " + p.Detail)
		}
		return info, fmt.Errorf("backup: %s: %s", resp.Status, bytes.TrimSpace(b))
	}
	tmp, err := os.CreateTemp(filepath.Dir(dst), "."+filepath.Base(dst)+".partial-*")
	if err != nil {
		return info, fmt.Errorf("backup: %w", err)
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	if err := tmp.Chmod(0o600); err != nil { // it holds the pepper
		return info, err
	}
	if _, err := io.Copy(tmp, resp.Body); err != nil {
		return info, fmt.Errorf("backup: transfer cut short: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		return info, err
	}
	if _, err := tmp.Seek(0, io.SeekStart); err != nil {
		return info, err
	}
	if info, err = readBackup(tmp, nil); err != nil {
		return info, fmt.Errorf("backup: the archive received does not check out: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return info, err
	}
	if err := os.Rename(tmp.Name(), dst); err != nil {
		return info, fmt.Errorf("backup: %w", err)
	}
	return info, nil
}

// readBackup reads a backup archive whole, checking its layout, sizes and
// pending events, and hands every entry but backup.json to put (nil: only
// check).
func readBackup(r io.Reader, put func(name string, rd io.Reader) error) (BackupInfo, error) {
	var info BackupInfo
	gz, err := gzip.NewReader(r)
	if err != nil {
		return info, fmt.Errorf("not a dronetrack backup (gzip): %w", err)
	}
	tr := tar.NewReader(gz)
	seen := map[string]bool{}
	counts := map[string]int{}
	for i := 0; ; i++ {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return info, fmt.Errorf("archive: %w", err)
		}
		name := h.Name
		if i == 0 {
			if name != BackupInfoName {
				return info, fmt.Errorf("not a dronetrack backup: it starts with %q, not %s", name, BackupInfoName)
			}
			if err := json.NewDecoder(io.LimitReader(tr, 1<<20)).Decode(&info); err != nil {
				return info, fmt.Errorf("%s: %w", BackupInfoName, err)
			}
			switch {
			case info.BackupFormat > BackupFormat:
				return info, fmt.Errorf("backup format %d is newer than this dronetrack reads (%d): restore it with the release that took it", info.BackupFormat, BackupFormat)
			case info.DataDirFormat > DataDirFormat:
				return info, fmt.Errorf("%w: the backup holds a data dir of format %d, this dronetrack reads format %d at most", ErrNewerFormat, info.DataDirFormat, DataDirFormat)
			}
			continue
		}
		if h.Typeflag != tar.TypeReg || seen[name] || !backupEntryOK(name) {
			return info, fmt.Errorf("unexpected entry %q in the backup", name)
		}
		seen[name] = true
		var rd io.Reader = tr
		var lines *lineChecker
		switch name {
		case BackupPendingName:
			lines = &lineChecker{r: tr, name: name, ok: pendingOK}
		case BackupDeadName:
			lines = &lineChecker{r: tr, name: name, ok: deadLetterOK}
		}
		if lines != nil {
			rd = lines
		}
		if put == nil {
			if _, err := io.Copy(io.Discard, rd); err != nil {
				return info, fmt.Errorf("%s: %w", name, err)
			}
			if lines != nil {
				counts[name] = lines.n
			}
			continue
		}
		if err := put(name, rd); err != nil {
			return info, err
		}
		if lines != nil {
			if _, err := io.Copy(io.Discard, rd); err != nil { // put may stop early
				return info, err
			}
			counts[name] = lines.n
		}
	}
	if info.BackupFormat == 0 {
		return info, errors.New("empty archive: not a dronetrack backup")
	}
	for _, want := range []string{StoreFile, BackupPendingName, PepperFile} {
		if !seen[want] {
			return info, fmt.Errorf("the backup lacks %s (cut short?)", want)
		}
	}
	if n := counts[BackupPendingName]; n != info.PendingEvents {
		return info, fmt.Errorf("the backup holds %d pending events, its %s says %d", n, BackupInfoName, info.PendingEvents)
	}
	if n := counts[BackupDeadName]; n != info.DeadLetters {
		return info, fmt.Errorf("the backup holds %d dead letters, its %s says %d", n, BackupInfoName, info.DeadLetters)
	}
	// The gzip trailer's checksum is verified at EOF.
	if _, err := io.Copy(io.Discard, gz); err != nil {
		return info, fmt.Errorf("archive: %w", err)
	}
	return info, nil
}

// lineChecker passes a JSON-lines entry of a backup through, counting
// its lines and checking each with ok; a bad line fails the read.
type lineChecker struct {
	r       io.Reader
	name    string
	ok      func([]byte) bool
	partial []byte
	n       int
}

func (c *lineChecker) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.partial = append(c.partial, p[:n]...)
	for {
		i := bytes.IndexByte(c.partial, '\n')
		if i < 0 {
			break
		}
		if cerr := c.check(c.partial[:i]); cerr != nil {
			return n, cerr
		}
		c.partial = c.partial[i+1:]
	}
	if errors.Is(err, io.EOF) && len(bytes.TrimSpace(c.partial)) > 0 {
		if cerr := c.check(c.partial); cerr != nil {
			return n, cerr
		}
		c.partial = nil
	}
	return n, err
}

func (c *lineChecker) check(line []byte) error {
	if !c.ok(line) {
		return fmt.Errorf("%s line %d is not what it should hold", c.name, c.n+1)
	}
	c.n++
	return nil
}

func pendingOK(line []byte) bool {
	var pe broker.PendingEvent
	return json.Unmarshal(line, &pe) == nil && len(pe.Triggers) > 0 && json.Valid(pe.Event)
}

func deadLetterOK(line []byte) bool {
	var dl broker.DeadLetter
	return json.Unmarshal(line, &dl) == nil && dl.Trigger != "" && dl.Event.ID() != ""
}

// backupEntryOK says whether name belongs in a backup: the known files,
// and plain names under acme/ (never a path that climbs out).
func backupEntryOK(name string) bool {
	switch name {
	case StoreFile, BackupPendingName, BackupDeadName:
		return true
	}
	for _, f := range backedUpFiles {
		if name == f {
			return true
		}
	}
	dir, base := path.Split(name)
	return dir == acmeCacheDir+"/" && base != "" && base != "." && base != ".." && !strings.ContainsAny(base, `/\`)
}

// RestoreBackup unpacks a backup into a new data dir: into a temporary
// sibling first, checked whole (the store opens, the pending events parse),
// then renamed into place, so a failed restore leaves no half data dir.
func RestoreBackup(file, dataDir string) (BackupInfo, string, error) {
	var info BackupInfo
	dir, err := filepath.Abs(dataDir)
	if err != nil {
		return info, "", err
	}
	if entries, err := os.ReadDir(dir); err == nil && len(entries) > 0 {
		return info, "", fmt.Errorf("restore: %s is not empty: restore into a new data dir (stop up and move the old one aside first)", dir)
	} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return info, "", fmt.Errorf("restore: %w", err)
	}
	f, err := os.Open(file)
	if err != nil {
		return info, "", fmt.Errorf("restore: %w", err)
	}
	defer f.Close()
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return info, "", fmt.Errorf("restore: %w", err)
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dir), "."+filepath.Base(dir)+".restore-*")
	if err != nil {
		return info, "", fmt.Errorf("restore: %w", err)
	}
	defer os.RemoveAll(tmp) // gone after the rename; cleans up a failure
	info, err = readBackup(f, func(name string, rd io.Reader) error {
		target := name
		switch name {
		case BackupPendingName:
			target = PendingFile
		case BackupDeadName:
			target = DeadFile
		}
		p := filepath.Join(tmp, filepath.FromSlash(target))
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			return err
		}
		out, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return err
		}
		if _, err := io.Copy(out, rd); err != nil {
			out.Close()
			return fmt.Errorf("%s: %w", name, err)
		}
		return errors.Join(out.Sync(), out.Close())
	})
	if err != nil {
		return info, "", fmt.Errorf("restore %s: %w", file, err)
	}
	st, err := bolt.Open(filepath.Join(tmp, StoreFile), bolt.WithPruneEvery(0))
	if err != nil {
		return info, "", fmt.Errorf("restore %s: the store does not open: %w", file, err)
	}
	if err := st.Close(); err != nil {
		return info, "", err
	}
	if err := writeFormat(tmp, info.DataDirFormat); err != nil {
		return info, "", err
	}
	if err := os.Chmod(tmp, 0o700); err != nil {
		return info, "", err
	}
	_ = os.Remove(dir) // an empty dir given as the target
	if err := os.Rename(tmp, dir); err != nil {
		return info, "", fmt.Errorf("restore: %w", err)
	}
	return info, dir, nil
}

// restoredEvents is what up handed its broker from a restored backup.
type restoredEvents struct{ pending, dead int }

// requeueRestored hands the pending events and dead letters of a restored
// backup to the broker, once, when up starts on the restored data dir: each
// pending event to the Triggers that still owed it, each dead letter to the
// deadletter stream. A file goes when all its lines are stored; a crash
// half-way hands them all again on the next start, which the subscribers
// take as the redeliveries they are (a dead letter may then be listed
// twice).
func requeueRestored(ctx context.Context, b Broker, dir string) (restoredEvents, error) {
	var r restoredEvents
	bh, ok := b.(*brokerHost)
	if !ok {
		return r, errors.New("restored events: the broker cannot take them")
	}
	var err error
	r.pending, err = importLines(filepath.Join(dir, PendingFile), func(line []byte) error {
		var pe broker.PendingEvent
		if err := json.Unmarshal(line, &pe); err != nil {
			return err
		}
		return bh.b.Requeue(ctx, pe)
	})
	if err != nil {
		return r, err
	}
	r.dead, err = importLines(filepath.Join(dir, DeadFile), func(line []byte) error {
		return bh.b.ImportDeadLetter(ctx, line)
	})
	return r, err
}

// importLines calls fn with each line of the file at p and removes the
// file once all succeeded; a missing file is nothing to do.
func importLines(p string, fn func([]byte) error) (int, error) {
	f, err := os.Open(p)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("restored events: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 16<<20) // an event is at most 8 MiB stored
	n := 0
	for sc.Scan() {
		if len(bytes.TrimSpace(sc.Bytes())) == 0 {
			continue
		}
		if err := fn(sc.Bytes()); err != nil {
			return n, fmt.Errorf("restored events: %s line %d: %w", filepath.Base(p), n+1, err)
		}
		n++
	}
	if err := sc.Err(); err != nil {
		return n, fmt.Errorf("restored events: %s: %w", filepath.Base(p), err)
	}
	f.Close()
	return n, os.Remove(p)
}
