// Package tracing carries W3C Trace Context (traceparent/tracestate) from a
// drone's request through the CloudEvents that ingest, the broker, process
// and cache-refresh pass along, using the CloudEvents distributed tracing
// extension (extension attributes "traceparent" and "tracestate"), so one
// trace id ties together every log line a report causes.
//
// Why not the OpenTelemetry SDK: Dronetrack exports no spans yet (there is
// no collector in one-machine mode, and none is part of the cluster
// prerequisites), and the SDK with no exporter would only mint ids. What
// Knative and any tracing backend need is the propagated context in the W3C
// format, which this package reads and writes exactly as
// go.opentelemetry.io/otel/propagation.TraceContext does (version 00, lower
// case hex, all-zero ids and version ff rejected). When spans are exported
// later, a function can hand Context.TraceParent to the otel propagator and
// its spans join the same trace. The package has no dependency beyond the
// CloudEvents SDK, so every function module can use it.
//
// Each hop is one logical span: a function takes the incoming context
// (request header or event extension), makes a Child with a fresh span id,
// logs trace_id, span_id and parent_span_id, and stamps the child on the
// events it sends. Knative's broker passes extension attributes through but
// does not copy them to a subscriber's reply, so process copies the context
// onto its state.updated reply itself.
package tracing

import (
	"context"
	"encoding/hex"
	"math/rand/v2"
	"net/http"
	"strings"

	"github.com/cloudevents/sdk-go/v2/event"
)

// Extension attribute and HTTP header names from the CloudEvents
// distributed tracing extension and W3C Trace Context.
const (
	ExtTraceParent = "traceparent"
	ExtTraceState  = "tracestate"
	HeaderParent   = "traceparent"
	HeaderState    = "tracestate"
)

// Context is one span's trace context: the trace it belongs to, its own
// span id, the span it is a child of (zero at a trace's root or when the
// parent is unknown), the W3C trace flags and the vendor tracestate.
type Context struct {
	TraceID  [16]byte
	SpanID   [8]byte
	ParentID [8]byte
	Flags    byte
	State    string
}

// FlagSampled is the W3C "sampled" trace flag.
const FlagSampled byte = 0x01

// maxState bounds a carried tracestate (W3C allows 32 members of at most
// 256 bytes; a longer value is dropped, not truncated, as the spec asks).
const maxState = 512

// Parse reads a traceparent value. It accepts version 00 exactly and, as
// W3C asks, higher versions by their first four fields; it rejects version
// ff, upper-case or malformed hex and all-zero ids.
func Parse(traceparent string) (Context, bool) {
	var c Context
	s := traceparent
	if len(s) < 55 || s[2] != '-' || s[35] != '-' || s[52] != '-' {
		return c, false
	}
	version, ok := hexByte(s[0:2])
	if !ok || version == 0xff || (version == 0 && len(s) != 55) || (version > 0 && len(s) > 55 && s[55] != '-') {
		return c, false
	}
	if !decodeHex(c.TraceID[:], s[3:35]) || !decodeHex(c.SpanID[:], s[36:52]) {
		return Context{}, false
	}
	if c.TraceID == [16]byte{} || c.SpanID == [8]byte{} {
		return Context{}, false
	}
	if c.Flags, ok = hexByte(s[53:55]); !ok {
		return Context{}, false
	}
	return c, true
}

// New starts a trace: random trace and span ids, sampled.
func New() Context {
	c := Context{Flags: FlagSampled}
	fill(c.TraceID[:])
	fill(c.SpanID[:])
	return c
}

// Child is the next hop's span: same trace, flags and state, a fresh span
// id, and this span as its parent.
func (c Context) Child() Context {
	n := Context{TraceID: c.TraceID, ParentID: c.SpanID, Flags: c.Flags, State: c.State}
	fill(n.SpanID[:])
	return n
}

// Valid reports whether c holds a trace (the zero Context does not).
func (c Context) Valid() bool { return c.TraceID != [16]byte{} && c.SpanID != [8]byte{} }

// TraceParent formats c as a version 00 traceparent value.
func (c Context) TraceParent() string {
	var b [55]byte
	copy(b[:], "00-")
	hex.Encode(b[3:35], c.TraceID[:])
	b[35] = '-'
	hex.Encode(b[36:52], c.SpanID[:])
	b[52] = '-'
	hex.Encode(b[53:55], []byte{c.Flags})
	return string(b[:])
}

// TraceIDString is the trace id in hex, as logged and as tracing backends
// show it.
func (c Context) TraceIDString() string { return hex.EncodeToString(c.TraceID[:]) }

// SpanIDString is the span id in hex.
func (c Context) SpanIDString() string { return hex.EncodeToString(c.SpanID[:]) }

// ParentIDString is the parent span id in hex, "" at a root.
func (c Context) ParentIDString() string {
	if c.ParentID == [8]byte{} {
		return ""
	}
	return hex.EncodeToString(c.ParentID[:])
}

// LogAttrs are the slog key/value pairs that correlate a log line with the
// trace: trace_id, span_id and, when known, parent_span_id. Nothing for
// an invalid Context.
func (c Context) LogAttrs() []any {
	if !c.Valid() {
		return nil
	}
	attrs := []any{"trace_id", c.TraceIDString(), "span_id", c.SpanIDString()}
	if p := c.ParentIDString(); p != "" {
		attrs = append(attrs, "parent_span_id", p)
	}
	return attrs
}

// FromHeader continues the caller's trace from its traceparent and
// tracestate headers: the returned span is a child of the caller's. With no
// valid traceparent it starts a new trace, so every request has one.
func FromHeader(h http.Header) Context {
	// Canonical keys looked up directly: Get would canonicalize (and
	// allocate) on every request.
	var tp string
	if v := h["Traceparent"]; len(v) > 0 {
		tp = v[0]
	}
	parent, ok := Parse(tp)
	if !ok {
		return New()
	}
	parent.State = cleanState(h["Tracestate"])
	return parent.Child()
}

// FromEvent is the span for handling e: a child of the span that sent it
// (e's traceparent extension). ok is false when e carries no valid
// traceparent; the returned Context then starts a new trace.
func FromEvent(e event.Event) (_ Context, ok bool) {
	// The v1 context's map is read, not copied: Extensions() copies every
	// extension on each call, on every event every function handles.
	var ext map[string]any
	if ec, isV1 := e.Context.(*event.EventContextV1); isV1 {
		ext = ec.Extensions
	} else {
		ext = e.Extensions()
	}
	tp, _ := ext[ExtTraceParent].(string)
	parent, ok := Parse(tp)
	if !ok {
		return New(), false
	}
	if ts, isString := ext[ExtTraceState].(string); isString {
		parent.State = cleanState([]string{ts})
	}
	return parent.Child(), true
}

// Inject stamps c on e as the distributed tracing extension, so the
// receiver's span becomes c's child. An invalid c clears them.
func (c Context) Inject(e *event.Event) {
	if !c.Valid() {
		e.SetExtension(ExtTraceParent, nil)
		e.SetExtension(ExtTraceState, nil)
		return
	}
	// Fast path for the v1 context every Dronetrack event has: the names
	// are valid constants and the values strings, so SetExtension's
	// validation (most of Inject's cost) is skipped.
	if ec, ok := e.Context.(*event.EventContextV1); ok {
		if ec.Extensions == nil {
			ec.Extensions = make(map[string]any, 2)
		}
		ec.Extensions[ExtTraceParent] = c.TraceParent()
		if c.State != "" {
			ec.Extensions[ExtTraceState] = c.State
		} else {
			delete(ec.Extensions, ExtTraceState)
		}
		return
	}
	e.SetExtension(ExtTraceParent, c.TraceParent())
	if c.State != "" {
		e.SetExtension(ExtTraceState, c.State)
	} else {
		e.SetExtension(ExtTraceState, nil)
	}
}

// SetHeader writes c as traceparent/tracestate HTTP headers.
func (c Context) SetHeader(h http.Header) {
	if !c.Valid() {
		return
	}
	h.Set(HeaderParent, c.TraceParent())
	if c.State != "" {
		h.Set(HeaderState, c.State)
	}
}

type ctxKey struct{}

// NewContext returns ctx carrying c, for code between the edge that read
// the trace context and the code that stamps it on an event.
func NewContext(ctx context.Context, c Context) context.Context {
	return context.WithValue(ctx, ctxKey{}, c)
}

// FromContext returns the Context stored by NewContext, or the zero
// Context (not Valid).
func FromContext(ctx context.Context) Context {
	c, _ := ctx.Value(ctxKey{}).(Context)
	return c
}

// cleanState joins tracestate header lines and drops the lot when it is
// too long or holds characters a header may not (W3C: drop, don't mend).
func cleanState(lines []string) string {
	var s string
	if len(lines) == 1 {
		s = strings.TrimSpace(lines[0])
	} else {
		s = strings.TrimSpace(strings.Join(lines, ","))
	}
	if len(s) > maxState {
		return ""
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return ""
		}
	}
	return s
}

// nibble is the value of a lower-case hex digit, or -1 (W3C allows no
// upper case).
func nibble(c byte) int {
	switch {
	case '0' <= c && c <= '9':
		return int(c - '0')
	case 'a' <= c && c <= 'f':
		return int(c-'a') + 10
	}
	return -1
}

// decodeHex fills dst from exactly 2*len(dst) lower-case hex digits,
// without allocating (it runs on every ingest request).
func decodeHex(dst []byte, s string) bool {
	if len(s) != 2*len(dst) {
		return false
	}
	for i := range dst {
		hi, lo := nibble(s[2*i]), nibble(s[2*i+1])
		if hi < 0 || lo < 0 {
			return false
		}
		dst[i] = byte(hi<<4 | lo)
	}
	return true
}

func hexByte(s string) (byte, bool) {
	var b [1]byte
	return b[0], decodeHex(b[:], s)
}

// fill draws random id bytes from math/rand/v2's runtime generator
// (ChaCha8, randomly seeded): ids must be unique and unguessable enough to
// not collide, not secret, and crypto/rand's system call was the larger
// part of a hop's cost. An all-zero id, which is invalid, is re-drawn.
func fill(b []byte) {
	for {
		var nonzero bool
		for i := 0; i < len(b); i += 8 {
			v := rand.Uint64()
			for j := 0; j < 8 && i+j < len(b); j++ {
				b[i+j] = byte(v >> (8 * j))
				nonzero = nonzero || b[i+j] != 0
			}
		}
		if nonzero {
			return
		}
	}
}
