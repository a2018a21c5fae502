package bolt

import (
	"encoding/json"
	"testing"

	"github.com/dronetrack/dronetrack/core/store"
)

// ownedBy, read from the bytes, agrees with decoding the drone, and says
// so (known) only for the form json.Marshal writes with plain ids.
func TestOwnedByAgreesWithDecoding(t *testing.T) {
	for _, d := range []store.Drone{
		{ID: "d1", TenantID: "acme"},
		{ID: "d1", TenantID: "acm"},
		{ID: "d<1>", TenantID: "acme"},
		{ID: "d1", TenantID: `a"c\me`},
		{ID: "d1", TenantID: "ünï"},
		{ID: "d1", TenantID: ""},
	} {
		raw, err := json.Marshal(d)
		if err != nil {
			t.Fatal(err)
		}
		for _, tenant := range []string{"acme", d.TenantID, "acm", ""} {
			ok, known := ownedBy(raw, d.ID, tenant)
			owner, err := topLevelString(raw, "tenantId")
			if err != nil {
				t.Fatal(err)
			}
			if known && ok != (owner == tenant) {
				t.Errorf("drone %+v, tenant %q: ownedBy %v, decoding says %v", d, tenant, ok, owner == tenant)
			}
			if !known && d.ID == "d1" && d.TenantID == "acme" {
				t.Errorf("drone %+v: plain form not recognised", d)
			}
		}
	}
	if _, known := ownedBy([]byte(`{"tenantId":"acme","id":"d1"}`), "d1", "acme"); known {
		t.Error("answered for another member order")
	}
}
