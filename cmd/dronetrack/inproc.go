package main

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"sync"
)

// EnvInprocDelivery, set to 1, makes the broker call the functions'
// handlers in-process instead of over loopback TCP. It is opt-in: its gain
// could not be separated from the noise on the shared development machine
// (docs/performance.md), and the fault tests cut a function's listener to
// simulate a crash, which in-process delivery would bypass.
const EnvInprocDelivery = "DRONETRACK_INPROC_DELIVERY"

// inprocHandlers maps a hosted function's listen address (host:port) to its
// server's handler, so deliveries to it can skip the loopback socket.
var inprocHandlers sync.Map

// inprocTransport hands a request addressed to a function of this process
// straight to the function's handler (the same mux its listener serves),
// and sends anything else over the network. Profiles of `up` showed loopback
// HTTP (socket syscalls on both sides) as the largest cost per event, and
// one report crosses the broker to three subscribers (process, then
// cache-refresh and alerts for its state.updated). The request and response
// are still HTTP messages in binary CloudEvents mode, so the functions see
// exactly what Knative would send them.
type inprocTransport struct{ next http.RoundTripper }

func (t inprocTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	v, ok := inprocHandlers.Load(req.URL.Host)
	if !ok {
		return t.next.RoundTrip(req)
	}
	h := v.(http.Handler)
	sr := req.Clone(req.Context())
	sr.RequestURI = req.URL.RequestURI()
	sr.RemoteAddr = "127.0.0.1:1"
	sr.Host = req.URL.Host
	if sr.Body == nil {
		sr.Body = http.NoBody
	}
	type result struct {
		resp *http.Response
		err  error
	}
	done := make(chan result, 1)
	go func() {
		rec := httptest.NewRecorder()
		defer func() {
			if p := recover(); p != nil {
				done <- result{err: fmt.Errorf("handler for %s panicked: %v", req.URL.Host, p)}
			}
		}()
		h.ServeHTTP(rec, sr)
		resp := rec.Result()
		resp.Request = req
		done <- result{resp: resp}
	}()
	// Like a real client, give up when the request's context ends even if
	// the handler does not.
	select {
	case r := <-done:
		return r.resp, r.err
	case <-req.Context().Done():
		return nil, req.Context().Err()
	}
}

// deliveryClient is the broker's HTTP client in `up`: loopback TCP with
// enough idle connections, or in-process with EnvInprocDelivery=1.
func deliveryClient() *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 256
	if os.Getenv(EnvInprocDelivery) == "1" {
		return &http.Client{Transport: inprocTransport{next: tr}}
	}
	return &http.Client{Transport: tr}
}

// EnvBrokerInFlight overrides the local broker's deliveries in flight per
// Trigger (default 1024), for load comparisons.
const EnvBrokerInFlight = "DRONETRACK_BROKER_INFLIGHT"

func maxInFlight() int {
	if n, err := strconv.Atoi(os.Getenv(EnvBrokerInFlight)); err == nil && n > 0 {
		return n
	}
	return 1024
}
