// Package events is the only contract between Dronetrack's functions: the
// CloudEvent type names, the data each type carries, its JSON Schema, and the
// validation every producer and consumer applies. It is also the one home of
// a report's wire format: the strict parser of a drone's request body
// (DecodeReports), ingest's reflection-free event encoder
// (EncodeTelemetryReceived), and the firestore tags under which the store
// keeps reports and states. No function imports another; they agree through
// this package alone.
package events
