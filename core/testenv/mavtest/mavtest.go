// Package mavtest is a simulated MAVLink vehicle for tests of the bridge:
// a gomavlib node that sends to the bridge's UDP port.
package mavtest

import (
	"sync"
	"testing"
	"time"

	"github.com/bluenviron/gomavlib/v3"
	"github.com/bluenviron/gomavlib/v3/pkg/dialects/common"
)

// Vehicle starts a MAVLink v2 node of system 1 sending to udp (the bridge's
// listen address) and returns it once its channel is open, so the first
// message written is not lost. systemType is its HEARTBEAT type (0: the
// node sends no heartbeat type of its own choosing, gomavlib's default).
// The node is closed when the test ends; its incoming events are drained.
func Vehicle(t testing.TB, udp string, systemType common.MAV_TYPE) *gomavlib.Node {
	t.Helper()
	v := &gomavlib.Node{
		Endpoints:   []gomavlib.EndpointConf{gomavlib.EndpointUDPClient{Address: udp}},
		Dialect:     common.Dialect,
		OutVersion:  gomavlib.V2,
		OutSystemID: 1,
	}
	if systemType != 0 {
		v.HeartbeatSystemType = int(systemType)
	}
	if err := v.Initialize(); err != nil {
		t.Fatalf("mavlink vehicle: %v", err)
	}
	t.Cleanup(v.Close)
	open := make(chan struct{})
	var once sync.Once
	go func() {
		for e := range v.Events() {
			if _, ok := e.(*gomavlib.EventChannelOpen); ok {
				once.Do(func() { close(open) })
			}
		}
	}()
	select {
	case <-open:
	case <-time.After(30 * time.Second):
		t.Fatalf("mavlink vehicle: no channel to %s opened within 30 s", udp)
	}
	return v
}
