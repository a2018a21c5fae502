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

// BenchmarkPoolGoParallel is hand-offs from several goroutines at once,
// with some of the pool's goroutines busy and others idle, as deliveries of
// several Triggers are.
func BenchmarkPoolGoParallel(b *testing.B) {
	p := New(time.Second)
	b.ReportAllocs()
	b.SetParallelism(16)
	b.RunParallel(func(pb *testing.PB) {
		done := make(chan struct{}, 1)
		for pb.Next() {
			p.Go(func() { done <- struct{}{} })
			<-done
		}
	})
}
