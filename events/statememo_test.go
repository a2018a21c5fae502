package events

import (
	"testing"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
)

func stateEvent(t *testing.T, id string, su StateUpdated) cloudevents.Event {
	t.Helper()
	e := cloudevents.NewEvent()
	e.SetID(id)
	e.SetSource("/test")
	e.SetType(TypeStateUpdated)
	if err := e.SetData(cloudevents.ApplicationJSON, su); err != nil {
		t.Fatal(err)
	}
	return e
}

// TestDecodeStateUpdatedSharesOnlyTheSameEvent: a second decode of the
// same event gives the same state; an event with the same id but other
// data is decoded, not mistaken for the first.
func TestDecodeStateUpdatedSharesOnlyTheSameEvent(t *testing.T) {
	ts := time.Date(2026, 12, 6, 9, 0, 0, 0, time.UTC)
	a := StateUpdated{TenantID: "t1", DroneID: "d1", State: DroneState{TS: ts, Lat: 47.1, Lon: 8.5}}
	b := StateUpdated{TenantID: "t1", DroneID: "d1", State: DroneState{TS: ts.Add(time.Second), Lat: 47.2, Lon: 8.6}}
	for range 2 {
		got, err := DecodeStateUpdated(stateEvent(t, "memo-1", a))
		if err != nil || got.DroneID != "d1" || !got.State.TS.Equal(ts) || got.State.Lat != 47.1 {
			t.Fatalf("decode = %+v, %v", got, err)
		}
	}
	got, err := DecodeStateUpdated(stateEvent(t, "memo-1", b))
	if err != nil || got.State.Lat != 47.2 || !got.State.TS.Equal(ts.Add(time.Second)) {
		t.Fatalf("same id, other data: decode = %+v, %v (the first event's state?)", got, err)
	}
	other := stateEvent(t, "memo-2", a)
	other.SetType(TypeTelemetryReceived)
	if _, err := DecodeStateUpdated(other); err == nil {
		t.Fatal("an event of another type decoded as state.updated")
	}
	if _, err := DecodeStateUpdated(stateEvent(t, "memo-3", a)); err != nil {
		t.Fatal(err)
	}
	bad := stateEvent(t, "memo-4", a)
	_ = bad.SetData(cloudevents.ApplicationJSON, []byte(`{"tenantId":1}`))
	if _, err := DecodeStateUpdated(bad); err == nil {
		t.Fatal("undecodable data decoded")
	}
}

// TestStateMemoForgetsTheOldest: the memo holds its size, the oldest
// leaving first.
func TestStateMemoForgetsTheOldest(t *testing.T) {
	m := newStateMemo(2)
	data := []byte("x")
	m.put("a", data, StateUpdated{DroneID: "a"})
	m.put("b", data, StateUpdated{DroneID: "b"})
	m.put("c", data, StateUpdated{DroneID: "c"})
	if _, ok := m.get("a", data); ok {
		t.Fatal("the oldest is still held past the memo's size")
	}
	for _, id := range []string{"b", "c"} {
		if v, ok := m.get(id, data); !ok || v.DroneID != id {
			t.Fatalf("get(%s) = %+v, %v", id, v, ok)
		}
	}
	if len(m.at) != 2 {
		t.Fatalf("index holds %d ids, want 2", len(m.at))
	}
}
