// Package urlmux is the scheme table behind the store and cache URL muxes
// (core/store/storeurl, core/cache), in the style of gocloud.dev's
// openurl.SchemeMap: backend packages register an opener per scheme in
// init(), and opening a URL finds the opener of its scheme.
package urlmux

import (
	"fmt"
	"net/url"
	"slices"
	"strings"
	"sync"
)

// SchemeMap maps URL schemes to openers of type O. The zero value is an
// empty map, safe for concurrent use.
type SchemeMap[O any] struct {
	mu      sync.RWMutex
	openers map[string]O
}

// Register makes o open URLs of scheme. Registering a scheme twice panics:
// two backends claiming one scheme is a wiring bug, not a choice. kind names
// the mux in the message ("store", "cache").
func (m *SchemeMap[O]) Register(kind, scheme string, o O) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.openers == nil {
		m.openers = map[string]O{}
	}
	if _, dup := m.openers[scheme]; dup {
		panic(fmt.Sprintf("%s: scheme %q registered twice", kind, scheme))
	}
	m.openers[scheme] = o
}

// Schemes lists the registered schemes, sorted.
func (m *SchemeMap[O]) Schemes() []string {
	m.mu.RLock()
	defer m.mu.RUnlock()
	out := make([]string, 0, len(m.openers))
	for s := range m.openers {
		out = append(out, s)
	}
	slices.Sort(out)
	return out
}

// Lookup parses rawURL and returns it with the opener of its scheme. An
// unregistered scheme is an error naming the registered ones and example, a
// backend package whose import registers one, since it usually means the
// program did not import the backend. Errors show the URL without its
// password.
func (m *SchemeMap[O]) Lookup(kind, example, rawURL string) (*url.URL, O, error) {
	var zero O
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, zero, fmt.Errorf("%s url: %w", kind, err)
	}
	m.mu.RLock()
	o, ok := m.openers[u.Scheme]
	m.mu.RUnlock()
	if !ok {
		return nil, zero, fmt.Errorf("%s url %q: unknown scheme %q (registered: %s; a backend registers when its package, e.g. %s, is imported)",
			kind, u.Redacted(), u.Scheme, strings.Join(m.Schemes(), ", "), example)
	}
	return u, o, nil
}
