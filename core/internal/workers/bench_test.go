package workers

import (
	"sync"
	"testing"
	"time"
)

// BenchmarkPoolGo is one hand-off to an idle goroutine of the pool and
// back, as a delivery is handed to a worker; BenchmarkGoStatement is the
// same with a new goroutine each time.
func BenchmarkPoolGo(b *testing.B) {
	p := New(time.Second)
	var wg sync.WaitGroup
	b.ReportAllocs()
	for b.Loop() {
		wg.Add(1)
		p.Go(func() { wg.Done() })
		wg.Wait()
	}
}

func BenchmarkGoStatement(b *testing.B) {
	var wg sync.WaitGroup
	b.ReportAllocs()
	for b.Loop() {
		wg.Add(1)
		go func() { wg.Done() }()
		wg.Wait()
	}
}
