package flightupdate_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/dronetrack/dronetrack/core/flights"
	"github.com/dronetrack/dronetrack/core/flights/flightupdate"
	"github.com/dronetrack/dronetrack/core/store"
	"github.com/dronetrack/dronetrack/core/store/bolt"
	"github.com/dronetrack/dronetrack/events"
)

// meddling is a store whose next history read is preceded by before: a
// batch another writer commits between a replay's read and its write.
type meddling struct {
	*bolt.Store
	before func()
}

func (m *meddling) Track(ctx context.Context, q store.TrackQuery) ([]store.TrackPoint, error) {
	if f := m.before; f != nil {
		m.before = nil
		defer f() // after the read: the read misses what f writes
	}
	return m.Store.Track(ctx, q)
}

// A replay does not write over a report applied after it read history: it
// reads again, and the flights and detector hold every report.
func TestReplayReadsAgainOverAReportAppliedMeanwhile(t *testing.T) {
	ctx := context.Background()
	st, err := bolt.Open(filepath.Join(t.TempDir(), "store.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.CreateTenant(ctx, store.Tenant{ID: "t"}); err != nil {
		t.Fatal(err)
	}
	if err := st.CreateDrone(ctx, store.Drone{ID: "d", TenantID: "t", KeyHash: "h"}); err != nil {
		t.Fatal(err)
	}
	s := flights.DefaultSettings()
	t0 := time.Now().Add(-time.Hour).Truncate(time.Second)
	armed, h, v := true, 40.0, 8.0
	rep := func(i int) events.Report {
		return events.Report{TS: t0.Add(time.Duration(i) * time.Second), Lat: 47 + float64(i)*1e-4, Lon: 8,
			Armed: &armed, Height: &h, Speed: &v}
	}
	deliver := func(st flightupdate.Store, w interface {
		AppendTrack(context.Context, []store.TrackPoint) error
	}, r events.Report) flightupdate.Result {
		t.Helper()
		if err := w.AppendTrack(ctx, []store.TrackPoint{{TenantID: "t", DroneID: "d", Report: r}}); err != nil {
			t.Fatal(err)
		}
		res, err := flightupdate.Update(ctx, st, s, "t", "d", []events.Report{r}, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	for i := 0; i < 20; i++ {
		if i != 5 {
			deliver(st, st, rep(i))
		}
	}
	// Report 5 comes late; while its replay reads history, report 20 is
	// applied by another writer.
	m := &meddling{Store: st, before: func() { deliver(st, st, rep(20)) }}
	res := deliver(m, st, rep(5))
	if !res.Replayed || res.Points != 21 {
		t.Errorf("late report: %+v; want a replay over 21 points (read again after report 20)", res)
	}
	det, err := st.UpdateFlights(ctx, "t", "d", func(prev flights.Detector) (flights.Detector, flights.Changes, bool) {
		return prev, flights.Changes{}, false
	})
	if err != nil {
		t.Fatal(err)
	}
	if !det.Head.Equal(rep(20).TS) {
		t.Errorf("detector head at %v; want report 20's %v (the replay wrote over it)", det.Head.Sub(t0), rep(20).TS.Sub(t0))
	}
	fl, err := st.ListFlights(ctx, store.FlightQuery{TenantID: "t", DroneID: "d", From: t0.Add(-time.Hour), To: t0.Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	if len(fl) != 1 || fl[0].Points != 21 {
		t.Errorf("flights %+v; want one of 21 points", fl)
	}
}
