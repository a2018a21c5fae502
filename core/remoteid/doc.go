// Package remoteid holds the Network Remote ID rules of ASTM F3411-22a that
// Dronetrack applies as a Service Provider (SP): the wire shapes a display
// provider reads (RIDFlight, RIDAircraftState, RIDFlightDetails), the query
// limits (view diagonal, the 60 s near-real-time window), the mapping from a
// drone's state to the standard's enumerations, operator-location
// obfuscation, ANSI/CTA-2063-A serial number and registration id checks, and
// InterUSS's test-data injection format (TestFlight) evaluated at a given
// time.
//
// It is pure: no I/O and no clock except the one passed in. serve-map owns the
// HTTP endpoints and the reads from the cache and the store.
//
// Field names, enumerations and special values follow the standard's OpenAPI
// (F3411-22a "Standard Remote ID API Interfaces" 2.1.0) exactly, because
// InterUSS's uss_qualifier checks them literally.
package remoteid
