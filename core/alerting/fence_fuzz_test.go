package alerting

import (
	"encoding/json"
	"errors"
	"math"
	"strings"
	"testing"
)

// FuzzFence decodes arbitrary geofence JSON as the API does, validates it,
// and tests arbitrary positions against what validates. Validation either
// passes or names a field of the input; containment always terminates
// (however far out of range the position), a circle holds its centre, and
// keep-in and keep-out of the same shape breach on exactly opposite sides.
func FuzzFence(f *testing.F) {
	for _, s := range []string{
		`{"name":"yard","mode":"keep-in","polygon":[{"lat":52,"lon":13},{"lat":52,"lon":14},{"lat":53,"lon":14}]}`,
		`{"name":"dateline","mode":"keep-out","polygon":[{"lat":-5,"lon":175},{"lat":-5,"lon":-175},{"lat":5,"lon":-175},{"lat":5,"lon":175}]}`,
		`{"name":"arctic","mode":"keep-in","polygon":[{"lat":80,"lon":0},{"lat":80,"lon":90},{"lat":80,"lon":180},{"lat":80,"lon":-90}]}`,
		`{"name":"pad","mode":"keep-out","center":{"lat":-89.9,"lon":179.9},"radiusM":5000}`,
		`{"name":"bowtie","mode":"keep-out","polygon":[{"lat":0,"lon":0},{"lat":0,"lon":1},{"lat":1,"lon":0},{"lat":1,"lon":1}]}`,
		`{"name":"","mode":"keep-in"}`,
		`{"name":"both","mode":"keep-in","polygon":[{"lat":0,"lon":0}],"center":{"lat":0,"lon":0},"radiusM":1}`,
		`{"name":"nan","mode":"keep-in","center":{"lat":1,"lon":2},"radiusM":1e999}`,
	} {
		f.Add([]byte(s), 52.5, 13.5)
		f.Add([]byte(s), 85.0, 1e300)
		f.Add([]byte(s), -45.0, math.Inf(-1))
	}
	f.Fuzz(func(t *testing.T, body []byte, lat, lon float64) {
		var fence Fence
		if json.Unmarshal(body, &fence) != nil {
			return
		}
		if err := fence.Validate(); err != nil {
			var fe *FieldError
			if !errors.As(err, &fe) || fe.Field == "" || fe.Reason == "" {
				t.Fatalf("Validate error %v does not name a field", err)
			}
			if root, _, _ := strings.Cut(strings.SplitN(fe.Field, "[", 2)[0], "."); !strings.Contains(`name mode polygon center radiusM`, root) {
				t.Fatalf("Validate names %q, not an input field", fe.Field)
			}
			return
		}
		if fence.Center != nil && !fence.Contains(fence.Center.Lat, fence.Center.Lon) {
			t.Fatalf("circle %+v does not contain its centre", fence)
		}
		in := fence.Contains(lat, lon)
		out := fence
		out.Mode = ModeKeepOut
		keepIn := fence
		keepIn.Mode = ModeKeepIn
		if out.Breached(lat, lon) != in || keepIn.Breached(lat, lon) == in {
			t.Fatalf("keep-in/keep-out disagree with Contains=%v at %v,%v", in, lat, lon)
		}
	})
}
