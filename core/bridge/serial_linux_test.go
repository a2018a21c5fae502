//go:build linux

package bridge_test

import (
	"context"
	"fmt"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/bluenviron/gomavlib/v3"
	"github.com/bluenviron/gomavlib/v3/pkg/dialects/common"
	"golang.org/x/sys/unix"

	"github.com/dronetrack/dronetrack/core/bridge"
)

// openPTY returns the master of a new pseudo-terminal and the path of its
// slave, which stands in for a telemetry radio's serial device. The slave
// is put in raw mode so nothing is echoed or translated before the bridge
// opens it.
func openPTY(t *testing.T) (*os.File, string) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatalf("open /dev/ptmx: %v", err)
	}
	t.Cleanup(func() { m.Close() })
	rc, err := m.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var n int
	var ioErr error
	if err := rc.Control(func(fd uintptr) { // Control keeps the file non-blocking, so Close ends reads
		if ioErr = unix.IoctlSetPointerInt(int(fd), unix.TIOCSPTLCK, 0); ioErr == nil {
			n, ioErr = unix.IoctlGetInt(int(fd), unix.TIOCGPTN)
		}
	}); err != nil || ioErr != nil {
		t.Fatalf("unlock pty: %v %v", err, ioErr)
	}
	path := fmt.Sprintf("/dev/pts/%d", n)
	s, err := os.OpenFile(path, os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatalf("open pty slave: %v", err)
	}
	defer s.Close()
	src, _ := s.SyscallConn()
	_ = src.Control(func(fd uintptr) {
		tio, err := unix.IoctlGetTermios(int(fd), unix.TCGETS)
		if err != nil {
			ioErr = err
			return
		}
		tio.Iflag &^= unix.IGNBRK | unix.BRKINT | unix.PARMRK | unix.ISTRIP | unix.INLCR | unix.IGNCR | unix.ICRNL | unix.IXON
		tio.Oflag &^= unix.OPOST
		tio.Lflag &^= unix.ECHO | unix.ECHONL | unix.ICANON | unix.ISIG | unix.IEXTEN
		tio.Cflag = tio.Cflag&^(unix.CSIZE|unix.PARENB) | unix.CS8
		ioErr = unix.IoctlSetTermios(int(fd), unix.TCSETS, tio)
	})
	if ioErr != nil {
		t.Fatalf("raw pty: %v", ioErr)
	}
	return m, path
}

// TestBridgeSerial reads MAVLink from a serial device (a pty here) instead
// of UDP: the vehicle side is a gomavlib node writing to the pty master.
func TestBridgeSerial(t *testing.T) {
	master, dev := openPTY(t)
	ing := newIngestStandIn(t)
	b, _ := runBridge(t, bridge.Config{
		SerialDevice: dev, SerialBaud: 57600, IngestURL: ing.url(), Key: testKey, DataDir: t.TempDir(),
		BatchSize: 10, FlushInterval: 50 * time.Millisecond,
	})
	v := &gomavlib.Node{
		Endpoints:        []gomavlib.EndpointConf{gomavlib.EndpointCustom{ReadWriteCloser: master}},
		Dialect:          common.Dialect,
		OutVersion:       gomavlib.V2,
		OutSystemID:      1,
		HeartbeatDisable: true,
	}
	if err := v.Initialize(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(v.Close)
	go func() {
		for range v.Events() {
		}
	}()
	// Send until reports arrive: the bridge opens the port asynchronously,
	// and bytes written before that are the radio's problem, not ours.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		for i := 0; ctx.Err() == nil; i++ {
			_ = v.WriteMessageAll(&common.MessageGlobalPositionInt{Lat: 515007000 + int32(i), Lon: -1246000,
				Alt: 35000, Vx: -300, Vy: 400, Hdg: 18000})
			time.Sleep(10 * time.Millisecond)
		}
	}()
	waitFor(t, "10 reports read from the serial device", func() bool { return len(ing.got()) >= 10 })
	r := ing.got()[0]
	if r.Lon != -0.1246 || *r.Alt != 35 || *r.Speed != 5 || *r.Heading != 180 {
		t.Errorf("report %+v: want lon -0.1246, alt 35 m, speed 5 m/s, heading 180", r)
	}
	if b.Stats().Positions < 10 {
		t.Errorf("stats %+v", b.Stats())
	}
}
