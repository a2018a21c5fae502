package remoteid

import "time"

// Limits and special values of F3411-22a (interuss/uas_standards
// astm/f3411/v22a/constants.py and the API's field descriptions).
const (
	// MaxViewDiagonalKm is NetMaxDisplayAreaDiagonalKm: a /flights view with
	// a longer diagonal is refused (413).
	MaxViewDiagonalKm = 7.0
	// DetailsMaxViewDiagonalKm is NetDetailsMaxDisplayAreaDiagonalKm: above
	// it a display shows clusters, not individual flights (a display
	// provider's duty; kept here for reference and the docs).
	DetailsMaxViewDiagonalKm = 2.0
	// NearRealTimeWindow is NetMaxNearRealTimeDataPeriodSeconds: a flight
	// with a position in the view within this window is reported, and
	// recent_positions_duration may not exceed it.
	NearRealTimeWindow = 60 * time.Second
	// MinObfuscationM is NetMinObfuscationDistanceM: an obfuscated operator
	// location lies at least this far from the true one.
	MinObfuscationM = 300.0

	// UnknownAlt is the "Invalid, No Value or Unknown" altitude (m).
	UnknownAlt = -1000.0
	// UnknownTrack is the unknown track direction (degrees).
	UnknownTrack = 361.0
	// UnknownSpeed is the unknown ground speed; MaxSpeed the largest
	// reportable one (m/s).
	UnknownSpeed = 255.0
	MaxSpeed     = 254.25
	// UnknownVerticalSpeed is the unknown vertical speed; MaxVerticalSpeed
	// the largest reportable magnitude (m/s).
	UnknownVerticalSpeed = 63.0
	MaxVerticalSpeed     = 62.0
)

// UAType values (UAType enum).
var UATypes = []string{"NotDeclared", "Aeroplane", "Helicopter", "Gyroplane", "HybridLift", "Ornithopter",
	"Glider", "Kite", "FreeBalloon", "CaptiveBalloon", "Airship", "FreeFallOrParachute", "Rocket",
	"TetheredPoweredAircraft", "GroundObstacle", "Other"}

// OperationalStatuses are the RIDOperationalStatus values.
var OperationalStatuses = []string{"Undeclared", "Ground", "Airborne", "Emergency", "RemoteIDSystemFailure"}

// HorizontalAccuracies are the HorizontalAccuracy values, worst to best.
var HorizontalAccuracies = []string{"HAUnknown", "HA10NMPlus", "HA10NM", "HA4NM", "HA2NM", "HA1NM", "HA05NM",
	"HA03NM", "HA01NM", "HA005NM", "HA30m", "HA10m", "HA3m", "HA1m"}

// VerticalAccuracies are the VerticalAccuracy values, worst to best.
var VerticalAccuracies = []string{"VAUnknown", "VA150mPlus", "VA150m", "VA45m", "VA25m", "VA10m", "VA3m", "VA1m"}

// SpeedAccuracies are the SpeedAccuracy values, worst to best.
var SpeedAccuracies = []string{"SAUnknown", "SA10mpsPlus", "SA10mps", "SA3mps", "SA1mps", "SA03mps"}

// HeightReferences are the RIDHeightReference values.
var HeightReferences = []string{"TakeoffLocation", "GroundLevel"}

// EUCategories and EUClasses are UAClassificationEU's values.
var (
	EUCategories = []string{"EUCategoryUndefined", "Open", "Specific", "Certified"}
	EUClasses    = []string{"EUClassUndefined", "Class0", "Class1", "Class2", "Class3", "Class4", "Class5", "Class6"}
)

// OperatorAltitudeTypes are OperatorLocation.altitude_type's values.
var OperatorAltitudeTypes = []string{"Takeoff", "Dynamic", "Fixed"}

// Time is the standard's Time: an RFC 3339 value in UTC with format
// "RFC3339".
type Time struct {
	Value  string `json:"value"`
	Format string `json:"format"`
}

// NewTime renders t as the standard wants it: UTC, 'Z', to the millisecond
// (the standard asks for at least a tenth of a second).
func NewTime(t time.Time) Time {
	return Time{Value: t.UTC().Format("2006-01-02T15:04:05.000Z"), Format: "RFC3339"}
}

// Height is RIDHeight: metres above Reference.
type Height struct {
	Distance  float64 `json:"distance"`
	Reference string  `json:"reference"`
}

// Position is RIDAircraftPosition.
type Position struct {
	Lat              float64  `json:"lat"`
	Lng              float64  `json:"lng"`
	Alt              float64  `json:"alt"` // m above the WGS84 ellipsoid, UnknownAlt when unknown
	AccuracyH        string   `json:"accuracy_h"`
	AccuracyV        string   `json:"accuracy_v"`
	Extrapolated     bool     `json:"extrapolated"`
	PressureAltitude *float64 `json:"pressure_altitude,omitempty"`
	Height           *Height  `json:"height,omitempty"`
}

// AircraftState is RIDAircraftState.
type AircraftState struct {
	Timestamp         Time     `json:"timestamp"`
	TimestampAccuracy float64  `json:"timestamp_accuracy"`
	OperationalStatus string   `json:"operational_status"`
	Position          Position `json:"position"`
	Track             float64  `json:"track"`
	Speed             float64  `json:"speed"`
	SpeedAccuracy     string   `json:"speed_accuracy"`
	VerticalSpeed     float64  `json:"vertical_speed"`
}

// RecentPosition is RIDRecentAircraftPosition.
type RecentPosition struct {
	Time     Time     `json:"time"`
	Position Position `json:"position"`
}

// Flight is RIDFlight.
type Flight struct {
	ID              string           `json:"id"`
	AircraftType    string           `json:"aircraft_type"`
	CurrentState    *AircraftState   `json:"current_state,omitempty"`
	Simulated       bool             `json:"simulated"`
	RecentPositions []RecentPosition `json:"recent_positions,omitempty"`
}

// FlightsResponse is GetFlightsResponse.
type FlightsResponse struct {
	Timestamp Time     `json:"timestamp"`
	Flights   []Flight `json:"flights"`
}

// UASID is the standard's UASID; at least one field is set.
type UASID struct {
	SerialNumber      string `json:"serial_number,omitempty"`
	RegistrationID    string `json:"registration_id,omitempty"`
	UTMID             string `json:"utm_id,omitempty"`
	SpecificSessionID string `json:"specific_session_id,omitempty"`
}

// LatLng is LatLngPoint.
type LatLng struct {
	Lat float64 `json:"lat"`
	Lng float64 `json:"lng"`
}

// Altitude is the standard's Altitude (WGS84, metres).
type Altitude struct {
	Value     float64 `json:"value"`
	Reference string  `json:"reference"`
	Units     string  `json:"units"`
}

// NewAltitude is an Altitude of v metres above the WGS84 ellipsoid.
func NewAltitude(v float64) *Altitude { return &Altitude{Value: v, Reference: "W84", Units: "M"} }

// OperatorLocation is the remote pilot's location.
type OperatorLocation struct {
	Position     LatLng    `json:"position"`
	Altitude     *Altitude `json:"altitude,omitempty"`
	AltitudeType string    `json:"altitude_type,omitempty"`
}

// EUClassification is UAClassificationEU.
type EUClassification struct {
	Category string `json:"category"`
	Class    string `json:"class"`
}

// AuthData is RIDAuthData.
type AuthData struct {
	Format int    `json:"format"`
	Data   string `json:"data"`
}

// FlightDetails is RIDFlightDetails.
type FlightDetails struct {
	ID                   string            `json:"id"`
	EUClassification     *EUClassification `json:"eu_classification,omitempty"`
	UASID                *UASID            `json:"uas_id,omitempty"`
	OperatorID           string            `json:"operator_id,omitempty"`
	OperatorLocation     *OperatorLocation `json:"operator_location,omitempty"`
	OperationDescription string            `json:"operation_description,omitempty"`
	AuthData             *AuthData         `json:"auth_data,omitempty"`
}

// DetailsResponse is GetFlightDetailsResponse.
type DetailsResponse struct {
	Details FlightDetails `json:"details"`
}
