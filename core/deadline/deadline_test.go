package deadline

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestErrWithoutDoneFollowsTheDeadline(t *testing.T) {
	ctx, cancel := WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := ctx.Err(); err != nil {
		t.Fatalf("Err before the deadline = %v, want nil", err)
	}
	dl, ok := ctx.Deadline()
	if !ok || time.Until(dl) > 20*time.Millisecond {
		t.Fatalf("Deadline = %v, %v", dl, ok)
	}
	time.Sleep(time.Until(dl) + time.Millisecond)
	if err := ctx.Err(); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Err after the deadline = %v, want DeadlineExceeded", err)
	}
}

// TestCauseIsTheDeadlines: context.Cause, which looks the cause up
// through Value, gives DeadlineExceeded for a context past its deadline
// and Canceled for one canceled, armed or not before.
func TestCauseIsTheDeadlines(t *testing.T) {
	parent, cancelParent := context.WithCancel(context.Background())
	defer cancelParent()
	ctx, cancel := WithTimeout(parent, 5*time.Millisecond)
	defer cancel()
	time.Sleep(10 * time.Millisecond)
	if err := context.Cause(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Cause past the deadline = %v, want DeadlineExceeded", err)
	}
	ctx2, cancel2 := WithTimeout(parent, time.Hour)
	cancel2()
	if err := context.Cause(ctx2); !errors.Is(err, context.Canceled) {
		t.Fatalf("Cause after cancel = %v, want Canceled", err)
	}
}

func TestDoneClosesAtTheDeadline(t *testing.T) {
	ctx, cancel := WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	select {
	case <-ctx.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("Done not closed 5 s after a 10 ms deadline")
	}
	if err := ctx.Err(); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Err = %v, want DeadlineExceeded", err)
	}
}

func TestCancelBeforeAndAfterDone(t *testing.T) {
	ctx, cancel := WithTimeout(context.Background(), time.Hour)
	cancel()
	if err := ctx.Err(); !errors.Is(err, context.Canceled) {
		t.Fatalf("Err after cancel = %v, want Canceled", err)
	}
	select {
	case <-ctx.Done():
	default:
		t.Fatal("Done called after cancel is not closed")
	}

	ctx, cancel = WithTimeout(context.Background(), time.Hour)
	done := ctx.Done()
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Done not closed by cancel")
	}
	if err := ctx.Err(); !errors.Is(err, context.Canceled) {
		t.Fatalf("Err = %v, want Canceled", err)
	}
}

type key struct{}

func TestParentEndsAndValuesPassThrough(t *testing.T) {
	parent, cancelParent := context.WithCancel(context.WithValue(context.Background(), key{}, "v"))
	ctx, cancel := WithTimeout(parent, time.Hour)
	defer cancel()
	if ctx.Value(key{}) != "v" {
		t.Fatal("the parent's value is lost")
	}
	child, cancelChild := context.WithCancel(ctx) // calls ctx.Done: armed
	defer cancelChild()
	cancelParent()
	select {
	case <-child.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("a context derived from it did not end with the parent")
	}
	if err := ctx.Err(); !errors.Is(err, context.Canceled) {
		t.Fatalf("Err = %v, want the parent's Canceled", err)
	}

	// Not armed: Err still reads the parent.
	parent2, cancelParent2 := context.WithCancel(context.Background())
	ctx2, cancel2 := WithTimeout(parent2, time.Hour)
	defer cancel2()
	cancelParent2()
	if err := ctx2.Err(); !errors.Is(err, context.Canceled) {
		t.Fatalf("Err (not armed) = %v, want the parent's Canceled", err)
	}
}

func TestAnEarlierParentDeadlineWins(t *testing.T) {
	parent, cancelParent := context.WithTimeout(context.Background(), time.Minute)
	defer cancelParent()
	pd, _ := parent.Deadline()
	ctx, cancel := WithTimeout(parent, time.Hour)
	defer cancel()
	if dl, _ := ctx.Deadline(); !dl.Equal(pd) {
		t.Fatalf("Deadline = %v, want the parent's %v", dl, pd)
	}
}

// BenchmarkUnwaited is a bounded call whose callee never waits on its
// context (the bolt store), against context.WithTimeout.
func BenchmarkUnwaited(b *testing.B) {
	b.Run("deadline", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			ctx, cancel := WithTimeout(context.Background(), 5*time.Second)
			_ = ctx.Err()
			cancel()
		}
	})
	b.Run("context", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			_ = ctx.Err()
			cancel()
		}
	})
}
