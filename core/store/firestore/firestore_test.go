package firestore

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"reflect"
	"testing"
	"time"

	"github.com/dronetrack/dronetrack/core/store"
	"github.com/dronetrack/dronetrack/core/store/storetest"
	"github.com/dronetrack/dronetrack/core/testenv"
	"github.com/dronetrack/dronetrack/events"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// open returns a store on the emulator in a project of the test's own.
func open(t testing.TB) *Store {
	t.Helper()
	testenv.Firestore(t)
	s, err := Open(context.Background(), testenv.NewProjectID(t), "")
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return s
}

func TestContract(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store { return open(t) })
}

// TestContractDroneWriter runs the store.DroneWriter contract on the emulator.
func TestContractDroneWriter(t *testing.T) {
	storetest.RunDroneWriter(t, func(t *testing.T) store.Store { return open(t) })
}

// TestContractBulkWriter runs the suite with the AppendTrack mode not chosen
// by default, so switching modes stays a one-line change.
func TestContractBulkWriter(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		s := open(t)
		s.mode = appendBulkWriter
		return s
	})
}

// TestStateRoundTripsEveryField fills every field of events.DroneState and
// events.Report by reflection, so a field added there but not to the stored
// documents fails here instead of silently vanishing.
func TestStateRoundTripsEveryField(t *testing.T) {
	var st events.DroneState
	fill(t, reflect.ValueOf(&st).Elem())
	if diff := cmp.Diff(&st, toStateDoc(st).state(), cmpopts.EquateApproxTime(0)); diff != "" {
		t.Errorf("state round trip (-want +got):\n%s", diff)
	}
	p := store.TrackPoint{TenantID: "t", DroneID: "d", ExpireAt: time.Unix(99, 0).UTC()}
	fill(t, reflect.ValueOf(&p.Report).Elem())
	if diff := cmp.Diff(p, toTrackDoc(p).point(), cmpopts.EquateApproxTime(0)); diff != "" {
		t.Errorf("track point round trip (-want +got):\n%s", diff)
	}
}

func fill(t *testing.T, v reflect.Value) {
	for i := 0; i < v.NumField(); i++ {
		f := v.Field(i)
		switch {
		case f.Type() == reflect.TypeOf(time.Time{}):
			f.Set(reflect.ValueOf(time.Unix(int64(1000+i), 0).UTC()))
		case f.Kind() == reflect.Float64:
			f.SetFloat(float64(i) + 0.5)
		case f.Kind() == reflect.Pointer && f.Type().Elem().Kind() == reflect.Float64:
			x := float64(i) + 0.25
			f.Set(reflect.ValueOf(&x))
		case f.Kind() == reflect.Pointer && f.Type().Elem().Kind() == reflect.Uint64:
			x := uint64(1)<<63 + uint64(i) // above int64: the bit-cast must be lossless
			f.Set(reflect.ValueOf(&x))
		case f.Kind() == reflect.Pointer && f.Type().Elem().Kind() == reflect.Int:
			x := 100 + i
			f.Set(reflect.ValueOf(&x))
		case f.Kind() == reflect.Pointer && f.Type().Elem().Kind() == reflect.Bool:
			x := true
			f.Set(reflect.ValueOf(&x))
		case f.Kind() == reflect.Pointer && f.Type().Elem().Kind() == reflect.String:
			x := fmt.Sprintf("s%d", i)
			f.Set(reflect.ValueOf(&x))
		case f.Kind() == reflect.Pointer && f.Type().Elem().Kind() == reflect.Struct:
			f.Set(reflect.New(f.Type().Elem()))
			fill(t, f.Elem())
		default:
			t.Fatalf("fill: field %s has type %s; teach fill and the store model about it", v.Type().Field(i).Name, f.Type())
		}
	}
}

// TestUnreachableIsUnavailable: a database that cannot be reached is
// ErrUnavailable, so ingest answers 503 and the broker retries.
func TestUnreachableIsUnavailable(t *testing.T) {
	testenv.Firestore(t) // keep the variable's owner in charge of restoring it
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := l.Addr().String()
	l.Close() // nothing listens there now
	prev := os.Getenv("FIRESTORE_EMULATOR_HOST")
	t.Cleanup(func() { os.Setenv("FIRESTORE_EMULATOR_HOST", prev) })
	os.Setenv("FIRESTORE_EMULATOR_HOST", dead)
	s, err := Open(context.Background(), testenv.NewProjectID(t), "")
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer s.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	_, err = s.Tenant(ctx, "acme")
	if !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("Tenant on an unreachable database: %v; want ErrUnavailable", err)
	}
}

func BenchmarkAppendTrack(b *testing.B) {
	for _, mode := range []struct {
		name string
		mode appendMode
	}{{"batches", appendBatches}, {"bulkwriter", appendBulkWriter}} {
		b.Run(mode.name, func(b *testing.B) {
			s := open(b)
			defer s.Close()
			s.mode = mode.mode
			ctx := context.Background()
			base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
			pts := make([]store.TrackPoint, 100)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				for j := range pts {
					pts[j] = store.TrackPoint{TenantID: "t", DroneID: fmt.Sprintf("d%d", j%4),
						Report: events.Report{TS: base.Add(time.Duration(i*100+j) * time.Millisecond), Lat: 1, Lon: 2}}
				}
				if err := s.AppendTrack(ctx, pts); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N*len(pts))/b.Elapsed().Seconds(), "points/s")
		})
	}
}
