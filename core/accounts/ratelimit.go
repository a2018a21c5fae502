package accounts

import (
	"math"
	"sync"
	"time"
)

// limiter is a token bucket per key (email + client IP) held in memory. Each
// replica limits on its own, so N replicas allow N times the rate: still a
// hard cap on online guessing, and no shared state on the login path.
type limiter struct {
	mu      sync.Mutex
	burst   float64
	every   time.Duration // one token refills per every
	buckets map[string]*bucket
	max     int // entries kept before full buckets are dropped
}

type bucket struct {
	tokens float64
	at     time.Time
}

func newLimiter(burst int, every time.Duration) *limiter {
	return &limiter{burst: float64(burst), every: every, buckets: map[string]*bucket{}, max: 100_000}
}

// take spends a token for key; when none is left it returns false and how
// long until one is.
func (l *limiter) take(key string, now time.Time) (bool, time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	b, ok := l.buckets[key]
	if !ok {
		if len(l.buckets) >= l.max {
			l.prune(now)
		}
		b = &bucket{tokens: l.burst, at: now}
		l.buckets[key] = b
	}
	b.tokens = math.Min(l.burst, b.tokens+float64(now.Sub(b.at))/float64(l.every))
	b.at = now
	if b.tokens >= 1 {
		b.tokens--
		return true, 0
	}
	wait := time.Duration((1 - b.tokens) * float64(l.every))
	return false, wait
}

// prune drops buckets that have refilled completely (they behave like new).
func (l *limiter) prune(now time.Time) {
	for k, b := range l.buckets {
		if b.tokens+float64(now.Sub(b.at))/float64(l.every) >= l.burst {
			delete(l.buckets, k)
		}
	}
}
