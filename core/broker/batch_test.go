package broker

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/google/go-cmp/cmp"
	"github.com/klauspost/compress/s2"
	"github.com/nats-io/nats.go"
)

// The batch form keeps every attribute, extension and data byte of each of
// its events, whatever their values: fixed odd cases and a few hundred
// random events in random batches.
func TestBatchFormRoundTrip(t *testing.T) {
	odd := event.New()
	odd.SetID("odd ✈ id with spaces\nand a newline")
	odd.SetType("dev.dronetrack.odd.v1")
	odd.SetSource("urn:x:/a?b=c#d")
	odd.SetSubject("")
	odd.SetTime(time.Date(1, 1, 1, 0, 0, 0, 1, time.FixedZone("x", 3600)))
	odd.SetExtension("empty", "")
	odd.SetExtension("unicode", "ünïcødé \x00 nul")
	odd.SetExtension("num", 42)
	odd.SetExtension("flag", true)
	odd.SetDataContentType("text/plain; charset=utf-8")
	big := newEvent("big", "t")
	data := make([]byte, 3<<20)
	for i := range data {
		data[i] = byte(i * 13)
	}
	_ = big.SetData("application/octet-stream", data)
	empty := event.New()
	empty.SetID("empty-data")
	empty.SetType("t")
	empty.SetSource("s")
	_ = empty.SetData(event.ApplicationJSON, []byte{})
	full := newEvent("full", "dev.dronetrack.test.v1")
	full.SetSubject("drone-7")
	full.SetTime(time.Date(2026, 12, 3, 8, 0, 0, 123456789, time.UTC))
	full.SetDataSchema("https://dronetrack.dev/schema.json")
	full.SetExtension("tenantid", "t1")
	full.SetExtension(ExtTTL, 254)
	full.SetExtension("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")

	checkBatch(t, []event.Event{odd, big, empty, full})
	checkBatch(t, []event.Event{empty})

	rng := rand.New(rand.NewPCG(1, 2))
	for range 50 {
		evs := make([]event.Event, 1+rng.IntN(12))
		for i := range evs {
			evs[i] = randomEvent(rng, i)
		}
		checkBatch(t, evs)
	}
}

// checkBatch encodes evs as one batch, decodes it and compares.
func checkBatch(t *testing.T, evs []event.Event) {
	t.Helper()
	m, err := encodeBatch("subj", evs)
	if err != nil {
		t.Fatal(err)
	}
	got, err := decodeMessage(m.Header, m.Data)
	if err != nil {
		t.Fatalf("decode: %v", err)
	}
	if len(got) != len(evs) {
		t.Fatalf("decoded %d events, want %d", len(got), len(evs))
	}
	for i, e := range evs {
		if diff := cmp.Diff(canonical(t, e), canonical(t, got[i])); diff != "" {
			t.Errorf("event %d (%q): (-want +got)\n%s", i, e.ID(), diff)
		}
		if !bytes.Equal(got[i].Data(), e.Data()) {
			t.Errorf("event %d (%q): data of %d bytes differs from the %d stored", i, e.ID(), len(got[i].Data()), len(e.Data()))
		}
	}
	// A batch cut short anywhere is an error, never a panic or a
	// different batch.
	for _, cut := range []int{1, len(m.Data) / 2, len(m.Data) - 1} {
		if cut <= 0 || cut >= len(m.Data) {
			continue
		}
		if got, err := decodeMessage(m.Header, m.Data[:cut]); err == nil && len(got) == len(evs) {
			t.Errorf("a batch cut to %d of %d bytes decoded whole", cut, len(m.Data))
		}
	}
}

func randomEvent(rng *rand.Rand, i int) event.Event {
	str := func(n int) string {
		const chars = "abcXYZ019 -_./:?=&%\"'\\\t\n✈ü"
		r := []rune(chars)
		var sb strings.Builder
		for range rng.IntN(n + 1) {
			sb.WriteRune(r[rng.IntN(len(r))])
		}
		return sb.String()
	}
	e := event.New()
	e.SetID(fmt.Sprintf("r%d-%s", i, str(20)))
	e.SetType("t." + str(10))
	e.SetSource("/s/" + strings.NewReplacer(" ", "", "\n", "", "\t", "", "%", "", "\\", "", "\"", "", "?", "", "✈", "", "ü", "").Replace(str(10)))
	if rng.IntN(2) == 0 {
		e.SetSubject(str(15))
	}
	if rng.IntN(2) == 0 {
		e.SetTime(time.Unix(rng.Int64N(1<<33), rng.Int64N(1e9)).UTC())
	}
	for range rng.IntN(6) {
		name := fmt.Sprintf("ext%c%d", 'a'+rune(rng.IntN(26)), rng.IntN(100))
		switch rng.IntN(3) {
		case 0:
			e.SetExtension(name, str(30))
		case 1:
			e.SetExtension(name, rng.IntN(1000))
		default:
			e.SetExtension(name, rng.IntN(2) == 0)
		}
	}
	switch rng.IntN(3) {
	case 0: // no data
	case 1:
		_ = e.SetData(event.ApplicationJSON, map[string]string{"v": str(50)})
	default:
		b := make([]byte, rng.IntN(5000))
		for j := range b {
			b[j] = byte(rng.IntN(256))
		}
		_ = e.SetData("application/octet-stream", b)
	}
	return e
}

// The forms stored before batches (one event in the binary form, or in
// structured JSON) are still read, as one event each.
func TestDecodeMessageReadsSingleForms(t *testing.T) {
	e := newEvent("one", "test.a")
	m, err := encodeStored("subj", e)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := encodeEvent(e)
	if err != nil {
		t.Fatal(err)
	}
	for form, msg := range map[string]*nats.Msg{"binary": m, "JSON": {Data: raw}} {
		got, err := decodeMessage(msg.Header, msg.Data)
		if err != nil || len(got) != 1 || got[0].ID() != "one" {
			t.Errorf("%s form: %v, %v; want the one event", form, got, err)
		}
	}
	if _, err := decodeMessage(nats.Header{batchHeader: {"9"}}, nil); err == nil {
		t.Error("a batch of an unknown version decoded")
	}
}

// FuzzDecodeBatch: any body under the batch header decodes or fails, and
// never panics.
func FuzzDecodeBatch(f *testing.F) {
	m, _ := encodeBatch("s", []event.Event{newEvent("a", "t"), newEvent("b", "t")})
	f.Add(m.Data)
	f.Add([]byte{})
	f.Add([]byte{0x05, 0x01, 0x00, 0x01, 'x'})
	f.Fuzz(func(t *testing.T, body []byte) {
		_, _ = decodeMessage(batchHeaders(), body)
	})
}

// publishBatch stores evs as one batch message on their type's subject,
// as the batcher would.
func publishBatch(t *testing.T, b *Broker, evs ...event.Event) {
	t.Helper()
	m, err := encodeBatch(b.typeSubject(evs[0].Type()), evs)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.publishMsg(context.Background(), m); err != nil {
		t.Fatal(err)
	}
}

func drained(t *testing.T, b *Broker) func() bool {
	return func() bool {
		n, err := b.Pending(context.Background())
		return err == nil && n == 0
	}
}

// Events published at once by many callers are stored in batches, and each
// reaches every Trigger whose filter selects it exactly once (the filter
// applied per event of a batch).
func TestBatchFormedUnderConcurrency(t *testing.T) {
	all, onlyX := newSink(t, nil), newSink(t, nil)
	b, _ := openBroker(t, Config{
		Files:       []string{writeManifest(t, triggerYAML("all", "test.a", "all", fastRetry)+tenantTriggerYAML("test.a", "x"))},
		Resolve:     resolver(map[string]string{"all": all.srv.URL, "x": onlyX.srv.URL}),
		BatchLinger: 20 * time.Millisecond,
	})
	const n = 300
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			e := newEvent(fmt.Sprint("c", i), "test.a")
			e.SetExtension("tenantid", []string{"x", "y"}[i%2])
			if err := b.Publish(context.Background(), e); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	st := b.BatchStats()
	t.Logf("%d events stored in %d messages", st.Events, st.Messages)
	if st.Events != n || st.Messages >= n {
		t.Errorf("stats %+v: want %d events in fewer messages", st, n)
	}
	eventually(t, "every event delivered", func() bool { return len(all.delivered()) == n && len(onlyX.delivered()) == n/2 })
	eventually(t, "drained", drained(t, b))
	shutdown(t, b)
	for i := range n {
		id := fmt.Sprint("c", i)
		if got := all.attempts(id); got != 1 {
			t.Errorf("%s reached Trigger all %d times, want 1", id, got)
		}
		want := 1 - i%2 // tenant x only
		if got := onlyX.attempts(id); got != want {
			t.Errorf("%s reached Trigger tenant-x %d times, want %d", id, got, want)
		}
	}
}

func shutdown(t *testing.T, b *Broker) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := b.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
}

// One event of a batch that fails is retried, or dead-lettered, on its
// own: its siblings are delivered once and the message is acked once all
// are done.
func TestBatchEventFailsAlone(t *testing.T) {
	sub := newSink(t, func(e event.Event, attempt int, w http.ResponseWriter) {
		switch {
		case e.ID() == "retried" && attempt <= 2:
			w.WriteHeader(http.StatusServiceUnavailable)
		case e.ID() == "poison":
			w.WriteHeader(http.StatusBadRequest)
		default:
			w.WriteHeader(http.StatusAccepted)
		}
	})
	b, _ := openBroker(t, Config{
		Files:   []string{writeManifest(t, triggerYAML("t", "test.a", "sub", fastRetry))},
		Resolve: resolver(map[string]string{"sub": sub.srv.URL}),
	})
	ids := []string{"s1", "retried", "s2", "poison", "s3"}
	var evs []event.Event
	for _, id := range ids {
		evs = append(evs, newEvent(id, "test.a"))
	}
	publishBatch(t, b, evs...)
	eventually(t, "drained", drained(t, b))
	dls, err := b.ListDeadLetters(context.Background())
	if err != nil || len(dls) != 1 || dls[0].Event.ID() != "poison" || dls[0].Attempts != 1 {
		t.Errorf("dead letters %+v, %v; want poison after 1 attempt", dls, err)
	}
	if info := consumerInfo(t, b); info.Delivered.Consumer != 1 || info.NumRedelivered != 0 {
		t.Errorf("the batch message was handed out %d times (%d redelivered), want once", info.Delivered.Consumer, info.NumRedelivered)
	}
	shutdown(t, b)
	want := map[string]int{"s1": 1, "retried": 3, "s2": 1, "poison": 1, "s3": 1}
	got := map[string]int{}
	for _, id := range ids {
		got[id] = sub.attempts(id)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("attempts per event (-want +got):\n%s", diff)
	}
}

// A broker that dies while one event of a batch is in flight leaves the
// message unacked: after reopening, the whole batch is delivered again,
// the siblings that were done included (at least once).
func TestCrashMidBatchRedeliversBatch(t *testing.T) {
	hang := make(chan struct{})
	defer close(hang)
	inFlight := make(chan struct{})
	var once sync.Once
	sub := newSink(t, func(e event.Event, attempt int, w http.ResponseWriter) {
		if e.ID() == "stuck" && attempt == 1 {
			once.Do(func() { close(inFlight) })
			<-hang
			return
		}
		w.WriteHeader(http.StatusAccepted)
	})
	cfg := Config{
		DataDir: t.TempDir(),
		Files:   []string{writeManifest(t, triggerYAML("t", "test.a", "sub", fastRetry))},
		Resolve: resolver(map[string]string{"sub": sub.srv.URL}),
		AckWait: testAckWait,
	}
	b, _ := openBroker(t, cfg)
	ids := []string{"a", "stuck", "b", "c"}
	var evs []event.Event
	for _, id := range ids {
		evs = append(evs, newEvent(id, "test.a"))
	}
	publishBatch(t, b, evs...)
	<-inFlight
	eventually(t, "the siblings delivered", func() bool {
		d := sub.delivered()
		return d["a"] == 1 && d["b"] == 1 && d["c"] == 1
	})
	crash(b)

	openBroker(t, cfg)
	eventually(t, "the whole batch delivered again after reopening", func() bool {
		d := sub.delivered()
		return d["stuck"] == 1 && d["a"] == 2 && d["b"] == 2 && d["c"] == 2
	})
}

// A lone event is stored once its linger is over, in a message of its
// own; a batch that reaches MaxBatch is stored without waiting for it.
func TestBatchLinger(t *testing.T) {
	const linger = 300 * time.Millisecond
	sub := newSink(t, nil)
	b, _ := openBroker(t, Config{
		Files:       []string{writeManifest(t, triggerYAML("t", "test.a", "sub", fastRetry))},
		Resolve:     resolver(map[string]string{"sub": sub.srv.URL}),
		BatchLinger: linger,
	})
	start := time.Now()
	if err := b.Publish(context.Background(), newEvent("alone", "test.a")); err != nil {
		t.Fatal(err)
	}
	// A timer fires no earlier than asked: a lower bound, not a race.
	if took := time.Since(start); took < linger {
		t.Errorf("a lone event was stored after %v, before its linger of %v", took, linger)
	}
	if st := b.BatchStats(); st != (BatchStats{Messages: 1, Events: 1}) {
		t.Errorf("stats %+v, want one event in one message", st)
	}
	eventually(t, "delivered", func() bool { return sub.delivered()["alone"] == 1 })

	full, _ := openBroker(t, Config{
		Files:       []string{writeManifest(t, triggerYAML("t", "test.a", "sub", fastRetry))},
		Resolve:     resolver(map[string]string{"sub": sub.srv.URL}),
		BatchLinger: time.Minute, // never reached: only a full batch is stored
		MaxBatch:    4,
	})
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := full.Publish(context.Background(), newEvent(fmt.Sprint("f", i), "test.a")); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if st := full.BatchStats(); st != (BatchStats{Messages: 2, Events: 8}) {
		t.Errorf("stats %+v, want 8 events in two full batches", st)
	}
}

// A caller that gives up does not fail the others of its batch, and a
// store that fails fails every caller in it with ErrUnavailable.
func TestBatchCallersFailTogetherOnly(t *testing.T) {
	b, _ := openBroker(t, Config{Resolve: resolver(nil), BatchLinger: 200 * time.Millisecond})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	errs := make(chan error, 2)
	go func() { errs <- b.Publish(ctx, newEvent("impatient", "test.a")) }()
	go func() { errs <- b.Publish(context.Background(), newEvent("patient", "test.a")) }()
	var failed, stored int
	for range 2 {
		if err := <-errs; err != nil {
			failed++
			if !errors.Is(err, ErrUnavailable) {
				t.Errorf("the impatient caller got %v, want ErrUnavailable", err)
			}
		} else {
			stored++
		}
	}
	if failed != 1 || stored != 1 {
		t.Errorf("%d failed, %d stored; want the impatient one to fail alone", failed, stored)
	}

	// No stream takes this subject: the store fails.
	var wg sync.WaitGroup
	for i := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := b.publishBatched(context.Background(), "nowhere.x", newEvent(fmt.Sprint("n", i), "test.a"), false)
			if !errors.Is(err, ErrUnavailable) {
				t.Errorf("caller %d of a failed store: %v, want ErrUnavailable", i, err)
			}
		}()
	}
	wg.Wait()
}

// A Snapshot yields every event of a pending batch, and Requeue of them
// into another broker delivers each.
func TestSnapshotOfBatch(t *testing.T) {
	ctx := context.Background()
	down := newSink(t, status(http.StatusServiceUnavailable))
	manifest := writeManifest(t, triggerYAML("t", "test.a", "sub", "  delivery:\n    retry: 1000\n    backoffDelay: PT10S"))
	b, _ := openBroker(t, Config{Files: []string{manifest}, Resolve: resolver(map[string]string{"sub": down.srv.URL})})
	t.Cleanup(func() { crash(b) }) // not waiting out its retries' backoff
	publishBatch(t, b, newEvent("p1", "test.a"), newEvent("p2", "test.a"), newEvent("p3", "test.a"))
	var pending []PendingEvent
	stats, err := b.Snapshot(ctx, func(pe PendingEvent) error { pending = append(pending, pe); return nil }, func() error { return nil })
	if err != nil || stats.Events != 3 || len(pending) != 3 {
		t.Fatalf("snapshot: %+v, %v, %d emitted; want 3 events", stats, err, len(pending))
	}
	up := newSink(t, nil)
	b2, _ := openBroker(t, Config{Files: []string{manifest}, Resolve: resolver(map[string]string{"sub": up.srv.URL})})
	for _, pe := range pending {
		if err := b2.Requeue(ctx, pe); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, "restored events delivered", func() bool {
		d := up.delivered()
		return d["p1"] == 1 && d["p2"] == 1 && d["p3"] == 1
	})
}

// BenchmarkStoredForms: encoding and decoding one telemetry-sized event in
// the single binary form (headers) against a batch of 16 in the batch form,
// per event.
func BenchmarkStoredForms(b *testing.B) {
	e := newEvent("0123456789abcdef0123456789abcdef", "dev.dronetrack.telemetry.received.v1")
	e.SetSubject("drone-0042")
	e.SetTime(time.Date(2026, 12, 3, 8, 0, 0, 0, time.UTC))
	e.SetExtension("tenantid", "tenant-1")
	e.SetExtension(ExtTTL, 255)
	e.SetExtension("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
	_ = e.SetData(event.ApplicationJSON, []byte(`{"reports":[{"ts":"2026-12-03T08:00:00Z","lat":47.1,"lon":8.5,"alt":120,"speed":12.5,"heading":90,"battery":80}]}`))
	b.Run("single", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			m, err := encodeStored("s", e)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := decodeMessage(m.Header, m.Data); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("batch16", func(b *testing.B) {
		evs := make([]event.Event, 16)
		for i := range evs {
			evs[i] = e
		}
		b.ReportAllocs()
		for b.Loop() {
			m, err := encodeBatch("s", evs)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := decodeMessage(m.Header, m.Data); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/16, "ns/event")
	})
}

// A Trigger's deliveries in flight stay within MaxInFlight whether its
// events come in batches or not, and a message takes a slot before its
// events are decoded: a message none of whose events match gives its slot
// back (the Trigger delivers later events), one whose events match holds
// one slot per event in delivery.
func TestBatchDeliveriesWithinMaxInFlight(t *testing.T) {
	var inFlight, most atomic.Int32
	all := newSink(t, func(_ event.Event, _ int, w http.ResponseWriter) {
		n := inFlight.Add(1)
		for {
			m := most.Load()
			if n <= m || most.CompareAndSwap(m, n) {
				break
			}
		}
		time.Sleep(2 * time.Millisecond)
		inFlight.Add(-1)
		w.WriteHeader(http.StatusAccepted)
	})
	onlyZ := newSink(t, nil)
	b, _ := openBroker(t, Config{
		Files:       []string{writeManifest(t, triggerYAML("all", "test.a", "all", fastRetry)+tenantTriggerYAML("test.a", "z"))},
		Resolve:     resolver(map[string]string{"all": all.srv.URL, "z": onlyZ.srv.URL}),
		BatchLinger: 20 * time.Millisecond,
		MaxInFlight: 2,
	})
	publish := func(prefix, tenant string, n int) {
		var wg sync.WaitGroup
		errs := make(chan error, n)
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				e := newEvent(fmt.Sprint(prefix, i), "test.a")
				e.SetExtension("tenantid", tenant)
				if err := b.Publish(context.Background(), e); err != nil {
					errs <- err
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
	}
	// Four rounds, so at least four messages none of whose events match
	// tenant-z (more than its two slots).
	const n = 120
	for r := range 4 {
		publish(fmt.Sprint("x", r, "-"), "x", n/4)
	}
	if st := b.BatchStats(); st.Messages < 4 || st.Messages >= st.Events {
		t.Fatalf("stats %+v: want batches of several events", st)
	}
	eventually(t, "every event delivered to all", func() bool { return len(all.delivered()) == n })
	publish("z", "z", 5)
	eventually(t, "tenant z's events delivered", func() bool {
		return len(onlyZ.delivered()) == 5 && len(all.delivered()) == n+5
	})
	eventually(t, "drained", drained(t, b))
	shutdown(t, b)
	if m := most.Load(); m > 2 {
		t.Errorf("%d deliveries in flight at once, MaxInFlight is 2", m)
	}
	for r := range 4 {
		for i := range n / 4 {
			id := fmt.Sprint("x", r, "-", i)
			if got := all.attempts(id); got != 1 {
				t.Errorf("%s reached Trigger all %d times, want 1", id, got)
			}
			if got := onlyZ.attempts(id); got != 0 {
				t.Errorf("%s reached Trigger tenant-z %d times, want 0", id, got)
			}
		}
	}
}

// A record of a stored batch that cannot be read is dropped alone: the
// batch's other events are delivered once and the message is done with
// (nothing left pending).
func TestBatchUnreadableRecordDroppedAlone(t *testing.T) {
	sub := newSink(t, nil)
	b, _ := openBroker(t, Config{
		Files:   []string{writeManifest(t, triggerYAML("all", "test.a", "sub", fastRetry))},
		Resolve: resolver(map[string]string{"sub": sub.srv.URL}),
	})
	var data []byte
	var err error
	if data, err = appendRecord(data, newEvent("a", "test.a"), false); err != nil {
		t.Fatal(err)
	}
	bad := []byte{0x09, 0xff, 0x01} // nine attributes promised, one of an unknown kind given
	data = binary.AppendUvarint(data, uint64(len(bad)))
	data = append(data, bad...)
	if data, err = appendRecord(data, newEvent("c", "test.a"), false); err != nil {
		t.Fatal(err)
	}
	if _, err := decodeMessage(batchHeaders(), data); err == nil {
		t.Fatal("the batch decodes whole; the test needs an unreadable record")
	}
	m := &nats.Msg{Subject: b.typeSubject("test.a"), Header: batchHeaders(), Data: data}
	if err := b.publishMsg(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	eventually(t, "a and c delivered", func() bool { return len(sub.delivered()) == 2 })
	eventually(t, "drained", drained(t, b))
	shutdown(t, b)
	for _, id := range []string{"a", "c"} {
		if got := sub.attempts(id); got != 1 {
			t.Errorf("%s delivered %d times, want 1", id, got)
		}
	}
}

// tenantTriggerYAML is a Trigger named tenant-<tenant> selecting events of
// typ whose tenantid extension is tenant, delivered to the service named
// tenant.
func tenantTriggerYAML(typ, tenant string) string {
	return fmt.Sprintf(`apiVersion: eventing.knative.dev/v1
kind: Trigger
metadata: {name: tenant-%s}
spec:
  broker: default
  filter: {attributes: {type: %s, tenantid: %s}}
  subscriber: {ref: {apiVersion: serving.knative.dev/v1, kind: Service, name: %s}}
`, tenant, typ, tenant, tenant)
}

// Batches of events whose data repeats itself, as reports do, are stored
// compressed, read back the same, and both stored batch forms (compressed
// and as written before compression) are read.
func TestBatchStoredCompressed(t *testing.T) {
	var evs []event.Event
	for i := range 20 {
		e := newEvent(fmt.Sprintf("e%d", i), "test.a")
		_ = e.SetData(event.ApplicationJSON, map[string]any{"reports": []map[string]any{
			{"lat": 47.38, "lon": 8.54, "alt": 500.5, "mode": "AUTO.MISSION", "seq": i},
			{"lat": 47.39, "lon": 8.55, "alt": 501.5, "mode": "AUTO.MISSION", "seq": i + 1},
		}})
		evs = append(evs, e)
	}
	m, err := encodeBatch("s", evs)
	if err != nil {
		t.Fatal(err)
	}
	if v := m.Header.Get(batchHeader); v != batchVersionS2 {
		t.Fatalf("stored as batch version %q, want %q (compressed)", v, batchVersionS2)
	}
	var plain []byte
	for _, e := range evs {
		if plain, err = appendRecord(plain, e, false); err != nil {
			t.Fatal(err)
		}
	}
	if len(m.Data) >= len(plain) {
		t.Errorf("compressed batch of %d bytes, records %d", len(m.Data), len(plain))
	}
	checkBatch(t, evs)
	for form, msg := range map[string]*nats.Msg{"compressed": m, "uncompressed": {Header: batchHeaders(), Data: plain}} {
		got, err := decodeMessage(msg.Header, msg.Data)
		if err != nil || len(got) != len(evs) {
			t.Fatalf("%s: decoded %d events, %v; want %d", form, len(got), err, len(evs))
		}
		recs, isBatch, err := splitBatch(msg.Header, msg.Data, false)
		if err != nil || !isBatch || len(recs) != len(evs) {
			t.Fatalf("%s: split into %d records (batch %v), %v; want %d", form, len(recs), isBatch, err, len(evs))
		}
		for i, e := range evs {
			if !bytes.Equal(got[i].Data(), e.Data()) {
				t.Errorf("%s: event %d's data differs", form, i)
			}
		}
	}
	// A compressed body that claims more than a batch can hold is refused
	// before anything is allocated for it.
	huge := s2.Encode(nil, make([]byte, maxBatchBody+1))
	if _, err := decodeMessage(nats.Header{batchHeader: {batchVersionS2}}, huge); err == nil {
		t.Error("a compressed batch larger than maxBatchBody decoded")
	}
}

// FuzzDecodeCompressedBatch: any body under the compressed batch header
// decodes or fails, and never panics.
func FuzzDecodeCompressedBatch(f *testing.F) {
	m, _ := encodeBatch("s", []event.Event{newEvent("a", "t"), newEvent("b", "t"), newEvent("c", "t")})
	f.Add(m.Data)
	f.Add([]byte{})
	f.Add(s2.Encode(nil, []byte{0x05, 0x01, 0x00, 0x01, 'x'}))
	h := nats.Header{batchHeader: {batchVersionS2}}
	f.Fuzz(func(t *testing.T, body []byte) {
		_, _ = decodeMessage(h, body)
		_, _, _ = splitBatch(h, body, true)
	})
}

// Pending reads zero only once what was published is done: nats-server
// counts a stored message into its consumers' pending after it has
// acknowledged the publish, so a check right after a publish could read
// zero with the message still to be delivered (TestBatchEventFailsAlone
// then found no dead letter yet).
func TestPendingCountsJustPublished(t *testing.T) {
	release := make(chan struct{})
	sub := newSink(t, func(e event.Event, attempt int, w http.ResponseWriter) {
		<-release
		w.WriteHeader(http.StatusAccepted)
	})
	b, _ := openBroker(t, Config{
		Files:   []string{writeManifest(t, triggerYAML("t", "test.a", "sub", fastRetry))},
		Resolve: resolver(map[string]string{"sub": sub.srv.URL}),
	})
	ctx := context.Background()
	for i := range 200 {
		publishBatch(t, b, newEvent(fmt.Sprint("e", i), "test.a"))
		// The subscriber holds every delivery until released: the event
		// cannot be done yet.
		if n, err := b.Pending(ctx); err != nil || n == 0 {
			close(release)
			t.Fatalf("Pending right after publish %d = %d, %v; want > 0", i, n, err)
		}
		release <- struct{}{}
		eventually(t, "drained", drained(t, b))
	}
	close(release)
}

// An event the ingress takes without the broker's hop counter is stored
// with it at its start (appendRecord's hop), without a copy of the event;
// one that has it keeps its own, and the caller's event is not changed.
func TestRecordGetsHopCounter(t *testing.T) {
	bare := newEvent("a", "test.a")
	counted := newEvent("b", "test.a")
	counted.SetExtension(ExtTTL, 3)
	for _, c := range []struct {
		e    event.Event
		hop  bool
		want int
		has  bool
	}{
		{bare, true, defaultTTL, true},
		{bare, false, 0, false},
		{counted, true, 3, true},
		{counted, false, 3, true},
	} {
		rec, err := appendRecord(nil, c.e, c.hop)
		if err != nil {
			t.Fatal(err)
		}
		got, err := decodeMessage(batchHeaders(), rec)
		if err != nil || len(got) != 1 {
			t.Fatalf("%s hop=%v: %d events, %v", c.e.ID(), c.hop, len(got), err)
		}
		_, has := extension(got[0], ExtTTL)
		if has != c.has || has && brokerTTL(got[0]) != c.want {
			t.Errorf("%s hop=%v: hop counter %v (present %v), want %d (present %v)", c.e.ID(), c.hop, brokerTTL(got[0]), has, c.want, c.has)
		}
	}
	if _, has := extension(bare, ExtTTL); has {
		t.Error("the caller's event was given the hop counter")
	}
}

// Triggers reading the same compressed message share one decompressed
// body (bodies): each gets the same events, and an event's data cannot be
// appended to over the next record of the shared body. Another message is
// not taken for it, and a Trigger that reads its messages alone (process
// on report.received) keeps no body for others.
func TestCompressedBodySharedAcrossReaders(t *testing.T) {
	batch := func(tag string) *nats.Msg {
		var evs []event.Event
		for i := range 10 {
			e := newEvent(fmt.Sprintf("%s%d", tag, i), "test.a")
			_ = e.SetData(event.ApplicationJSON, []byte(`{"reports":[{"lat":47.38,"lon":8.54,"mode":"AUTO.MISSION","tag":"`+tag+`"}]}`))
			evs = append(evs, e)
		}
		m, err := encodeBatch("s", evs)
		if err != nil || m.Header.Get(batchHeader) != batchVersionS2 {
			t.Fatalf("batch %s: %v, version %q; want compressed", tag, err, m.Header.Get(batchHeader))
		}
		return m
	}
	// Each reader has its own copy of the message's bytes, as NATS hands them.
	read := func(m *nats.Msg, share bool) []event.Event {
		t.Helper()
		recs, isBatch, err := splitBatch(m.Header, bytes.Clone(m.Data), share)
		if err != nil || !isBatch {
			t.Fatalf("split: batch %v, %v", isBatch, err)
		}
		var evs []event.Event
		for _, rec := range recs {
			e, err := decodeRecord(rec, new(event.EventContextV1))
			if err != nil {
				t.Fatal(err)
			}
			evs = append(evs, e)
		}
		return evs
	}
	a, b, alone := batch("a"), batch("b"), batch("c")
	first, second := read(a, true), read(a, true)
	if &first[0].DataEncoded[0] != &second[0].DataEncoded[0] {
		t.Error("the second reader decompressed the body again")
	}
	other := read(b, true)
	for i := range first {
		if string(first[i].Data()) != string(second[i].Data()) || !strings.Contains(string(other[i].Data()), `"tag":"b"`) {
			t.Fatalf("event %d: %s / %s / %s", i, first[i].Data(), second[i].Data(), other[i].Data())
		}
	}
	next := string(second[1].Data())
	// Longer than the next record, shorter than the rest of the body.
	_ = append(first[0].DataEncoded, bytes.Repeat([]byte("x"), len(next)+200)...)
	if string(second[1].Data()) != next {
		t.Error("appending to one event's data wrote over the next record of the shared body")
	}
	if x, y := read(alone, false), read(alone, false); &x[0].DataEncoded[0] == &y[0].DataEncoded[0] {
		t.Error("a reader alone on its messages left its body for others")
	}
}

// A route shares the batches it reads when another route reads the same
// type, or either reads every type.
func TestRoutesShareBatchesOfTheirType(t *testing.T) {
	trig := func(name, typ string) Trigger {
		tr := Trigger{}
		tr.Metadata.Name = name
		tr.Spec.Broker = "default"
		tr.Spec.Subscriber.URI = "http://127.0.0.1:1/" + name
		if typ != "" {
			tr.Spec.Filter = &TriggerFilter{Attributes: map[string]string{"type": typ}}
		}
		return tr
	}
	for _, c := range []struct {
		name     string
		triggers []Trigger
		want     map[string]bool
	}{
		{"the pipeline's", []Trigger{trig("process", "report"), trig("cache", "state"), trig("alerts", "state"), trig("map", "state")},
			map[string]bool{"process": false, "cache": true, "alerts": true, "map": true}},
		{"one reads every type", []Trigger{trig("process", "report"), trig("audit", "")},
			map[string]bool{"process": true, "audit": true}},
		{"alone", []Trigger{trig("audit", "")}, map[string]bool{"audit": false}},
	} {
		t.Run(c.name, func(t *testing.T) {
			routes, err := buildRoutes(Config{Name: "default", Triggers: c.triggers})
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range routes {
				if r.sharesBatches != c.want[r.trigger.Metadata.Name] {
					t.Errorf("%s shares batches: %v, want %v", r.trigger.Metadata.Name, r.sharesBatches, c.want[r.trigger.Metadata.Name])
				}
			}
		})
	}
}
