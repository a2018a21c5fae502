package bridge

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/dronetrack/dronetrack/events"
)

// TelemetryPath is ingest's JSON telemetry endpoint.
const TelemetryPath = "/v1/telemetry"

// Forwarder sends spooled reports to ingest, oldest first, one batch at a
// time, and deletes them from the spool only after ingest answered 2xx. A
// batch whose reply was lost is sent again: duplicates are harmless because
// ingest and process deduplicate by (drone, ts).
type Forwarder struct {
	Spool *Spool
	// URL is the full telemetry URL (…/v1/telemetry).
	URL string
	// Key is the drone key sent as Authorization: Bearer. Never logged.
	Key       string
	Client    *http.Client
	BatchSize int
	// FlushInterval is the longest a report waits for a full batch.
	FlushInterval time.Duration
	// MinBackoff and MaxBackoff bound the wait between failed sends (doubling,
	// or the server's Retry-After when it is shorter than MaxBackoff).
	MinBackoff, MaxBackoff time.Duration
	Log                    *slog.Logger

	added  atomic.Int64
	notify chan struct{}

	// Figures, for logs and tests.
	Sent, Rejected, Failures atomic.Int64
}

func (f *Forwarder) init() {
	if f.notify == nil {
		f.notify = make(chan struct{}, 1)
	}
	if f.Client == nil {
		f.Client = &http.Client{Timeout: 15 * time.Second}
	}
	if f.BatchSize <= 0 {
		f.BatchSize = 50
	}
	if f.FlushInterval <= 0 {
		f.FlushInterval = time.Second
	}
	if f.MinBackoff <= 0 {
		f.MinBackoff = 250 * time.Millisecond
	}
	if f.MaxBackoff <= 0 {
		f.MaxBackoff = 10 * time.Second
	}
	if f.Log == nil {
		f.Log = slog.New(slog.DiscardHandler)
	}
}

// Added tells the forwarder n reports were spooled; a full batch is sent at
// once instead of waiting for the flush tick.
func (f *Forwarder) Added(n int) {
	if f.added.Add(int64(n)) >= int64(f.BatchSize) {
		select {
		case f.notify <- struct{}{}:
		default:
		}
	}
}

// Run forwards until ctx ends. What is still spooled then stays on disk for
// the next run.
func (f *Forwarder) Run(ctx context.Context) error {
	f.init()
	tick := time.NewTicker(f.FlushInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		case <-f.notify:
		}
		if err := f.drain(ctx); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
	}
}

// drain sends everything spooled, retrying each batch until it is taken.
func (f *Forwarder) drain(ctx context.Context) error {
	backoff := f.MinBackoff
	for ctx.Err() == nil {
		f.added.Store(0)
		batch, err := f.Spool.Peek(f.BatchSize)
		if err != nil {
			return fmt.Errorf("read spool: %w", err)
		}
		if len(batch) == 0 {
			return nil
		}
		res := f.send(ctx, batch)
		switch res.kind {
		case sentOK:
			if err := f.Spool.Ack(batch[len(batch)-1].Seq); err != nil {
				return fmt.Errorf("ack spool: %w", err)
			}
			f.Sent.Add(int64(len(batch)))
			backoff = f.MinBackoff
			if len(batch) < f.BatchSize {
				return nil // a partial batch: the queue is empty, wait for more
			}
		case sentInvalid:
			if err := f.reject(batch, res.badIndexes); err != nil {
				return err
			}
		case sentRetry:
			f.Failures.Add(1)
			wait := backoff
			if res.retryAfter > 0 && res.retryAfter < f.MaxBackoff {
				wait = max(res.retryAfter, f.MinBackoff)
			}
			f.Log.Warn("ingest did not take the batch; will resend", "reports", len(batch),
				"first_seq", batch[0].Seq, "wait", wait, "err", res.err)
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				return nil
			case <-t.C:
			}
			backoff = min(backoff*2, f.MaxBackoff)
		}
	}
	return nil
}

// reject sets aside the reports ingest named as invalid (all of the batch
// when it named none by index); the rest are resent on the next pass.
func (f *Forwarder) reject(batch []Queued, bad []int) error {
	if len(bad) == 0 {
		f.Log.Error("ingest rejected a batch as invalid; set aside", "reports", len(batch),
			"first_seq", batch[0].Seq, "last_seq", batch[len(batch)-1].Seq)
		f.Rejected.Add(int64(len(batch)))
		return f.Spool.Reject(batch[len(batch)-1].Seq)
	}
	seqs := make([]uint64, 0, len(bad))
	for _, i := range bad {
		seqs = append(seqs, batch[i].Seq)
	}
	f.Log.Error("ingest rejected reports as invalid; set aside", "seqs", seqs)
	f.Rejected.Add(int64(len(seqs)))
	return f.Spool.RejectSeqs(seqs)
}

type sendKind int

const (
	sentOK sendKind = iota
	sentRetry
	sentInvalid
)

type sendResult struct {
	kind       sendKind
	retryAfter time.Duration
	badIndexes []int
	err        error
}

func (f *Forwarder) send(ctx context.Context, batch []Queued) sendResult {
	reps := make([]events.Report, len(batch))
	for i, q := range batch {
		reps[i] = q.Report
	}
	body, err := json.Marshal(reps)
	if err != nil {
		return sendResult{kind: sentInvalid, err: err}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, f.URL, bytes.NewReader(body))
	if err != nil {
		return sendResult{kind: sentRetry, err: err}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+f.Key)
	resp, err := f.Client.Do(req)
	if err != nil {
		return sendResult{kind: sentRetry, err: err}
	}
	defer resp.Body.Close()
	reply, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	switch {
	case resp.StatusCode/100 == 2:
		return sendResult{kind: sentOK}
	case resp.StatusCode == http.StatusBadRequest || resp.StatusCode == http.StatusUnprocessableEntity:
		return sendResult{kind: sentInvalid, badIndexes: badIndexes(reply, len(batch)),
			err: fmt.Errorf("ingest: %s: %s", resp.Status, strings.TrimSpace(string(reply)))}
	default:
		// 401/403 (wrong key), 404 (wrong URL), 429, 5xx: keep the data and
		// retry; an operator can fix the configuration without losing reports.
		var ra time.Duration
		if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s >= 0 {
			ra = time.Duration(s) * time.Second
		}
		return sendResult{kind: sentRetry, retryAfter: ra, err: errors.New("ingest: " + resp.Status)}
	}
}

// badIndexes reads the array indexes out of a problem reply's error
// pointers ("/3/ts" -> 3).
func badIndexes(problem []byte, n int) []int {
	var p struct {
		Errors []events.FieldError `json:"errors"`
	}
	if json.Unmarshal(problem, &p) != nil {
		return nil
	}
	seen := map[int]bool{}
	var out []int
	for _, e := range p.Errors {
		rest, ok := strings.CutPrefix(e.Pointer, "/")
		if !ok {
			return nil
		}
		idx, _, _ := strings.Cut(rest, "/")
		i, err := strconv.Atoi(idx)
		if err != nil || i < 0 || i >= n {
			return nil // an error not tied to one report: the whole batch is bad
		}
		if !seen[i] {
			seen[i] = true
			out = append(out, i)
		}
	}
	return out
}
