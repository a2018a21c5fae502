package remoteid

import (
	"slices"
	"strings"

	"github.com/dronetrack/dronetrack/events"
)

// Identity is what a drone's owner declares for Network Remote ID. The SP
// reports it in RIDFlight.aircraft_type and RIDFlightDetails.
type Identity struct {
	// SerialNumber is the UA's physical serial number in ANSI/CTA-2063-A
	// form (manufacturer code, length code, serial).
	SerialNumber string `json:"serialNumber,omitempty"`
	// RegistrationID is the CAA registration, <nationality mark>.<id>.
	RegistrationID string `json:"registrationId,omitempty"`
	// UAType is one of UATypes; empty reports NotDeclared.
	UAType string `json:"uaType,omitempty"`
	// OperatorID is the CAA-issued operator registration (EU: EN 4709-002).
	OperatorID string `json:"operatorId,omitempty"`
	// EUCategory and EUClass are the EU classification; both empty leaves
	// eu_classification out.
	EUCategory string `json:"euCategory,omitempty"`
	EUClass    string `json:"euClass,omitempty"`
	// OperatorLocation says how the operator's (take-off) location is
	// reported: OperatorObfuscated (the default), OperatorExact or
	// OperatorHidden.
	OperatorLocation string `json:"operatorLocation,omitempty"`
}

// How an Identity's operator location is reported.
const (
	OperatorObfuscated = "obfuscated"
	OperatorExact      = "exact"
	OperatorHidden     = "hidden"
)

// Field limits: the broadcast (ASTM F3411 / ASD-STAN prEN 4709-002) carries
// UAS and operator ids in 20 bytes, so longer ones could not match what the
// drone itself broadcasts.
const maxIDLen = 20

// serialCodePoints are the characters of ANSI/CTA-2063-A serials: digits
// and capitals without O and I (which read as 0 and 1).
const (
	serialCodePoints   = "0123456789ABCDEFGHJKLMNPQRSTUVWXYZ"
	serialLengthPoints = "123456789ABCDEF"
)

// ValidSerial reports whether s is an ANSI/CTA-2063-A physical serial
// number: a 4-character manufacturer code, a length code 1-9 or A-F giving
// the length (1 to 15) of the manufacturer's serial that follows, all from
// the CTA code points.
func ValidSerial(s string) bool {
	if len(s) < 6 || len(s) > 20 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if i == 4 {
			continue
		}
		if !strings.ContainsRune(serialCodePoints, rune(s[i])) {
			return false
		}
	}
	n := strings.IndexByte(serialLengthPoints, s[4]) + 1
	return n > 0 && len(s)-5 == n
}

// ValidRegistration reports whether s has the standard's registration form
// <ICAO nationality mark>.<CAA assigned id>: capitals, digits and one dot
// with text on both sides, at most 20 characters.
func ValidRegistration(s string) bool {
	if len(s) == 0 || len(s) > maxIDLen {
		return false
	}
	mark, id, ok := strings.Cut(s, ".")
	if !ok || mark == "" || id == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.') {
			return false
		}
	}
	return true
}

// validOperatorID accepts printable ASCII without spaces: EU operator
// numbers (EN 4709-002) carry lower-case letters and a dash, so the
// standard's capitals-only US example is too strict.
func validOperatorID(s string) bool {
	if len(s) == 0 || len(s) > maxIDLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] > '~' {
			return false
		}
	}
	return true
}

// Normalize trims spaces and upper-cases the serial and registration (both
// are upper-case by definition), so owners may type them as printed.
func (id Identity) Normalize() Identity {
	id.SerialNumber = strings.ToUpper(strings.TrimSpace(id.SerialNumber))
	id.RegistrationID = strings.ToUpper(strings.TrimSpace(id.RegistrationID))
	id.OperatorID = strings.TrimSpace(id.OperatorID)
	id.UAType = strings.TrimSpace(id.UAType)
	id.EUCategory = strings.TrimSpace(id.EUCategory)
	id.EUClass = strings.TrimSpace(id.EUClass)
	id.OperatorLocation = strings.TrimSpace(id.OperatorLocation)
	return id
}

// Validate lists what is wrong with id, one FieldError per field (JSON
// pointers relative to the identity object).
func (id Identity) Validate() []events.FieldError {
	var errs []events.FieldError
	bad := func(field, detail string) {
		errs = append(errs, events.FieldError{Field: field, Pointer: "/" + field, Detail: detail})
	}
	if id.SerialNumber != "" && !ValidSerial(id.SerialNumber) {
		bad("serialNumber", "want an ANSI/CTA-2063-A serial: 4-character manufacturer code, length code 1-9 or A-F, then that many characters (digits and capitals except O and I)")
	}
	if id.RegistrationID != "" && !ValidRegistration(id.RegistrationID) {
		bad("registrationId", "want <nationality mark>.<CAA id> in capitals, digits and one dot, at most 20 characters")
	}
	if id.OperatorID != "" && !validOperatorID(id.OperatorID) {
		bad("operatorId", "want 1 to 20 printable ASCII characters without spaces")
	}
	if id.UAType != "" && !slices.Contains(UATypes, id.UAType) {
		bad("uaType", "want one of "+strings.Join(UATypes, ", "))
	}
	if id.EUCategory != "" && !slices.Contains(EUCategories, id.EUCategory) {
		bad("euCategory", "want one of "+strings.Join(EUCategories, ", "))
	}
	if id.EUClass != "" && !slices.Contains(EUClasses, id.EUClass) {
		bad("euClass", "want one of "+strings.Join(EUClasses, ", "))
	}
	switch id.OperatorLocation {
	case "", OperatorObfuscated, OperatorExact, OperatorHidden:
	default:
		bad("operatorLocation", "want obfuscated, exact or hidden")
	}
	return errs
}

// aircraftType is the UAType an identity reports.
func (id *Identity) aircraftType() string {
	if id == nil || id.UAType == "" {
		return "NotDeclared"
	}
	return id.UAType
}
