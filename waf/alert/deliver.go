package alert

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// The headers of every request.
const (
	HeaderSignature = "X-Sekisho-Signature" // t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>
	HeaderEvent     = "X-Sekisho-Event"     // the alert's event type
	HeaderDelivery  = "X-Sekisho-Delivery"  // random, the same on every attempt at one alert, for receivers to drop repeats
)

// work delivers an endpoint's alerts one at a time, so that a receiver's
// Retry-After holds back the alerts behind it too.
func (d *Dispatcher) work(ep *endpoint) {
	defer d.workers.Done()
	abandoned := 0
	defer func() {
		if abandoned > 0 {
			d.onDrop(ep.name, abandoned, DropShutdown, nil)
		}
	}()
	send := func(a *Alert) {
		if d.ctx.Err() != nil || !d.deliver(ep, a) {
			abandoned++
		}
	}
	for {
		select {
		case a := <-ep.queue:
			send(a)
		case <-ep.drain:
			for {
				select {
				case a := <-ep.queue:
					send(a)
				default:
					return
				}
			}
		}
	}
}

// deliver posts a, retrying as the endpoint allows; it returns false if
// Close's deadline interrupted it, the one outcome it leaves to its caller.
func (d *Dispatcher) deliver(ep *endpoint, a *Alert) bool {
	body, err := ep.render(a)
	if err != nil {
		d.onDeliver(ep.name, 0, fmt.Errorf("rendering the %s payload: %w", ep.format, err))
		return true
	}
	id := deliveryID()
	for attempt := 0; ; attempt++ {
		status, retryAfter, err := ep.post(d.ctx, body, a.Type, id)
		if d.ctx.Err() != nil {
			return false
		}
		switch {
		case err == nil && status >= 200 && status < 300:
			d.onDeliver(ep.name, status, nil)
			return true
		case err == nil && status != http.StatusTooManyRequests && status < 500:
			// The receiver refused this payload; sending it again cannot help.
			d.onDeliver(ep.name, status, fmt.Errorf("POST %s: status %d", ep.redacted, status))
			return true
		case err == nil:
			err = fmt.Errorf("POST %s: status %d", ep.redacted, status)
		}
		if attempt >= ep.maxRetries {
			d.onDrop(ep.name, 1, DropRetriesExhausted, fmt.Errorf("%d attempts: %w", attempt+1, err))
			return true
		}
		wait := ep.backoffFor(attempt)
		if retryAfter > 0 {
			if retryAfter > ep.maxBackoff {
				d.onDrop(ep.name, 1, DropRetryAfter, fmt.Errorf("Retry-After %s is over max_backoff %s: %w", retryAfter, ep.maxBackoff, err))
				return true
			}
			wait = retryAfter
		}
		t := time.NewTimer(wait)
		select {
		case <-d.ctx.Done():
			t.Stop()
			return false
		case <-t.C:
		}
	}
}

// backoffFor is "full jitter": a random wait up to a ceiling that doubles,
// so that gateways retrying against one receiver spread out.
func (ep *endpoint) backoffFor(attempt int) time.Duration {
	ceiling := ep.maxBackoff
	if attempt < 30 {
		ceiling = min(ep.backoff<<attempt, ep.maxBackoff)
	}
	if ceiling <= 0 {
		return 0
	}
	return mrand.N(ceiling)
}

// post makes one attempt; status is 0 when err says why there was none.
func (ep *endpoint) post(ctx context.Context, body []byte, event, id string) (status int, retryAfter time.Duration, err error) {
	ctx, cancel := context.WithTimeout(ctx, ep.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, ep.url, bytes.NewReader(body))
	if err != nil {
		return 0, 0, ep.redact(err)
	}
	for k, v := range ep.headers {
		req.Header[k] = v
	}
	req.Header.Set(HeaderEvent, event)
	req.Header.Set(HeaderDelivery, id)
	if ep.secret != nil {
		// Signed at each attempt, so that a late retry is not refused as a replay.
		req.Header.Set(HeaderSignature, sign(ep.secret, time.Now(), body))
	}
	resp, err := ep.client.Do(req)
	if err != nil {
		return 0, 0, ep.redact(err)
	}
	// Read a little of the body so that the connection can be reused.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	return resp.StatusCode, parseRetryAfter(resp.Header.Get("Retry-After"), time.Now()), nil
}

// redact takes the URL out of an error: a webhook URL is often the credential.
func (ep *endpoint) redact(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return fmt.Errorf("%s %s: %w", ue.Op, ep.redacted, ue.Err)
	}
	return err
}

// parseRetryAfter reads seconds or an HTTP date; 0 when absent or past.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		if n <= 0 {
			return 0
		}
		return time.Duration(min(n, 1<<32)) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

func deliveryID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func sign(secret []byte, t time.Time, body []byte) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(ts))
	m.Write([]byte{'.'})
	m.Write(body)
	return "t=" + ts + ",v1=" + hex.EncodeToString(m.Sum(nil))
}

// Verify checks a request's X-Sekisho-Signature header against its body:
// some v1 must be the HMAC and t within tolerance of now, which bounds
// how long a captured request can be replayed.
func Verify(secret []byte, header string, body []byte, tolerance time.Duration, now time.Time) error {
	var ts string
	var sigs [][]byte
	for part := range strings.SplitSeq(header, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
		switch k {
		case "t":
			ts = v
		case "v1":
			if b, err := hex.DecodeString(v); err == nil {
				sigs = append(sigs, b)
			}
		}
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || len(sigs) == 0 {
		return errors.New("alert: malformed signature header")
	}
	if d := now.Sub(time.Unix(sec, 0)); d > tolerance || d < -tolerance {
		return fmt.Errorf("alert: signature time %s is more than %s from now", time.Unix(sec, 0).UTC().Format(time.RFC3339), tolerance)
	}
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(ts))
	m.Write([]byte{'.'})
	m.Write(body)
	want := m.Sum(nil)
	for _, s := range sigs {
		if hmac.Equal(s, want) {
			return nil
		}
	}
	return errors.New("alert: signature mismatch")
}
