// Package dss is the client side of an F3411-22a Service Provider's calls to
// the Discovery and Synchronization Service (DSS) of its region: creating,
// renewing and deleting the Identification Service Areas (ISAs) that tell
// display providers where to ask, and passing each change on to the
// subscribers the DSS names (the SP's duty, not the DSS's).
//
// It is tested against a fake DSS written from the standard's API shapes
// (dss_test.go), not against InterUSS's DSS, which this machine cannot run;
// nothing in Dronetrack calls it automatically yet (docs/remote-id.md).
package dss

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/dronetrack/dronetrack/core/remoteid"
)

// ScopeServiceProvider is the scope an SP's token needs to write ISAs in
// the DSS and to notify subscribers of them.
const ScopeServiceProvider = "rid.service_provider"

// TokenSource returns a bearer access token for audience (the host being
// called, without port, as InterUSS's clients fill aud) with scope; the
// region's OAuth client-credentials flow in production.
type TokenSource func(ctx context.Context, audience, scope string) (string, error)

// Polygon is the standard's Polygon.
type Polygon struct {
	Vertices []remoteid.LatLng `json:"vertices"`
}

// Volume3D is an extruded outline with optional altitude bounds (WGS84).
type Volume3D struct {
	OutlinePolygon *Polygon           `json:"outline_polygon,omitempty"`
	AltitudeLower  *remoteid.Altitude `json:"altitude_lower,omitempty"`
	AltitudeUpper  *remoteid.Altitude `json:"altitude_upper,omitempty"`
}

// Volume4D is a Volume3D over a time span.
type Volume4D struct {
	Volume    Volume3D       `json:"volume"`
	TimeStart *remoteid.Time `json:"time_start,omitempty"`
	TimeEnd   *remoteid.Time `json:"time_end,omitempty"`
}

// ISAParameters creates or updates an ISA: its extents (time_end required)
// and the SP's base URL (https://HOST/rid/v2, no trailing slash).
type ISAParameters struct {
	Extents    Volume4D `json:"extents"`
	USSBaseURL string   `json:"uss_base_url"`
}

// ISA is the DSS's IdentificationServiceArea.
type ISA struct {
	ID         string        `json:"id"`
	Owner      string        `json:"owner"`
	Version    string        `json:"version"`
	USSBaseURL string        `json:"uss_base_url"`
	TimeStart  remoteid.Time `json:"time_start"`
	TimeEnd    remoteid.Time `json:"time_end"`
}

// SubscriptionState names a subscription and its notification index.
type SubscriptionState struct {
	SubscriptionID    string `json:"subscription_id"`
	NotificationIndex int    `json:"notification_index"`
}

// SubscriberToNotify is a subscriber the SP must tell about its change.
type SubscriberToNotify struct {
	Subscriptions []SubscriptionState `json:"subscriptions"`
	URL           string              `json:"url"`
}

// ISAResponse answers a put or delete: the ISA as stored and whom to
// notify.
type ISAResponse struct {
	ServiceArea ISA                  `json:"service_area"`
	Subscribers []SubscriberToNotify `json:"subscribers"`
}

// ISANotification is PutIdentificationServiceAreaNotificationParameters: a
// deleted ISA has neither service_area nor extents.
type ISANotification struct {
	ServiceArea   *ISA                `json:"service_area,omitempty"`
	Subscriptions []SubscriptionState `json:"subscriptions"`
	Extents       *Volume4D           `json:"extents,omitempty"`
}

// Client calls one DSS.
type Client struct {
	// BaseURL is the DSS's F3411-22a base, e.g. https://dss.example/rid/v2.
	BaseURL string
	Token   TokenSource
	// HTTP is the client used (default: 10 s timeout).
	HTTP *http.Client
}

// Error is a refusal by the DSS or a subscriber: the status and the
// ErrorResponse message.
type Error struct {
	Status  int
	Message string
	URL     string
}

func (e *Error) Error() string {
	return fmt.Sprintf("%s: %d %s", e.URL, e.Status, e.Message)
}

// ErrConflict is wrapped by an Error with status 409 (a stale version: read
// the ISA again and retry with its version).
var ErrConflict = errors.New("version conflict")

func (e *Error) Unwrap() error {
	if e.Status == http.StatusConflict {
		return ErrConflict
	}
	return nil
}

// PutISA creates the ISA id (version "") or updates it at version.
func (c *Client) PutISA(ctx context.Context, id, version string, p ISAParameters) (ISAResponse, error) {
	if p.Extents.TimeEnd == nil {
		return ISAResponse{}, errors.New("dss: an ISA needs extents.time_end")
	}
	path := "/dss/identification_service_areas/" + url.PathEscape(id)
	if version != "" {
		path += "/" + url.PathEscape(version)
	}
	var r ISAResponse
	err := c.do(ctx, http.MethodPut, strings.TrimSuffix(c.BaseURL, "/")+path, p, &r)
	return r, err
}

// DeleteISA deletes the ISA id at version.
func (c *Client) DeleteISA(ctx context.Context, id, version string) (ISAResponse, error) {
	var r ISAResponse
	err := c.do(ctx, http.MethodDelete, strings.TrimSuffix(c.BaseURL, "/")+"/dss/identification_service_areas/"+
		url.PathEscape(id)+"/"+url.PathEscape(version), nil, &r)
	return r, err
}

// Notify tells every subscriber of a put (isa and extents set) or a delete
// (both nil) of ISA id, POSTing to {subscriber url}/uss/identification_service_areas/{id}.
// It tries all and returns the failures joined.
func (c *Client) Notify(ctx context.Context, subs []SubscriberToNotify, id string, isa *ISA, extents *Volume4D) error {
	var errs []error
	for _, s := range subs {
		n := ISANotification{ServiceArea: isa, Subscriptions: s.Subscriptions, Extents: extents}
		u := strings.TrimSuffix(s.URL, "/") + "/uss/identification_service_areas/" + url.PathEscape(id)
		if err := c.do(ctx, http.MethodPost, u, n, nil); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (c *Client) do(ctx context.Context, method, u string, body, out any) error {
	parsed, err := url.Parse(u)
	if err != nil || parsed.Host == "" {
		return fmt.Errorf("dss: bad URL %q", u)
	}
	tok, err := c.Token(ctx, parsed.Hostname(), ScopeServiceProvider)
	if err != nil {
		return fmt.Errorf("dss: token for %s: %w", parsed.Hostname(), err)
	}
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return fmt.Errorf("dss: encode: %w", err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return fmt.Errorf("dss: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	hc := c.HTTP
	if hc == nil {
		hc = &http.Client{Timeout: 10 * time.Second}
	}
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("dss: %s %s: %w", method, u, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if resp.StatusCode/100 != 2 {
		var e struct {
			Message string `json:"message"`
		}
		_ = json.Unmarshal(raw, &e)
		return &Error{Status: resp.StatusCode, Message: e.Message, URL: method + " " + u}
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			return fmt.Errorf("dss: %s %s: decode: %w", method, u, err)
		}
	}
	return nil
}
