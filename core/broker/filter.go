package broker

import (
	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/cloudevents/sdk-go/v2/types"
)

// Matches reports whether an event passes the Trigger's attributes filter,
// as Knative's attributes filter does: each listed attribute (a context
// attribute such as type, source, subject, or any extension such as tenantid)
// must be present and equal the value exactly; an empty value matches
// anything; no filter matches every event.
func (t Trigger) Matches(e event.Event) bool {
	if t.Spec.Filter == nil {
		return true
	}
	for name, want := range t.Spec.Filter.Attributes {
		if want == "" {
			continue
		}
		got, ok := attribute(e, name)
		if !ok || got != want {
			return false
		}
	}
	return true
}

// attribute returns a context attribute or extension in its canonical
// string form.
func attribute(e event.Event, name string) (string, bool) {
	switch name {
	case "specversion":
		return e.SpecVersion(), true
	case "id":
		return e.ID(), e.ID() != ""
	case "type":
		return e.Type(), e.Type() != ""
	case "source":
		return e.Source(), e.Source() != ""
	case "subject":
		return e.Subject(), e.Subject() != ""
	case "datacontenttype":
		return e.DataContentType(), e.DataContentType() != ""
	case "dataschema":
		return e.DataSchema(), e.DataSchema() != ""
	case "time":
		if e.Time().IsZero() {
			return "", false
		}
		s, err := types.Format(types.Timestamp{Time: e.Time()})
		return s, err == nil
	}
	v, ok := extension(e, name)
	if !ok {
		return "", false
	}
	s, err := types.Format(v)
	return s, err == nil
}
