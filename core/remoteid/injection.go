package remoteid

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/dronetrack/dronetrack/events"
)

// InjectedState is RIDAircraftState as InterUSS's injection interface
// (automated_testing/rid/v1 injection, 0.5) carries it: RFC 3339 timestamps
// as plain strings, every field optional.
type InjectedState struct {
	Timestamp         string            `json:"timestamp"`
	TimestampAccuracy *float64          `json:"timestamp_accuracy,omitempty"`
	OperationalStatus string            `json:"operational_status,omitempty"`
	Position          *InjectedPosition `json:"position,omitempty"`
	Track             *float64          `json:"track,omitempty"`
	Speed             *float64          `json:"speed,omitempty"`
	SpeedAccuracy     string            `json:"speed_accuracy,omitempty"`
	VerticalSpeed     *float64          `json:"vertical_speed,omitempty"`
	Height            *Height           `json:"height,omitempty"`

	ts time.Time
}

// InjectedPosition is the injection interface's RIDAircraftPosition.
type InjectedPosition struct {
	Lat              *float64 `json:"lat,omitempty"`
	Lng              *float64 `json:"lng,omitempty"`
	Alt              *float64 `json:"alt,omitempty"`
	Height           *Height  `json:"height,omitempty"`
	AccuracyH        string   `json:"accuracy_h,omitempty"`
	AccuracyV        string   `json:"accuracy_v,omitempty"`
	Extrapolated     *bool    `json:"extrapolated,omitempty"`
	PressureAltitude *float64 `json:"pressure_altitude,omitempty"`
}

// InjectedDetails is the injection interface's RIDFlightDetails (it keeps
// the operator's altitude apart from the location, and two deprecated ids).
type InjectedDetails struct {
	ID                   string            `json:"id"`
	OperatorID           string            `json:"operator_id,omitempty"`
	OperatorLocation     *LatLng           `json:"operator_location,omitempty"`
	OperationDescription string            `json:"operation_description,omitempty"`
	AuthData             *AuthData         `json:"auth_data,omitempty"`
	SerialNumber         string            `json:"serial_number,omitempty"`
	RegistrationNumber   string            `json:"registration_number,omitempty"`
	UASID                *UASID            `json:"uas_id,omitempty"`
	OperatorAltitude     *OperatorAltitude `json:"operator_altitude,omitempty"`
	EUClassification     *EUClassification `json:"eu_classification,omitempty"`
}

// OperatorAltitude is the injection interface's OperatorAltitude.
type OperatorAltitude struct {
	Altitude     *float64 `json:"altitude,omitempty"`
	AltitudeType string   `json:"altitude_type,omitempty"`
}

// DetailsResponseAt is TestFlightDetails: details valid after a time.
type DetailsResponseAt struct {
	EffectiveAfter string          `json:"effective_after"`
	Details        InjectedDetails `json:"details"`

	after time.Time
}

// TestFlight is one injected flight.
type TestFlight struct {
	InjectionID      string              `json:"injection_id"`
	AircraftType     string              `json:"aircraft_type,omitempty"`
	Telemetry        []InjectedState     `json:"telemetry"`
	DetailsResponses []DetailsResponseAt `json:"details_responses"`

	flightID string
}

// CreateTestParameters is the body of PUT /tests/{test_id}.
type CreateTestParameters struct {
	RequestedFlights []TestFlight `json:"requested_flights"`
}

// ChangeTestResponse answers PUT /tests/{test_id}.
type ChangeTestResponse struct {
	InjectedFlights []TestFlight `json:"injected_flights"`
	Version         string       `json:"version"`
}

// DeleteTestResponse answers DELETE /tests/{test_id}/{version}.
type DeleteTestResponse struct {
	InjectedFlights []TestFlight `json:"injected_flights"`
}

// parseTime accepts RFC 3339 with or without fractional seconds.
func parseTime(s string) (time.Time, error) {
	return time.Parse(time.RFC3339Nano, s)
}

// TestFlightID is the RIDFlight id the SP reports for an injected flight:
// derived from the test and injection ids (so every replica agrees without
// asking the store) and free of the characters the standard forbids.
func TestFlightID(testID, injectionID string) string {
	h := sha256.Sum256([]byte(testID + "\x00" + injectionID))
	return "rid-test." + hex.EncodeToString(h[:12])
}

// PrepareTest checks injected flights and readies them for evaluation:
// telemetry sorted by time, details by effective time, and each details
// response's id set to the flight id the SP reports (the injection
// interface lets the SP change details.id; nothing else is changed). The
// result is what ChangeTestResponse echoes.
func PrepareTest(testID string, p CreateTestParameters) ([]TestFlight, []events.FieldError) {
	var errs []events.FieldError
	bad := func(ptr, detail string) {
		errs = append(errs, events.FieldError{Field: strings.TrimPrefix(ptr, "/"), Pointer: ptr, Detail: detail})
	}
	if len(p.RequestedFlights) == 0 {
		bad("/requested_flights", "want at least one flight")
	}
	seen := map[string]bool{}
	out := make([]TestFlight, 0, len(p.RequestedFlights))
	for i, f := range p.RequestedFlights {
		fp := "/requested_flights/" + strconv.Itoa(i)
		if f.InjectionID == "" {
			bad(fp+"/injection_id", "is required")
		} else if seen[f.InjectionID] {
			bad(fp+"/injection_id", "appears twice in the test")
		}
		seen[f.InjectionID] = true
		if f.AircraftType != "" && f.AircraftType != "VTOL" && !slices.Contains(UATypes, f.AircraftType) {
			bad(fp+"/aircraft_type", "want one of "+strings.Join(UATypes, ", "))
		}
		if len(f.Telemetry) == 0 {
			bad(fp+"/telemetry", "want at least one state")
		}
		f.Telemetry = slices.Clone(f.Telemetry)
		for j := range f.Telemetry {
			s := &f.Telemetry[j]
			sp := fp + "/telemetry/" + strconv.Itoa(j)
			ts, err := parseTime(s.Timestamp)
			if err != nil {
				bad(sp+"/timestamp", "want an RFC 3339 time")
			}
			s.ts = ts
			if s.Position == nil || s.Position.Lat == nil || s.Position.Lng == nil {
				bad(sp+"/position", "lat and lng are required")
				continue
			}
			if la, lo := *s.Position.Lat, *s.Position.Lng; la < -90 || la > 90 || lo < -180 || lo > 180 {
				bad(sp+"/position", "lat must be within [-90, 90] and lng within [-180, 180]")
			}
		}
		slices.SortStableFunc(f.Telemetry, func(a, b InjectedState) int { return a.ts.Compare(b.ts) })
		f.DetailsResponses = slices.Clone(f.DetailsResponses)
		f.flightID = TestFlightID(testID, f.InjectionID)
		for j := range f.DetailsResponses {
			d := &f.DetailsResponses[j]
			after, err := parseTime(d.EffectiveAfter)
			if err != nil {
				bad(fp+"/details_responses/"+strconv.Itoa(j)+"/effective_after", "want an RFC 3339 time")
			}
			d.after = after
			d.Details.ID = f.flightID
		}
		slices.SortStableFunc(f.DetailsResponses, func(a, b DetailsResponseAt) int { return a.after.Compare(b.after) })
		out = append(out, f)
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return out, nil
}

// FlightID is the RIDFlight id of a prepared flight.
func (f *TestFlight) FlightID() string { return f.flightID }

// current is the index of the newest state at or before now, -1 before the
// first one.
func (f *TestFlight) current(now time.Time) int {
	i, _ := slices.BinarySearchFunc(f.Telemetry, now, func(s InjectedState, t time.Time) int {
		if s.ts.After(t) {
			return 1
		}
		return -1
	})
	return i - 1
}

// Flight is the RIDFlight of an injected flight at now, and whether it is
// reported for view: a flight is reported while it has a state at or before
// now within the near-real-time window that lies in the view. Recent
// positions (when recent > 0) are the states within that duration, limited
// to those in the view and their neighbours (entering and leaving).
func (f *TestFlight) Flight(now time.Time, view View, recent time.Duration) (Flight, bool) {
	cur := f.current(now)
	if cur < 0 || !Fresh(f.Telemetry[cur].ts, now) {
		return Flight{}, false
	}
	in := func(i int) bool {
		p := f.Telemetry[i].Position
		return view.Contains(*p.Lat, *p.Lng)
	}
	seen := false
	for i := cur; i >= 0 && Fresh(f.Telemetry[i].ts, now); i-- {
		if in(i) {
			seen = true
			break
		}
	}
	if !seen {
		return Flight{}, false
	}
	st := f.Telemetry[cur].state()
	fl := Flight{ID: f.flightID, AircraftType: f.aircraftType(), CurrentState: &st, Simulated: true}
	if recent > 0 {
		first := cur
		for first > 0 && now.Sub(f.Telemetry[first-1].ts) <= recent {
			first--
		}
		for i := first; i <= cur; i++ {
			if in(i) || (i > first && in(i-1)) || (i < cur && in(i+1)) {
				s := f.Telemetry[i]
				fl.RecentPositions = append(fl.RecentPositions, RecentPosition{Time: NewTime(s.ts), Position: s.position()})
			}
		}
	}
	return fl, true
}

// Active reports whether the flight has a state within the near-real-time
// window at now (so its details are served).
func (f *TestFlight) Active(now time.Time) bool {
	cur := f.current(now)
	return cur >= 0 && Fresh(f.Telemetry[cur].ts, now)
}

// Ended reports whether the flight's last state left the near-real-time
// window before now: nothing of it will be reported again.
func (f *TestFlight) Ended(now time.Time) bool {
	return len(f.Telemetry) == 0 || !Fresh(f.Telemetry[len(f.Telemetry)-1].ts, now)
}

// Details is the RIDFlightDetails in effect at now: the newest response
// whose effective_after is not after now, else the earliest one.
func (f *TestFlight) Details(now time.Time) FlightDetails {
	if len(f.DetailsResponses) == 0 {
		return FlightDetails{ID: f.flightID}
	}
	k := 0
	for i, d := range f.DetailsResponses {
		if !d.after.After(now) {
			k = i
		}
	}
	in := f.DetailsResponses[k].Details
	out := FlightDetails{ID: f.flightID, OperatorID: in.OperatorID, OperationDescription: in.OperationDescription,
		AuthData: in.AuthData, EUClassification: in.EUClassification}
	uas := UASID{}
	if in.UASID != nil {
		uas = *in.UASID
	}
	if uas.SerialNumber == "" {
		uas.SerialNumber = in.SerialNumber
	}
	if uas.RegistrationID == "" {
		uas.RegistrationID = in.RegistrationNumber
	}
	if uas != (UASID{}) {
		out.UASID = &uas
	}
	if in.OperatorLocation != nil {
		loc := OperatorLocation{Position: *in.OperatorLocation}
		if in.OperatorAltitude != nil {
			if in.OperatorAltitude.Altitude != nil {
				loc.Altitude = NewAltitude(*in.OperatorAltitude.Altitude)
			}
			loc.AltitudeType = in.OperatorAltitude.AltitudeType
		}
		out.OperatorLocation = &loc
	}
	return out
}

func (f *TestFlight) aircraftType() string {
	switch f.AircraftType {
	case "":
		return "NotDeclared"
	case "VTOL": // F3411-19's name for HybridLift
		return "HybridLift"
	}
	return f.AircraftType
}

func orDefault(v, def string, allowed []string) string {
	if slices.Contains(allowed, v) {
		return v
	}
	return def
}

func (s InjectedState) position() Position {
	p := s.Position
	out := Position{Lat: *p.Lat, Lng: *p.Lng, Alt: UnknownAlt,
		AccuracyH: orDefault(p.AccuracyH, "HAUnknown", HorizontalAccuracies),
		AccuracyV: orDefault(p.AccuracyV, "VAUnknown", VerticalAccuracies), PressureAltitude: p.PressureAltitude}
	if p.Alt != nil {
		out.Alt = *p.Alt
	}
	if p.Extrapolated != nil {
		out.Extrapolated = *p.Extrapolated
	}
	switch {
	case p.Height != nil:
		out.Height = p.Height
	case s.Height != nil:
		out.Height = s.Height
	}
	return out
}

// state reports an injected state as given, with the standard's unknown
// values where the injection left a field out.
func (s InjectedState) state() AircraftState {
	st := AircraftState{Timestamp: NewTime(s.ts), Position: s.position(),
		OperationalStatus: orDefault(s.OperationalStatus, "Undeclared", OperationalStatuses),
		Track:             UnknownTrack, Speed: UnknownSpeed, VerticalSpeed: UnknownVerticalSpeed,
		SpeedAccuracy: orDefault(s.SpeedAccuracy, "SAUnknown", SpeedAccuracies)}
	if s.TimestampAccuracy != nil {
		st.TimestampAccuracy = *s.TimestampAccuracy
	}
	if s.Track != nil {
		st.Track = *s.Track
	}
	if s.Speed != nil {
		st.Speed = *s.Speed
	}
	if s.VerticalSpeed != nil {
		st.VerticalSpeed = *s.VerticalSpeed
	}
	return st
}

// PackFlights encodes prepared flights for the store: JSON, gzip-compressed
// (injected telemetry is repetitive, ~10x smaller, which keeps a test of a
// few long flights under Firestore's 1 MiB document limit).
func PackFlights(fs []TestFlight) ([]byte, error) {
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	if err := json.NewEncoder(zw).Encode(fs); err != nil {
		return nil, fmt.Errorf("pack test flights: %w", err)
	}
	if err := zw.Close(); err != nil {
		return nil, fmt.Errorf("pack test flights: %w", err)
	}
	return b.Bytes(), nil
}

// UnpackFlights decodes what PackFlights wrote and prepares the flights
// again (the unexported evaluation state is not stored).
func UnpackFlights(testID string, packed []byte) ([]TestFlight, error) {
	zr, err := gzip.NewReader(bytes.NewReader(packed))
	if err != nil {
		return nil, fmt.Errorf("unpack test flights: %w", err)
	}
	raw, err := io.ReadAll(io.LimitReader(zr, 64<<20))
	if err != nil {
		return nil, fmt.Errorf("unpack test flights: %w", err)
	}
	var fs []TestFlight
	if err := json.Unmarshal(raw, &fs); err != nil {
		return nil, fmt.Errorf("unpack test flights: %w", err)
	}
	out, errs := PrepareTest(testID, CreateTestParameters{RequestedFlights: fs})
	if len(errs) > 0 {
		return nil, fmt.Errorf("unpack test flights: stored flights invalid: %s", errs[0].Detail)
	}
	return out, nil
}
