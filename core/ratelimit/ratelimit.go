// Package ratelimit keeps one token bucket per key (a drone, a client IP) so
// one misbehaving caller is answered 429 with Retry-After before it costs a
// store lookup or a broker write, while everyone else is served.
//
// Buckets are golang.org/x/time/rate limiters kept in sharded maps; a bucket
// that has refilled completely carries no state worth keeping and is dropped
// by a periodic sweep, so memory follows the callers active in the last few
// seconds, not every key ever seen.
package ratelimit

import (
	"fmt"
	"hash/maphash"
	"math"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Limit is one rate: Rate requests per second sustained, Burst at once.
// A zero Rate means unlimited.
type Limit struct {
	Rate  float64
	Burst int
}

// Off reports whether the limit lets everything through.
func (l Limit) Off() bool { return l.Rate <= 0 }

// String renders the limit in the form ParseLimit reads.
func (l Limit) String() string {
	if l.Off() {
		return "off"
	}
	return strconv.FormatFloat(l.Rate, 'g', -1, 64) + "/s:" + strconv.Itoa(l.Burst)
}

// ParseLimit reads "RATE/s:BURST" (e.g. "50/s:100"), "RATE/s" (burst =
// 2×rate) or "off"/"0". It is the format of the RATE_LIMIT_* settings.
func ParseLimit(s string) (Limit, error) {
	s = strings.TrimSpace(s)
	if s == "off" || s == "0" {
		return Limit{}, nil
	}
	rs, bs, hasBurst := strings.Cut(s, ":")
	rs = strings.TrimSuffix(rs, "/s")
	r, err := strconv.ParseFloat(rs, 64)
	if err != nil || r <= 0 || r > maxRate || math.IsNaN(r) {
		return Limit{}, fmt.Errorf("rate limit %q: want RATE/s:BURST such as 50/s:100, or off", s)
	}
	l := Limit{Rate: r, Burst: int(math.Ceil(2 * r))}
	if hasBurst {
		b, err := strconv.Atoi(bs)
		if err != nil || b < 1 {
			return Limit{}, fmt.Errorf("rate limit %q: burst must be a positive integer", s)
		}
		l.Burst = b
	}
	return l, nil
}

const shards = 32

// maxRate bounds a configured rate; beyond it a limit means nothing and its
// default burst would overflow.
const maxRate = 1e9

// Limiter is a set of token buckets, one per key, all with the same Limit.
// It is safe for concurrent use. The zero value is not usable; call New.
type Limiter struct {
	limit  Limit
	seed   maphash.Seed
	shards [shards]shard
}

type shard struct {
	mu      sync.Mutex
	buckets map[string]*rate.Limiter
	swept   time.Time
}

// sweepEvery bounds how often a shard drops its full buckets.
const sweepEvery = 10 * time.Second

// New returns a limiter applying l to every key; a nil *Limiter (what New
// returns for an Off limit) allows everything.
func New(l Limit) *Limiter {
	if l.Off() {
		return nil
	}
	if l.Burst < 1 {
		l.Burst = 1
	}
	lim := &Limiter{limit: l, seed: maphash.MakeSeed()}
	for i := range lim.shards {
		lim.shards[i].buckets = map[string]*rate.Limiter{}
	}
	return lim
}

// Allow takes one token from key's bucket at now. When the bucket is empty it
// returns false and how long until a token is available (the Retry-After).
func (l *Limiter) Allow(key string, now time.Time) (bool, time.Duration) {
	if l == nil {
		return true, 0
	}
	sh := &l.shards[maphash.String(l.seed, key)%shards]
	sh.mu.Lock()
	if now.Sub(sh.swept) > sweepEvery {
		sh.sweep(now, float64(l.limit.Burst))
	}
	b := sh.buckets[key]
	if b == nil {
		b = rate.NewLimiter(rate.Limit(l.limit.Rate), l.limit.Burst)
		sh.buckets[key] = b
	}
	sh.mu.Unlock()
	r := b.ReserveN(now, 1)
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return false, d
	}
	return true, 0
}

// sweep drops buckets that have refilled: a new bucket would be identical.
func (sh *shard) sweep(now time.Time, burst float64) {
	sh.swept = now
	for k, b := range sh.buckets {
		if b.TokensAt(now) >= burst {
			delete(sh.buckets, k)
		}
	}
}

// Len is how many buckets are held (for tests and metrics).
func (l *Limiter) Len() int {
	if l == nil {
		return 0
	}
	n := 0
	for i := range l.shards {
		l.shards[i].mu.Lock()
		n += len(l.shards[i].buckets)
		l.shards[i].mu.Unlock()
	}
	return n
}

// RetryAfter renders a wait as a Retry-After value: whole seconds, at least 1.
func RetryAfter(d time.Duration) string {
	s := int64(math.Ceil(d.Seconds()))
	if s < 1 {
		s = 1
	}
	return strconv.FormatInt(s, 10)
}

// ClientIP is the address a request came from. With trustedHops 0 it is the
// peer address; with N > 0 it is the N-th X-Forwarded-For entry counted from
// the right, the one written by the outermost of N trusted proxies (entries
// further left are whatever the client sent and cannot be trusted). When the
// header has fewer entries the peer address is used.
func ClientIP(r *http.Request, trustedHops int) string {
	if trustedHops > 0 {
		var hops []string
		for _, h := range r.Header.Values("X-Forwarded-For") {
			for _, p := range strings.Split(h, ",") {
				if p = strings.TrimSpace(p); p != "" {
					hops = append(hops, p)
				}
			}
		}
		if len(hops) >= trustedHops {
			return hops[len(hops)-trustedHops]
		}
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// Network is the budget key of a client address: an IPv6 address counts as
// its /64 (a host is routinely given a whole /64, so per-address budgets
// would be 2^64 budgets), an IPv4 address as itself. Anything that is not
// an address is returned unchanged.
func Network(ip string) string {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return ip
	}
	if a = a.Unmap(); a.Is4() {
		return a.String()
	}
	p, _ := a.WithZone("").Prefix(64)
	return p.String()
}
