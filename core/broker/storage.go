package broker

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/maphash"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/cloudevents/sdk-go/v2/types"
	"github.com/klauspost/compress/s2"
	"github.com/nats-io/nats.go"
)

// Stored form of an event: CloudEvents binary content mode on a NATS
// message, as on HTTP. Every context attribute and extension is a header
// named ce-<attribute> holding its canonical string form, and the data is
// the message body as is. Decoding it is a handful of map reads, where the
// structured JSON form it replaces (still read, for data dirs written by
// older versions) cost an encoding/json Marshal plus json.Valid on every
// publish and an Unmarshal on every delivery: 20% of the pipeline's CPU in
// BenchmarkPipeline once in-process delivery had removed the sockets.
const storedPrefix = "ce-"

// storedSpecVersion marks a message in the stored binary form.
const storedSpecVersion = storedPrefix + "specversion"

// encodeStored builds the message for e on subject. Events of a spec
// version other than 1.0 (the ingress accepts 0.3) keep the structured
// JSON form, which carries any version.
func encodeStored(subject string, e event.Event) (*nats.Msg, error) {
	ec, ok := e.Context.(*event.EventContextV1)
	if !ok {
		raw, err := encodeEvent(e)
		if err != nil {
			return nil, err
		}
		return &nats.Msg{Subject: subject, Data: raw}, nil
	}
	h := make(nats.Header, 8+len(ec.Extensions))
	h[storedSpecVersion] = []string{event.CloudEventsVersionV1}
	h[storedPrefix+"id"] = []string{ec.ID}
	h[storedPrefix+"source"] = []string{ec.Source.String()}
	h[storedPrefix+"type"] = []string{ec.Type}
	if ec.Subject != nil {
		h[storedPrefix+"subject"] = []string{*ec.Subject}
	}
	if ec.Time != nil {
		h[storedPrefix+"time"] = []string{ec.Time.String()}
	}
	if ec.DataContentType != nil {
		h[storedPrefix+"datacontenttype"] = []string{*ec.DataContentType}
	}
	if ec.DataSchema != nil {
		h[storedPrefix+"dataschema"] = []string{ec.DataSchema.String()}
	}
	for name, v := range ec.Extensions {
		s, err := types.Format(v)
		if err != nil {
			return nil, fmt.Errorf("extension %s: %w", name, err)
		}
		h[storedPrefix+name] = []string{s}
	}
	return &nats.Msg{Subject: subject, Header: h, Data: e.Data()}, nil
}

// decodeStored reads a stored event in either form.
func decodeStored(h nats.Header, data []byte) (event.Event, error) {
	if len(h[storedSpecVersion]) == 0 {
		var e event.Event
		err := e.UnmarshalJSON(data)
		return e, err
	}
	if v := h[storedSpecVersion][0]; v != event.CloudEventsVersionV1 {
		return event.Event{}, fmt.Errorf("stored event of spec version %q", v)
	}
	ec := &event.EventContextV1{}
	for k, vs := range h {
		if len(vs) == 0 {
			continue
		}
		name, ok := strings.CutPrefix(k, storedPrefix)
		if !ok {
			continue // NATS's own headers (Nats-Msg-Id, ...)
		}
		v := vs[0]
		switch name {
		case "specversion":
		case "id":
			ec.ID = v
		case "source":
			u, err := url.Parse(v)
			if err != nil {
				return event.Event{}, fmt.Errorf("stored source: %w", err)
			}
			ec.Source = types.URIRef{URL: *u}
		case "type":
			ec.Type = v
		case "subject":
			ec.Subject = &v
		case "time":
			t, err := types.ParseTimestamp(v)
			if err != nil {
				return event.Event{}, fmt.Errorf("stored time: %w", err)
			}
			ec.Time = t
		case "datacontenttype":
			ec.DataContentType = &v
		case "dataschema":
			u, err := url.Parse(v)
			if err != nil {
				return event.Event{}, fmt.Errorf("stored dataschema: %w", err)
			}
			ec.DataSchema = &types.URI{URL: *u}
		default:
			if ec.Extensions == nil {
				ec.Extensions = make(map[string]any, 4)
			}
			ec.Extensions[name] = v
		}
	}
	if ec.ID == "" || ec.Type == "" {
		return event.Event{}, errors.New("stored event without id or type")
	}
	e := event.Event{Context: ec}
	if len(data) > 0 {
		e.DataEncoded = data
	}
	return e, nil
}

// Batch stored form: many events of one subject in one JetStream message,
// so JetStream's per-message work (the store and its ack, a delivery to
// each Trigger, the Trigger's ack with its interest check and removal,
// consumer state writes) is paid once per batch instead of once per event
// (the batcher in batch.go forms them). The message carries the header
// batchHeader = batchVersion and a body of records (or batchVersionS2 and
// the body compressed), each
//
//	uvarint(record length) record
//
// and a record is
//
//	uvarint(attribute count)
//	per attribute: kind byte, [uvarint(len) name when kind is attrExtension],
//	               uvarint(len) value (the attribute's canonical string form)
//	data: the rest of the record, as is
//
// Only CloudEvents 1.0 events are batched (specversion is implied). A
// decode is a pass over lengths and one string per record that every
// attribute value is a substring of: no JSON, no headers per event.
const (
	batchHeader  = "dt-batch"
	batchVersion = "1"
	// batchVersionS2 is a body of records compressed as one S2 block
	// (github.com/klauspost/compress/s2). What the broker holds of a
	// batch, in JetStream's block caches (each block read stays in the
	// server's memory a while after its last use, whatever the backlog)
	// and in the messages a Trigger has fetched, is then a fraction of
	// the records: reports compress several times over, and S2 costs
	// about a millisecond per few MB.
	batchVersionS2 = "2"
	// maxBatchBody bounds the decoded size of a compressed batch: a
	// batch seals at batchMaxBytes, or holds one event of up to the
	// ingress's 4 MiB limit.
	maxBatchBody = 16 << 20
)

// Attribute kinds of a batch record.
const (
	attrExtension byte = iota
	attrID
	attrSource
	attrType
	attrSubject
	attrTime
	attrDataContentType
	attrDataSchema
)

type batchAttr struct {
	kind  byte
	name  string // extensions only
	value string
}

// appendRecord appends e's record, length first, to buf. It fails only for
// an extension value types.Format refuses, or an event that is not
// CloudEvents 1.0 (those are stored alone in the JSON form). With hop, an
// event without the broker's hop counter is stored with it at its start
// (defaultTTL), as if it had been set on e.
func appendRecord(buf []byte, e event.Event, hop bool) ([]byte, error) {
	ec, ok := e.Context.(*event.EventContextV1)
	if !ok {
		return buf, fmt.Errorf("batch form: spec version %s", e.SpecVersion())
	}
	var stack [12]batchAttr
	attrs := append(stack[:0],
		batchAttr{kind: attrID, value: ec.ID},
		batchAttr{kind: attrSource, value: ec.Source.String()},
		batchAttr{kind: attrType, value: ec.Type})
	if ec.Subject != nil {
		attrs = append(attrs, batchAttr{kind: attrSubject, value: *ec.Subject})
	}
	if ec.Time != nil {
		attrs = append(attrs, batchAttr{kind: attrTime, value: ec.Time.String()})
	}
	if ec.DataContentType != nil {
		attrs = append(attrs, batchAttr{kind: attrDataContentType, value: *ec.DataContentType})
	}
	if ec.DataSchema != nil {
		attrs = append(attrs, batchAttr{kind: attrDataSchema, value: ec.DataSchema.String()})
	}
	for name, v := range ec.Extensions {
		s, err := types.Format(v)
		if err != nil {
			return buf, fmt.Errorf("extension %s: %w", name, err)
		}
		attrs = append(attrs, batchAttr{kind: attrExtension, name: name, value: s})
	}
	if _, has := ec.Extensions[ExtTTL]; hop && !has {
		attrs = append(attrs, batchAttr{kind: attrExtension, name: ExtTTL, value: defaultTTLValue})
	}
	data := e.Data()
	n := uvarintLen(uint64(len(attrs))) + len(data)
	for _, a := range attrs {
		n += 1 + uvarintLen(uint64(len(a.value))) + len(a.value)
		if a.kind == attrExtension {
			n += uvarintLen(uint64(len(a.name))) + len(a.name)
		}
	}
	buf = slices.Grow(buf, uvarintLen(uint64(n))+n)
	buf = binary.AppendUvarint(buf, uint64(n))
	buf = binary.AppendUvarint(buf, uint64(len(attrs)))
	for _, a := range attrs {
		buf = append(buf, a.kind)
		if a.kind == attrExtension {
			buf = binary.AppendUvarint(buf, uint64(len(a.name)))
			buf = append(buf, a.name...)
		}
		buf = binary.AppendUvarint(buf, uint64(len(a.value)))
		buf = append(buf, a.value...)
	}
	return append(buf, data...), nil
}

func uvarintLen(x uint64) int {
	n := 1
	for x >= 0x80 {
		x >>= 7
		n++
	}
	return n
}

// batchHeaders marks a message in the batch form, uncompressed.
func batchHeaders() nats.Header {
	return nats.Header{batchHeader: []string{batchVersion}}
}

// batchMessage is the message that stores records (appendRecord's
// output) on subject: compressed (batchVersionS2, into dst when it has
// room for s2.MaxEncodedLen) unless that does not make it smaller.
func batchMessage(subject string, records, dst []byte) *nats.Msg {
	if z := s2.Encode(dst, records); len(z) < len(records) {
		return &nats.Msg{Subject: subject, Header: nats.Header{batchHeader: []string{batchVersionS2}}, Data: z}
	}
	return &nats.Msg{Subject: subject, Header: batchHeaders(), Data: records}
}

// encodeBatch builds one message in the batch form holding evs.
func encodeBatch(subject string, evs []event.Event) (*nats.Msg, error) {
	var buf []byte
	for _, e := range evs {
		var err error
		if buf, err = appendRecord(buf, e, false); err != nil {
			return nil, fmt.Errorf("encode event %s: %w", e.ID(), err)
		}
	}
	return batchMessage(subject, buf, nil), nil
}

// batchBody returns the records of a message in the batch form,
// decompressed; batch is false (and nothing returned) for the single-event
// forms.
func batchBody(h nats.Header, data []byte, share bool) (body []byte, batch bool, err error) {
	v, ok := h[batchHeader]
	if !ok {
		return nil, false, nil
	}
	switch {
	case len(v) == 1 && v[0] == batchVersion:
		return data, true, nil
	case len(v) == 1 && v[0] == batchVersionS2:
		slot := bodies.slot(data)
		if body := slot.get(data); body != nil {
			return body, true, nil
		}
		n, err := s2.DecodedLen(data)
		if err != nil || n > maxBatchBody {
			return nil, true, errBatchCorrupt
		}
		if body, err = s2.Decode(make([]byte, n), data); err != nil {
			return nil, true, errBatchCorrupt
		}
		if share {
			slot.put(data, body)
		}
		return body, true, nil
	}
	return nil, true, fmt.Errorf("stored batch of version %q", v)
}

var errBatchCorrupt = errors.New("stored batch: corrupt record")

// bodies holds the batches decompressed last, by their compressed bytes:
// every Trigger on a stream reads each of its messages (the three on
// state.updated at about the same time), and each decompressed it into a
// body of its own. A body is only read (the events decoded from it alias
// it), so the Triggers share it. Content-addressed, so any broker in the
// process may share it too.
var bodies bodyMemo

// bodySlots is small: the Triggers on a stream read a batch within
// moments of each other, and every body held counts against up's memory
// limit until its slot is taken (with 256, some 7 MB of live heap).
const bodySlots = 64

type bodyMemo struct {
	seed  maphash.Seed
	slots [bodySlots]atomic.Pointer[bodyEntry]
}

type bodyEntry struct{ compressed, body []byte }

func init() { bodies.seed = maphash.MakeSeed() }

// bodySlot is the memo's place for a compressed batch: hashed once for a
// read that misses and then fills it.
type bodySlot struct{ p *atomic.Pointer[bodyEntry] }

func (m *bodyMemo) slot(compressed []byte) bodySlot {
	return bodySlot{&m.slots[maphash.Bytes(m.seed, compressed)%bodySlots]}
}

// get is the body decompressed from compressed, or nil when not held.
func (s bodySlot) get(compressed []byte) []byte {
	e := s.p.Load()
	if e == nil || !bytes.Equal(e.compressed, compressed) {
		return nil
	}
	return e.body
}

// put holds body, decompressed from compressed, in place of whatever had
// the slot. compressed is kept as it is, not copied: a message's bytes are
// its own allocation (the NATS client copies each message's payload), and
// nothing writes to them.
func (s bodySlot) put(compressed, body []byte) {
	s.p.Store(&bodyEntry{compressed: compressed, body: body})
}

// decodeMessage reads every event of a stored message: a batch, or one
// event in the binary or the legacy JSON form. Data of the events alias
// data.
func decodeMessage(h nats.Header, data []byte) ([]event.Event, error) {
	body, isBatch, err := batchBody(h, data, false)
	if err != nil {
		return nil, err
	}
	if !isBatch {
		e, err := decodeStored(h, data)
		if err != nil {
			return nil, err
		}
		return []event.Event{e}, nil
	}
	data = body
	// Count the records first, so the events are one allocation.
	n := 0
	for rest := data; len(rest) > 0; n++ {
		l, k := binary.Uvarint(rest)
		if k <= 0 || l > uint64(len(rest)-k) {
			return nil, errBatchCorrupt
		}
		rest = rest[k+int(l):]
	}
	out := make([]event.Event, 0, n)
	ctxs := make([]event.EventContextV1, n)
	for i := 0; len(data) > 0; i++ {
		l, k := binary.Uvarint(data)
		rec := data[k : k+int(l)]
		data = data[k+int(l):]
		e, err := decodeRecord(rec, &ctxs[i])
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, nil
}

// splitBatch checks a stored batch's version and framing and returns its
// records, each to be read by decodeRecord; batch is false (and nothing
// returned) for the single-event forms, read by decodeStored. It lets
// dispatch decode a batch's events one at a time, as each gets a delivery
// slot, instead of all of them up front.
func splitBatch(h nats.Header, data []byte, share bool) (recs [][]byte, batch bool, err error) {
	data, batch, err = batchBody(h, data, share)
	if !batch || err != nil {
		return nil, batch, err
	}
	n := 0 // records: counted first, so recs is allocated once
	for rest := data; len(rest) > 0; n++ {
		l, k := binary.Uvarint(rest)
		if k <= 0 || l > uint64(len(rest)-k) {
			return nil, true, errBatchCorrupt
		}
		rest = rest[k+int(l):]
	}
	recs = make([][]byte, 0, n)
	for len(data) > 0 {
		l, k := binary.Uvarint(data)
		recs = append(recs, data[k:k+int(l)])
		data = data[k+int(l):]
	}
	return recs, true, nil
}

// decodeRecord reads one batch record into ec.
func decodeRecord(rec []byte, ec *event.EventContextV1) (event.Event, error) {
	count, k := binary.Uvarint(rec)
	if k <= 0 || count > uint64(len(rec)) {
		return event.Event{}, errBatchCorrupt
	}
	// Find where the attributes end, then make them one string.
	p := k
	next := func() (int, int, bool) { // a length-prefixed field at p
		l, k := binary.Uvarint(rec[p:])
		if k <= 0 || l > uint64(len(rec)-p-k) {
			return 0, 0, false
		}
		start := p + k
		p = start + int(l)
		return start, p, true
	}
	type span struct {
		kind             byte
		name, valS, valE int // name start (extensions), value bounds
		nameE            int
	}
	// Room for every attribute of the pipeline's events (their context
	// attributes and extensions: tenant, partition key, trace context, hop
	// counter, ...): with 12 the larger ones outgrew it onto the heap, about
	// one record a report.
	var stack [24]span
	spans := stack[:0]
	for range count {
		if p >= len(rec) {
			return event.Event{}, errBatchCorrupt
		}
		s := span{kind: rec[p]}
		p++
		if s.kind == attrExtension {
			var ok bool
			if s.name, s.nameE, ok = next(); !ok {
				return event.Event{}, errBatchCorrupt
			}
		}
		var ok bool
		if s.valS, s.valE, ok = next(); !ok {
			return event.Event{}, errBatchCorrupt
		}
		spans = append(spans, s)
	}
	str := string(rec[:p])
	for _, s := range spans {
		v := str[s.valS:s.valE]
		switch s.kind {
		case attrID:
			ec.ID = v
		case attrSource:
			u, err := parseSource(v)
			if err != nil {
				return event.Event{}, fmt.Errorf("stored source: %w", err)
			}
			ec.Source = types.URIRef{URL: u}
		case attrType:
			ec.Type = v
		case attrSubject:
			subject := v // not &v: v would be on the heap for every attribute
			ec.Subject = &subject
		case attrTime:
			t, err := types.ParseTimestamp(v)
			if err != nil {
				return event.Event{}, fmt.Errorf("stored time: %w", err)
			}
			ec.Time = t
		case attrDataContentType:
			if v == jsonContentType {
				// Shared, as the SDK's Clone shares it: set, never
				// written through.
				ec.DataContentType = &jsonContentType
			} else {
				ct := v
				ec.DataContentType = &ct
			}
		case attrDataSchema:
			u, err := url.Parse(v)
			if err != nil {
				return event.Event{}, fmt.Errorf("stored dataschema: %w", err)
			}
			ec.DataSchema = &types.URI{URL: *u}
		case attrExtension:
			if ec.Extensions == nil {
				ec.Extensions = make(map[string]any, 4)
			}
			ec.Extensions[str[s.name:s.nameE]] = v
		default:
			return event.Event{}, fmt.Errorf("stored batch: attribute kind %d", s.kind)
		}
	}
	if ec.ID == "" || ec.Type == "" {
		return event.Event{}, errors.New("stored event without id or type")
	}
	e := event.Event{Context: ec}
	if p < len(rec) {
		// Capped: the body is shared (bodies), and an append to one
		// event's data must not write over the next record.
		e.DataEncoded = rec[p:len(rec):len(rec)]
	}
	return e, nil
}

// defaultTTLValue is defaultTTL as types.Format writes it.
var defaultTTLValue = strconv.Itoa(defaultTTL)

// jsonContentType is the content type of every event Dronetrack makes.
var jsonContentType = "application/json"

// sources holds parsed event sources (string -> url.URL): the pipeline's
// events come from a handful of sources, and parsing the source of every
// stored event again cost an allocation per event and Trigger. At most
// maxSources are kept; past that a source is parsed each time.
var sources memo[url.URL]

// parseSource is url.Parse(v), from sources when it was parsed before.
// The URL is a copy: its fields are strings and an immutable *Userinfo.
func parseSource(v string) (url.URL, error) {
	return sources.get(v, func(v string) (url.URL, error) {
		u, err := url.Parse(v)
		if err != nil {
			return url.URL{}, err
		}
		return *u, nil
	})
}

// memo remembers the results of a function of a string for up to
// maxMemo strings (the first ones asked for); past that it calls the
// function each time. For values that a few strings make up nearly all
// of (event sources, types).
type memo[V any] struct {
	m sync.Map // string -> V
	n atomic.Int32
}

const maxMemo = 256

// get is f(k), remembered. Errors are not.
func (c *memo[V]) get(k string, f func(string) (V, error)) (V, error) {
	if v, ok := c.m.Load(k); ok {
		return v.(V), nil
	}
	if c.n.Load() >= maxMemo {
		return f(k)
	}
	k = strings.Clone(k) // the caller's string may be part of a larger one
	v, err := f(k)
	if err != nil {
		return v, err
	}
	if _, loaded := c.m.LoadOrStore(k, v); !loaded {
		c.n.Add(1)
	}
	return v, nil
}
