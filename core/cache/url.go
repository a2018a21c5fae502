package cache

import (
	"context"
	"log/slog"
	"net/url"

	"github.com/dronetrack/dronetrack/core/cache/driver"
	"github.com/dronetrack/dronetrack/core/internal/urlmux"
)

// URLOpener opens the backend a URL of its scheme names. A backend package
// implements it and registers it under its scheme(s). log is the Cache's
// logger (Options.Logger or slog.Default), for a backend client's own lines.
type URLOpener interface {
	OpenCacheURL(ctx context.Context, u *url.URL, log *slog.Logger) (driver.Backend, error)
}

// OpenerFunc adapts a function to URLOpener.
type OpenerFunc func(ctx context.Context, u *url.URL, log *slog.Logger) (driver.Backend, error)

// OpenCacheURL calls f.
func (f OpenerFunc) OpenCacheURL(ctx context.Context, u *url.URL, log *slog.Logger) (driver.Backend, error) {
	return f(ctx, u, log)
}

// URLMux maps URL schemes to the openers registered for them, in the style
// of gocloud.dev: each backend package registers its scheme in init(), and a
// program links exactly the backends it imports:
//
//	import _ "github.com/dronetrack/dronetrack/core/cache/redis" // redis://, rediss://, unix://
//	import _ "github.com/dronetrack/dronetrack/core/cache/local" // local://
//
// The zero value is an empty mux; DefaultURLMux is the one backends register
// with.
type URLMux struct {
	schemes urlmux.SchemeMap[URLOpener]
}

// RegisterCache makes o open URLs of scheme. Registering a scheme twice
// panics: two backends claiming one scheme is a wiring bug, not a choice.
func (m *URLMux) RegisterCache(scheme string, o URLOpener) { m.schemes.Register("cache", scheme, o) }

// Schemes lists the registered schemes, sorted.
func (m *URLMux) Schemes() []string { return m.schemes.Schemes() }

// OpenCache opens the cache named by rawURL with the opener of its scheme.
// An unregistered scheme is an error naming the registered ones, since it
// usually means the program did not import the backend's package.
func (m *URLMux) OpenCache(ctx context.Context, rawURL string, opt Options) (*Cache, error) {
	u, o, err := m.schemes.Lookup("cache", "core/cache/redis", rawURL)
	if err != nil {
		return nil, err
	}
	if opt.Logger == nil {
		opt.Logger = slog.Default()
	}
	b, err := o.OpenCacheURL(ctx, u, opt.Logger)
	if err != nil {
		return nil, err
	}
	return New(b, opt), nil
}

var defaultMux = new(URLMux)

// DefaultURLMux is the mux backends register with in init() and Open uses.
func DefaultURLMux() *URLMux { return defaultMux }

// Register registers o for scheme on DefaultURLMux; backend packages call it
// from init().
func Register(scheme string, o URLOpener) { defaultMux.RegisterCache(scheme, o) }

// Open opens the cache named by rawURL through DefaultURLMux, e.g.
// redis://host:port/db or local://NAME (the scheme's backend package must be
// imported). Close the returned Cache when done.
func Open(ctx context.Context, rawURL string, opt Options) (*Cache, error) {
	return defaultMux.OpenCache(ctx, rawURL, opt)
}
