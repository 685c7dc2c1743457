// Package alerttest is a webhook receiver for tests of sekisho's alerts: it
// checks each delivery's signature and keeps the events it carried.
package alerttest

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/sekisho/sekisho/waf/alert"
)

// Receiver is a local webhook endpoint.
type Receiver struct {
	URL string

	mu     sync.Mutex
	events []map[string]any
}

// NewReceiver starts a receiver, closed when t ends. With a secret, a
// delivery whose signature does not verify fails t and is refused.
func NewReceiver(t testing.TB, secret []byte) *Receiver {
	r := &Receiver{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		if secret != nil {
			if err := alert.Verify(secret, req.Header.Get("X-Sekisho-Signature"), body, time.Minute, time.Now()); err != nil {
				t.Errorf("webhook signature: %v", err)
				w.WriteHeader(http.StatusBadRequest)
				return
			}
		}
		var m map[string]any
		if err := json.Unmarshal(body, &m); err != nil {
			t.Errorf("webhook body %q: %v", body, err)
		}
		r.mu.Lock()
		r.events = append(r.events, m)
		r.mu.Unlock()
	}))
	t.Cleanup(srv.Close)
	r.URL = srv.URL
	return r
}

// Events returns the events received so far, in order.
func (r *Receiver) Events() []map[string]any {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]map[string]any(nil), r.events...)
}

// Wait returns the events once there are at least n, and fails t with
// "no <what> within <d>" if they do not come in time.
func (r *Receiver) Wait(t testing.TB, n int, d time.Duration, what string) []map[string]any {
	t.Helper()
	for deadline := time.Now().Add(d); ; time.Sleep(20 * time.Millisecond) {
		if ev := r.Events(); len(ev) >= n {
			return ev
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s within %v", what, d)
		}
	}
}
