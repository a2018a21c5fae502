// Package events is the only contract between Dronetrack's functions: the
// CloudEvent type names, the data each type carries, its JSON Schema, and the
// validation every producer and consumer applies. No function imports
// another; they agree through this package alone.
package events
