package cache_test

import (
	"context"
	"errors"
	"log/slog"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/dronetrack/dronetrack/core/cache"
	"github.com/dronetrack/dronetrack/core/cache/driver"
)

// TestMuxOpensByScheme: a mux hands a URL to the opener registered for its
// scheme, refuses a scheme nobody registered with an error naming the ones
// that are (and not the URL's password), and panics when a scheme is
// registered twice.
func TestMuxOpensByScheme(t *testing.T) {
	var m cache.URLMux
	var got *url.URL
	var gotLog *slog.Logger
	errOpen := errors.New("opener ran")
	m.RegisterCache("mem", cache.OpenerFunc(func(_ context.Context, u *url.URL, log *slog.Logger) (driver.Backend, error) {
		got, gotLog = u, log
		return nil, errOpen
	}))
	logger := slog.New(slog.DiscardHandler)
	if _, err := m.OpenCache(context.Background(), "mem://x?y=1", cache.Options{Logger: logger}); !errors.Is(err, errOpen) {
		t.Fatalf("open mem: err = %v, want the opener's", err)
	}
	if got == nil || got.Host != "x" || got.Query().Get("y") != "1" {
		t.Errorf("opener got %v, want mem://x?y=1 parsed", got)
	}
	if gotLog != logger {
		t.Errorf("opener got logger %p, want Options.Logger %p", gotLog, logger)
	}
	_, err := m.OpenCache(context.Background(), "redis://:secret@host:6379/0", cache.Options{})
	if err == nil || !strings.Contains(err.Error(), `"redis"`) || !strings.Contains(err.Error(), "registered: mem") {
		t.Errorf("unregistered scheme: err = %v, want one naming redis and the registered mem", err)
	}
	if err != nil && strings.Contains(err.Error(), "secret") {
		t.Errorf("unregistered scheme: err = %v shows the password", err)
	}
	func() {
		defer func() {
			if recover() == nil {
				t.Error("second registration of mem did not panic")
			}
		}()
		m.RegisterCache("mem", cache.OpenerFunc(nil))
	}()
}

// TestBackendsRegisterOnImport: importing core/cache/redis and
// core/cache/local (as this test package does) registers their schemes with
// the default mux.
func TestBackendsRegisterOnImport(t *testing.T) {
	if got, want := cache.DefaultURLMux().Schemes(), []string{"local", "redis", "rediss", "unix"}; !slices.Equal(got, want) {
		t.Errorf("default mux schemes = %v, want %v", got, want)
	}
}
