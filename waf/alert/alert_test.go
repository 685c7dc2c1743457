package alert

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// call is one request a receiver got.
type call struct {
	at     time.Time
	header http.Header
	body   []byte
}

// receiver is a webhook on loopback that records what it gets and answers
// with respond (200 by default).
type receiver struct {
	*httptest.Server
	mu      sync.Mutex
	calls   []call
	respond func(n int, w http.ResponseWriter) // n counts from 0
	got     chan struct{}
}

func newReceiver(t *testing.T) *receiver {
	r := &receiver{got: make(chan struct{}, 10000)}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		n := len(r.calls)
		r.calls = append(r.calls, call{at: time.Now(), header: req.Header.Clone(), body: body})
		respond := r.respond
		r.mu.Unlock()
		if respond != nil {
			respond(n, w)
		}
		r.got <- struct{}{}
	}))
	t.Cleanup(r.Close)
	return r
}

func (r *receiver) snapshot() []call {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]call(nil), r.calls...)
}

// wait waits for n more requests.
func (r *receiver) wait(t *testing.T, n int) {
	t.Helper()
	for range n {
		select {
		case <-r.got:
		case <-time.After(5 * time.Second):
			t.Fatalf("the receiver got %d requests, waited for %d more", len(r.snapshot()), n)
		}
	}
}

// alerts decodes the JSON alerts the receiver got.
func (r *receiver) alerts(t *testing.T) []Alert {
	t.Helper()
	var out []Alert
	for _, c := range r.snapshot() {
		var a Alert
		if err := json.Unmarshal(c.body, &a); err != nil {
			t.Fatalf("payload %s: %v", c.body, err)
		}
		out = append(out, a)
	}
	return out
}

// recorder collects the hooks' calls.
type recorder struct {
	mu       sync.Mutex
	drops    map[string]int
	reasons  []string
	delivers []string
	dropped  chan struct{}
}

func newRecorder() *recorder {
	return &recorder{drops: map[string]int{}, dropped: make(chan struct{}, 100000)}
}

func (rc *recorder) options() Options {
	return Options{
		OnDrop: func(ep string, n int, reason string, err error) {
			rc.mu.Lock()
			rc.drops[ep] += n
			rc.reasons = append(rc.reasons, fmt.Sprintf("%s: %v", reason, err))
			rc.mu.Unlock()
			rc.dropped <- struct{}{}
		},
		OnDeliver: func(ep string, status int, err error) {
			rc.mu.Lock()
			rc.delivers = append(rc.delivers, fmt.Sprintf("%s %d %v", ep, status, err))
			rc.mu.Unlock()
		},
	}
}

func (rc *recorder) dropCount(ep string) int {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return rc.drops[ep]
}

func (rc *recorder) get() (reasons, delivers []string) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]string(nil), rc.reasons...), append([]string(nil), rc.delivers...)
}

func start(t *testing.T, c Config, o Options) *Dispatcher {
	t.Helper()
	d, err := New(c, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		d.Close(ctx)
	})
	return d
}

func closeNow(t *testing.T, d *Dispatcher) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := d.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
}

func blocked(ip string) Event {
	return Event{
		Type: EventWAFBlock, RequestID: "req-1", ClientIP: ip, Host: "shop.example.com", Path: "/search",
		Route: "shop", Policy: "strict", Score: 15,
		Matches: []Match{{RuleID: 942100, Message: "SQL Injection Attack Detected via libinjection", Variable: "ARGS:q",
			Exclusion: `SecRule REQUEST_FILENAME "@streq /search" "id:1000,phase:1,pass,nolog,ctl:ruleRemoveTargetById=942100;ARGS:q"`}},
	}
}

func retries(n int) *int { return &n }

// A failed rules reload reaches the receiver signed; the receiver's own
// HMAC, computed here without the package's code, agrees.
func TestSignatureVerifies(t *testing.T) {
	secret := "0123456789abcdef-secret"
	file := filepath.Join(t.TempDir(), "key")
	os.WriteFile(file, []byte(secret+"\n"), 0o600)
	r := newReceiver(t)
	d := start(t, Config{Endpoints: []Endpoint{{Name: "soc", URL: r.URL + "/hook", SecretFile: file}}}, Options{})
	d.Emit(Event{Type: EventRulesReloadFailed, Policy: "strict", Message: "rules/custom.conf:12: unknown operator @rxx"})
	r.wait(t, 1)

	c := r.snapshot()[0]
	sig := c.header.Get(HeaderSignature)
	var ts, v1 string
	for _, p := range strings.Split(sig, ",") {
		k, v, _ := strings.Cut(p, "=")
		switch k {
		case "t":
			ts = v
		case "v1":
			v1 = v
		}
	}
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(ts + "." + string(c.body)))
	if want := hex.EncodeToString(m.Sum(nil)); v1 != want {
		t.Fatalf("signature %q; want v1=%s", sig, want)
	}
	sec, _ := strconv.ParseInt(ts, 10, 64)
	if d := time.Since(time.Unix(sec, 0)); d < -time.Minute || d > time.Minute {
		t.Errorf("t=%s is %s from now", ts, d)
	}
	if err := Verify([]byte(secret), sig, c.body, 5*time.Minute, time.Now()); err != nil {
		t.Errorf("Verify: %v", err)
	}
	if err := Verify([]byte(secret), sig, append(c.body, ' '), 5*time.Minute, time.Now()); err == nil {
		t.Error("Verify accepted a changed body")
	}
	if err := Verify([]byte(secret), sig, c.body, 5*time.Minute, time.Now().Add(time.Hour)); err == nil {
		t.Error("Verify accepted an old signature")
	}
	if got := c.header.Get(HeaderEvent); got != EventRulesReloadFailed {
		t.Errorf("%s: %q", HeaderEvent, got)
	}
	if got := c.header.Get("Content-Type"); got != "application/json" {
		t.Errorf("Content-Type: %q", got)
	}
	a := r.alerts(t)[0]
	if a.Type != EventRulesReloadFailed || a.Severity != SeverityCritical || a.Count != 1 ||
		a.Message != "rules/custom.conf:12: unknown operator @rxx" || a.Policy != "strict" {
		t.Errorf("alert %+v", a)
	}
}

// The secret comes from SEKISHO_ALERT_SECRET_<NAME> when there is no file.
func TestSecretFromEnv(t *testing.T) {
	t.Setenv("SEKISHO_ALERT_SECRET_OPS_HOOK", "from-env")
	r := newReceiver(t)
	d := start(t, Config{Endpoints: []Endpoint{{Name: "ops-hook", URL: r.URL}}}, Options{})
	d.Emit(Event{Type: EventRedisDown, Message: "dial tcp 10.0.0.5:6379: connection refused"})
	r.wait(t, 1)
	c := r.snapshot()[0]
	if err := Verify([]byte("from-env"), c.header.Get(HeaderSignature), c.body, time.Minute, time.Now()); err != nil {
		t.Fatal(err)
	}
}

// The signature example in the package doc is a real one.
func TestSignatureDocExample(t *testing.T) {
	got := sign([]byte("whsec"), time.Unix(1735787045, 0), []byte(`{"type":"redis.up"}`))
	if want := "t=1735787045,v1=" + docExampleV1; got != want {
		t.Fatalf("sign = %s; the package doc says %s", got, want)
	}
}

const docExampleV1 = "0a1295ebb3e46a3a6db34e88271af2816ef116d59e391046d218bd2c312c289d"

func TestFilterAndMinSeverity(t *testing.T) {
	waf, ops := newReceiver(t), newReceiver(t)
	d := start(t, Config{Endpoints: []Endpoint{
		{Name: "waf", URL: waf.URL, Events: []string{"waf.*"}, MinSeverity: "warning"},
		{Name: "ops", URL: ops.URL, Events: []string{EventBackendDown, "cert.*"}},
	}}, Options{})
	d.Emit(Event{Type: EventWAFDetect, ClientIP: "192.0.2.1"})                             // info: below waf's minimum
	d.Emit(blocked("192.0.2.2"))                                                           // warning
	d.Emit(Event{Type: EventWAFDetect, Severity: SeverityCritical, ClientIP: "192.0.2.3"}) // raised by the emitter
	d.Emit(Event{Type: EventBackendDown, Backend: "api", Server: "10.0.0.3:8080"})         // ops only
	d.Emit(Event{Type: EventBackendUp, Backend: "api", Server: "10.0.0.3:8080"})           // nobody
	d.Emit(Event{Type: EventCertExpiring, Host: "shop.example.com"})                       // ops only
	d.Emit(Event{Type: EventRedisDown})                                                    // nobody
	d.Emit(Event{Type: ""})                                                                // ignored
	closeNow(t, d)

	var got []string
	for _, a := range waf.alerts(t) {
		got = append(got, a.Type+"/"+a.ClientIP)
	}
	if want := "waf.block/192.0.2.2 waf.detect/192.0.2.3"; strings.Join(got, " ") != want {
		t.Errorf("waf endpoint got %v; want %s", got, want)
	}
	got = nil
	for _, a := range ops.alerts(t) {
		got = append(got, a.Type)
	}
	if want := "backend.down cert.expiring"; strings.Join(got, " ") != want {
		t.Errorf("ops endpoint got %v; want %s", got, want)
	}
}

// A burst of 1,000 blocked requests from one IP on one rule, emitted from
// several goroutines, costs a few calls whose counts add up to 1,000.
func TestBurstAggregates(t *testing.T) {
	r := newReceiver(t)
	d := start(t, Config{Window: time.Hour, Endpoints: []Endpoint{{Name: "soc", URL: r.URL}}}, Options{})
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 125 {
				e := blocked("203.0.113.7")
				e.RequestID = fmt.Sprintf("req-%d-%d", g, i)
				d.Emit(e)
			}
		})
	}
	wg.Wait()
	closeNow(t, d)
	as := r.alerts(t)
	if len(as) > 5 {
		t.Errorf("%d calls for one burst", len(as))
	}
	sum := 0
	for _, a := range as {
		sum += a.Count
		if a.ClientIP != "203.0.113.7" || len(a.Matches) != 1 || a.Matches[0].RuleID != 942100 || a.Matches[0].Variable != "ARGS:q" {
			t.Errorf("alert %+v", a)
		}
		if a.Last.Before(a.First) {
			t.Errorf("last %s before first %s", a.Last, a.First)
		}
	}
	if sum != 1000 {
		t.Errorf("counts add up to %d; want 1000", sum)
	}
	t.Logf("%d calls, counts %v", len(as), func() (c []int) {
		for _, a := range as {
			c = append(c, a.Count)
		}
		return
	}())
}

// The window closes by itself: the first event at once, the repeats when it
// ends, and a new window holds what comes after.
func TestWindowEnds(t *testing.T) {
	r := newReceiver(t)
	d := start(t, Config{Window: 300 * time.Millisecond, Endpoints: []Endpoint{{Name: "soc", URL: r.URL}}}, Options{})
	for range 5 {
		d.Emit(blocked("203.0.113.7"))
	}
	r.wait(t, 2)
	as := r.alerts(t)
	if as[0].Count != 1 || as[1].Count != 4 {
		t.Fatalf("counts %d, %d; want 1, 4", as[0].Count, as[1].Count)
	}
	d.Emit(blocked("203.0.113.7")) // the key's window is open again: counted, not sent
	time.Sleep(20 * time.Millisecond)
	if n := len(r.snapshot()); n != 2 {
		t.Fatalf("%d calls; the repeat should wait for its window", n)
	}
	r.wait(t, 1)
	if a := r.alerts(t)[2]; a.Count != 1 {
		t.Errorf("count %d", a.Count)
	}
}

// Other clients, rules and routes are other alerts.
func TestKeys(t *testing.T) {
	r := newReceiver(t)
	d := start(t, Config{Window: time.Hour, Endpoints: []Endpoint{{Name: "soc", URL: r.URL}}}, Options{})
	e := blocked("203.0.113.7")
	d.Emit(e)
	e.ClientIP = "203.0.113.8"
	d.Emit(e)
	e.Route = "admin"
	d.Emit(e)
	e.Matches = []Match{{RuleID: 941100}}
	d.Emit(e)
	d.Emit(Event{Type: EventBackendDown, Backend: "api", Server: "a"})
	d.Emit(Event{Type: EventBackendDown, Backend: "api", Server: "b"})
	r.wait(t, 6)
	closeNow(t, d)
	if n := len(r.snapshot()); n != 6 {
		t.Errorf("%d calls; want 6", n)
	}
}

func TestCloseFlushes(t *testing.T) {
	r := newReceiver(t)
	d := start(t, Config{Window: time.Hour, Endpoints: []Endpoint{{Name: "soc", URL: r.URL}}}, Options{})
	for range 3 {
		d.Emit(blocked("203.0.113.7"))
	}
	r.wait(t, 1)
	if n := len(r.snapshot()); n != 1 {
		t.Fatalf("%d calls before Close", n)
	}
	closeNow(t, d)
	as := r.alerts(t)
	if len(as) != 2 || as[1].Count != 2 {
		t.Fatalf("alerts %+v; want a second with count 2", as)
	}
	d.Emit(blocked("203.0.113.7")) // after Close: ignored, no panic
	if err := d.Close(context.Background()); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

// deadURL is a loopback port with nothing listening.
func deadURL(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return "http://" + addr + "/services/T000/B000/TOKEN"
}

// A receiver that is down: retries, then a counted drop whose reason does
// not show the URL's secret path.
func TestReceiverDown(t *testing.T) {
	rc := newRecorder()
	d := start(t, Config{Endpoints: []Endpoint{{Name: "soc", URL: deadURL(t), MaxRetries: retries(2), Backoff: time.Millisecond}}}, rc.options())
	d.Emit(blocked("203.0.113.7"))
	select {
	case <-rc.dropped:
	case <-time.After(5 * time.Second):
		t.Fatal("no drop reported")
	}
	reasons, delivers := rc.get()
	if rc.dropCount("soc") != 1 || len(delivers) != 0 {
		t.Fatalf("drops %v, delivers %v", rc.drops, delivers)
	}
	if !strings.HasPrefix(reasons[0], "retries_exhausted: 3 attempts: ") || strings.Contains(reasons[0], "TOKEN") {
		t.Errorf("reason %q", reasons[0])
	}
}

// With the receiver down, 10,000 events of distinct keys (each one an
// alert to queue) cost Emit nothing noticeable, and every one of them is
// accounted for as a drop.
func TestReceiverDownEmitCost(t *testing.T) {
	rc := newRecorder()
	d := start(t, Config{QueueSize: 16, Window: time.Hour, Endpoints: []Endpoint{
		{Name: "soc", URL: deadURL(t), MaxRetries: retries(1), Backoff: time.Millisecond},
	}}, rc.options())
	begin := time.Now()
	for i := range 10000 {
		d.Emit(blocked(fmt.Sprintf("198.51.%d.%d", i/256, i%256)))
	}
	took := time.Since(begin)
	if took > time.Second {
		t.Errorf("10,000 Emit calls took %s", took)
	}
	t.Logf("10,000 Emit calls with a dead receiver: %s", took)
	closeNow(t, d)
	if n := rc.dropCount("soc"); n != 10000 {
		t.Errorf("%d drops reported; want 10000", n)
	}
	kinds := map[string]bool{}
	reasons, _ := rc.get()
	for _, r := range reasons {
		kind, _, _ := strings.Cut(r, ":")
		kinds[kind] = true
	}
	if !kinds[DropQueueFull] || !kinds[DropRetriesExhausted] {
		t.Errorf("drop reasons %v; want queue_full and retries_exhausted", kinds)
	}
}

// Past max_keys, the events of new keys are dropped and counted.
func TestMaxKeys(t *testing.T) {
	r := newReceiver(t)
	rc := newRecorder()
	d := start(t, Config{MaxKeys: 2, Window: time.Hour, Endpoints: []Endpoint{{Name: "soc", URL: r.URL}}}, rc.options())
	for _, ip := range []string{"192.0.2.1", "192.0.2.2", "192.0.2.3", "192.0.2.4", "192.0.2.1"} {
		d.Emit(blocked(ip))
	}
	closeNow(t, d)
	if n := rc.dropCount(""); n != 2 {
		t.Errorf("%d table drops; want 2", n)
	}
	if reasons, _ := rc.get(); len(reasons) != 1 || reasons[0] != "max_keys: <nil>" {
		t.Errorf("reasons %q; want one report of both", reasons)
	}
	if n := len(r.snapshot()); n != 3 { // two firsts and the repeat's summary
		t.Errorf("%d calls; want 3", n)
	}
}

// A 429 with Retry-After: the next attempt waits at least that long.
func TestRetryAfter(t *testing.T) {
	r := newReceiver(t)
	r.respond = func(n int, w http.ResponseWriter) {
		if n == 0 {
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusTooManyRequests)
		}
	}
	rc := newRecorder()
	d := start(t, Config{Endpoints: []Endpoint{{Name: "slack", URL: r.URL, Backoff: time.Millisecond}}}, rc.options())
	d.Emit(blocked("203.0.113.7"))
	r.wait(t, 2)
	cs := r.snapshot()
	if gap := cs[1].at.Sub(cs[0].at); gap < time.Second {
		t.Errorf("retried after %s; Retry-After said 1s", gap)
	}
	if cs[0].header.Get(HeaderDelivery) == "" || cs[0].header.Get(HeaderDelivery) != cs[1].header.Get(HeaderDelivery) {
		t.Errorf("delivery ids %q, %q", cs[0].header.Get(HeaderDelivery), cs[1].header.Get(HeaderDelivery))
	}
	closeNow(t, d)
	if _, delivers := rc.get(); len(delivers) != 1 || delivers[0] != "slack 200 <nil>" {
		t.Errorf("delivers %v", delivers)
	}
}

// A Retry-After above max_backoff drops the alert instead of stalling the queue.
func TestRetryAfterTooLong(t *testing.T) {
	r := newReceiver(t)
	r.respond = func(n int, w http.ResponseWriter) {
		w.Header().Set("Retry-After", "3600")
		w.WriteHeader(http.StatusTooManyRequests)
	}
	rc := newRecorder()
	d := start(t, Config{Endpoints: []Endpoint{{Name: "soc", URL: r.URL, Backoff: time.Millisecond, MaxBackoff: time.Second}}}, rc.options())
	d.Emit(blocked("203.0.113.7"))
	closeNow(t, d)
	reasons, _ := rc.get()
	if rc.dropCount("soc") != 1 || !strings.HasPrefix(reasons[0], "retry_after: Retry-After 1h0m0s is over max_backoff 1s") {
		t.Errorf("drops %d, reasons %q", rc.dropCount("soc"), reasons)
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	for v, want := range map[string]time.Duration{
		"":                              0,
		"7":                             7 * time.Second,
		" 0 ":                           0,
		"-3":                            0,
		"soon":                          0,
		"Thu, 02 Jan 2025 03:04:35 GMT": 30 * time.Second,
		"Thu, 02 Jan 2025 03:00:00 GMT": 0,
	} {
		if got := parseRetryAfter(v, now); got != want {
			t.Errorf("parseRetryAfter(%q) = %s; want %s", v, got, want)
		}
	}
}

// 5xx, then 200: delivered once. A 400 is not retried.
func TestRetryThenDeliver(t *testing.T) {
	r := newReceiver(t)
	r.respond = func(n int, w http.ResponseWriter) {
		if n < 2 {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}
	bad := newReceiver(t)
	bad.respond = func(n int, w http.ResponseWriter) { w.WriteHeader(http.StatusBadRequest) }
	rc := newRecorder()
	d := start(t, Config{Endpoints: []Endpoint{
		{Name: "flaky", URL: r.URL, Backoff: time.Millisecond},
		{Name: "bad", URL: bad.URL + "/secret-path", Backoff: time.Millisecond},
	}}, rc.options())
	d.Emit(blocked("203.0.113.7"))
	closeNow(t, d)
	if n := len(r.snapshot()); n != 3 {
		t.Errorf("flaky receiver got %d requests; want 3", n)
	}
	if n := len(bad.snapshot()); n != 1 {
		t.Errorf("bad receiver got %d requests; want 1", n)
	}
	_, delivers := rc.get()
	joined := strings.Join(delivers, "\n")
	if len(delivers) != 2 || !strings.Contains(joined, "flaky 200 <nil>") || !strings.Contains(joined, "bad 400 POST http://127.0.0.1") {
		t.Errorf("delivers %q", delivers)
	}
	if strings.Contains(joined, "secret-path") {
		t.Errorf("an error shows the URL's path: %q", delivers)
	}
	if rc.dropCount("flaky")+rc.dropCount("bad") != 0 {
		t.Errorf("drops %v", rc.drops)
	}
}

// Each attempt is bounded by the endpoint's timeout.
func TestTimeout(t *testing.T) {
	release := make(chan struct{})
	r := newReceiver(t)
	r.respond = func(n int, w http.ResponseWriter) { <-release }
	defer close(release)
	rc := newRecorder()
	d := start(t, Config{Endpoints: []Endpoint{{Name: "slow", URL: r.URL, Timeout: 50 * time.Millisecond, MaxRetries: retries(1), Backoff: time.Millisecond}}}, rc.options())
	begin := time.Now()
	d.Emit(blocked("203.0.113.7"))
	select {
	case <-rc.dropped:
	case <-time.After(5 * time.Second):
		t.Fatal("no drop")
	}
	if took := time.Since(begin); took > 2*time.Second {
		t.Errorf("two 50ms attempts took %s", took)
	}
	if reasons, _ := rc.get(); !strings.Contains(reasons[0], "deadline exceeded") {
		t.Errorf("reason %q", reasons[0])
	}
}

// Close's deadline abandons retries in progress and reports them.
func TestCloseDeadline(t *testing.T) {
	r := newReceiver(t)
	r.respond = func(n int, w http.ResponseWriter) { w.WriteHeader(http.StatusBadGateway) }
	rc := newRecorder()
	d, err := New(Config{Window: time.Hour, Endpoints: []Endpoint{{Name: "soc", URL: r.URL, Backoff: time.Hour, MaxBackoff: time.Hour}}}, rc.options())
	if err != nil {
		t.Fatal(err)
	}
	d.Emit(blocked("203.0.113.7"))
	d.Emit(blocked("203.0.113.8"))
	r.wait(t, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := d.Close(ctx); err != context.DeadlineExceeded {
		t.Errorf("Close: %v", err)
	}
	if n := rc.dropCount("soc"); n != 2 {
		t.Errorf("%d drops; want 2", n)
	}
	if reasons, _ := rc.get(); len(reasons) != 1 || reasons[0] != "shutdown: <nil>" {
		t.Errorf("reasons %q", reasons)
	}
}

func TestTemplateAndSlack(t *testing.T) {
	tmpl, slack := newReceiver(t), newReceiver(t)
	d := start(t, Config{Window: time.Hour, Endpoints: []Endpoint{
		{Name: "tmpl", URL: tmpl.URL, Format: FormatTemplate, Headers: map[string]string{"Authorization": "Token abc"},
			Template: `{"text": {{json .Summary}}, "n": {{.Count}}, "ip": {{json .ClientIP}}, "rules": [{{range $i, $m := .Matches}}{{if $i}},{{end}}{{$m.RuleID}}{{end}}]}`},
		{Name: "slack", URL: slack.URL, Format: FormatSlack},
	}}, Options{})
	e := blocked("203.0.113.7")
	e.Path = `/search"<@U123>|<https://evil.example|click>`
	d.Emit(e)
	d.Emit(e)
	closeNow(t, d)

	cs := tmpl.snapshot()
	if len(cs) != 2 {
		t.Fatalf("%d template calls", len(cs))
	}
	var got struct {
		Text  string
		N     int
		IP    string
		Rules []int
	}
	if err := json.Unmarshal(cs[0].body, &got); err != nil {
		t.Fatalf("template output %s: %v", cs[0].body, err)
	}
	if got.N != 1 || got.IP != "203.0.113.7" || len(got.Rules) != 1 || got.Rules[0] != 942100 ||
		!strings.HasPrefix(got.Text, "[warning] waf.block: rule 942100, from 203.0.113.7, on shop.example.com/search") {
		t.Errorf("template output %+v", got)
	}
	if cs[0].header.Get("Authorization") != "Token abc" {
		t.Errorf("headers %v", cs[0].header)
	}

	cs = slack.snapshot()
	var msg struct{ Text string }
	if err := json.Unmarshal(cs[1].body, &msg); err != nil {
		t.Fatal(err)
	}
	t.Logf("slack text:\n%s", msg.Text)
	for _, want := range []string{":warning: *[WARNING] waf.block* at ", "*Client IP:* `203.0.113.7`", "Rule *942100* on `ARGS:q`: SQL Injection",
		"ctl:ruleRemoveTargetById=942100;ARGS:q", "&lt;@U123&gt;|&lt;https://evil.example|click&gt;"} {
		if !strings.Contains(msg.Text, want) {
			t.Errorf("slack text lacks %q", want)
		}
	}
	if strings.Contains(msg.Text, "<") {
		t.Errorf("slack text has an unescaped '<'")
	}
}

// The JSON payload's field names are an interface; they change only on purpose.
func TestJSONFields(t *testing.T) {
	r := newReceiver(t)
	d := start(t, Config{Endpoints: []Endpoint{{Name: "soc", URL: r.URL}}}, Options{})
	e := blocked("203.0.113.7")
	e.Backend, e.Server, e.Message, e.Fields = "api", "10.0.0.3:8080", "m", map[string]string{"k": "v"}
	d.Emit(e)
	r.wait(t, 1)
	var m map[string]any
	if err := json.Unmarshal(r.snapshot()[0].body, &m); err != nil {
		t.Fatal(err)
	}
	var keys []string
	for k := range m {
		keys = append(keys, k)
	}
	want := "backend client_ip count fields first host last matches message path policy request_id route score server severity summary time type"
	if got := strings.Join(sorted(keys), " "); got != want {
		t.Errorf("fields %s\nwant   %s", got, want)
	}
	match := m["matches"].([]any)[0].(map[string]any)
	if got := strings.Join(sorted(mapKeys(match)), " "); got != "exclusion message rule_id variable" {
		t.Errorf("match fields %s", got)
	}
	if m["severity"] != "warning" || m["count"] != 1.0 {
		t.Errorf("severity %v, count %v", m["severity"], m["count"])
	}
}

func mapKeys(m map[string]any) (out []string) {
	for k := range m {
		out = append(out, k)
	}
	return out
}

func sorted(s []string) []string {
	slices.Sort(s)
	return s
}

func TestValidate(t *testing.T) {
	good := Endpoint{Name: "soc", URL: "https://siem.example.com/hook"}
	with := func(f func(e *Endpoint)) Config {
		e := good
		f(&e)
		return Config{Endpoints: []Endpoint{e}}
	}
	for _, tc := range []struct {
		name string
		c    Config
		want []string
	}{
		{"good", Config{Endpoints: []Endpoint{good, {Name: "ops_2", URL: "http://10.0.0.1:9000/", Format: FormatSlack, Events: []string{"*"}}}}, nil},
		{"empty", Config{}, nil},
		{"name", with(func(e *Endpoint) { e.Name = "" }), []string{"endpoints[0].name: is required"}},
		{"bad name", with(func(e *Endpoint) { e.Name = "a b" }), []string{`endpoints[0].name: "a b" may hold only letters, digits, '-' and '_'`}},
		{"duplicate", Config{Endpoints: []Endpoint{good, good}}, []string{`endpoints[1].name: duplicate endpoint name "soc"`}},
		{"no url", with(func(e *Endpoint) { e.URL = "" }), []string{"endpoints[0].url: is required"}},
		{"scheme", with(func(e *Endpoint) { e.URL = "ftp://secret@example.com/x" }), []string{"endpoints[0].url: the scheme must be http or https"}},
		{"host", with(func(e *Endpoint) { e.URL = "https:///x" }), []string{"endpoints[0].url: has no host"}},
		{"format", with(func(e *Endpoint) { e.Format = "xml" }), []string{`endpoints[0].format: "xml" is not one of json, slack, template`}},
		{"no template", with(func(e *Endpoint) { e.Format = FormatTemplate }), []string{"endpoints[0].template: is required with format: template"}},
		{"stray template", with(func(e *Endpoint) { e.Template = "x" }), []string{"endpoints[0].template: is used only with format: template"}},
		{"template syntax", with(func(e *Endpoint) { e.Format, e.Template = FormatTemplate, "{{.Count" }),
			[]string{"endpoints[0].template: template: soc:1: unclosed action"}},
		{"template field", with(func(e *Endpoint) { e.Format, e.Template = FormatTemplate, "{{.ClientAddr}}" }),
			[]string{`endpoints[0].template: template: soc:1:2: executing "soc" at <.ClientAddr>: can't evaluate field ClientAddr in type *alert.Alert`}},
		{"events", with(func(e *Endpoint) { e.Events = []string{"waf.block", "waf.blok", "tls.*"} }), []string{
			`endpoints[0].events[1]: "waf.blok" is not an event type (access.challenged, access.denied, backend.down, backend.up, ban.added, cert.expiring, cert.renewal_failed, config.reload_failed, ip_list.failed, rate_limit.triggered, redis.down, redis.up, rules.reload_failed, waf.block, waf.detect), a category (access, backend, ban, cert, config, ip_list, rate_limit, redis, rules, waf) or *`,
			`endpoints[0].events[2]: "tls.*" is not an event type`}},
		{"severity", with(func(e *Endpoint) { e.MinSeverity = "high" }), []string{`endpoints[0].min_severity: "high" is not one of info, warning, critical`}},
		{"numbers", with(func(e *Endpoint) {
			e.Timeout, e.MaxRetries, e.Backoff, e.MaxBackoff = -1, retries(21), 2*time.Second, time.Second
		}), []string{"endpoints[0].timeout: must be positive", "endpoints[0].max_retries: must be within 0..20", "endpoints[0].max_backoff: 1s is below backoff 2s"}},
		{"headers", with(func(e *Endpoint) {
			e.Headers = map[string]string{"X-Sekisho-Event": "x", "Bad Name": "x", "X-Ok": "a\r\nb"}
		}), []string{`endpoints[0].headers: "Bad Name" is not a header name`, "endpoints[0].headers: the value of X-Ok holds a line break", "endpoints[0].headers: X-Sekisho-Event is reserved"}},
		{"secret file", with(func(e *Endpoint) { e.SecretFile = "/nonexistent/key" }), []string{"endpoints[0].secret_file: stat /nonexistent/key: no such file or directory"}},
		{"top", Config{Window: -1, QueueSize: -1, MaxKeys: -1}, []string{"window: must be positive", "queue_size: must be at least 1", "max_keys: must be at least 1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := tc.c
			c.SetDefaults()
			err := c.Validate()
			if tc.want == nil {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("Validate accepted it")
			}
			lines := strings.Split(err.Error(), "\n")
			if len(lines) != len(tc.want) {
				t.Errorf("%d errors:\n%v\nwant %d", len(lines), err, len(tc.want))
			}
			for i, w := range tc.want {
				if i < len(lines) && !strings.HasPrefix(lines[i], w) {
					t.Errorf("error %d: %s\nwant prefix %s", i, lines[i], w)
				}
			}
			if strings.Contains(err.Error(), "secret@") {
				t.Error("an error shows the URL")
			}
		})
	}
}

// New neither writes into the caller's config nor starts on a bad one.
func TestNew(t *testing.T) {
	c := Config{Endpoints: []Endpoint{{Name: "soc", URL: "http://127.0.0.1:1/"}}}
	d, err := New(c, Options{})
	if err != nil {
		t.Fatal(err)
	}
	closeNow(t, d)
	if c.Endpoints[0].Format != "" || c.Window != 0 {
		t.Errorf("New changed the caller's config: %+v", c)
	}
	if _, err := New(Config{Endpoints: []Endpoint{{Name: "soc"}}}, Options{}); err == nil || !strings.Contains(err.Error(), "endpoints[0].url") {
		t.Errorf("New on a bad config: %v", err)
	}
	empty := filepath.Join(t.TempDir(), "key")
	os.WriteFile(empty, []byte("\n"), 0o600)
	if _, err := New(Config{Endpoints: []Endpoint{{Name: "soc", URL: "http://127.0.0.1:1/", SecretFile: empty}}}, Options{}); err == nil ||
		!strings.Contains(err.Error(), "endpoints[0].secret_file: "+empty+" is empty") {
		t.Errorf("New with an empty secret: %v", err)
	}
	var nilD *Dispatcher
	nilD.Emit(blocked("192.0.2.1"))
	if err := nilD.Close(context.Background()); err != nil {
		t.Error(err)
	}
}

func TestSeverity(t *testing.T) {
	for _, s := range []Severity{SeverityInfo, SeverityWarning, SeverityCritical} {
		if p, err := ParseSeverity(s.String()); err != nil || p != s {
			t.Errorf("%s: %v, %v", s, p, err)
		}
	}
	if Severity(0).String() != "severity(0)" || !(SeverityInfo < SeverityWarning && SeverityWarning < SeverityCritical) {
		t.Error("severity order or names")
	}
	if !slices.IsSorted(EventTypes()) || !slices.IsSorted(categories()) {
		t.Error("EventTypes or categories not sorted")
	}
	for _, typ := range eventTypes {
		if DefaultSeverity(typ.name) != typ.severity {
			t.Errorf("DefaultSeverity(%s) = %s; the table says %s", typ.name, DefaultSeverity(typ.name), typ.severity)
		}
	}
}

func TestTruncate(t *testing.T) {
	if got := truncate("héllo", 2); got != "h…" {
		t.Errorf("truncate = %q", got)
	}
	if got := truncate("abc", 3); got != "abc" {
		t.Errorf("truncate = %q", got)
	}
}

// BenchmarkEmit measures what a blocked request pays for alerting in a
// burst, with the receiver down: the repeat of a key already open.
func BenchmarkEmit(b *testing.B) {
	d, err := New(Config{Endpoints: []Endpoint{{Name: "soc", URL: "http://127.0.0.1:1/"}}}, Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer closeAbandoning(b, d)
	e := blocked("203.0.113.7")
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			d.Emit(e)
		}
	})
}

// BenchmarkEmitNewKey is a distributed attack: 10,000 clients in turn, in
// windows so short that nearly every event is the first of its key (an
// entry, an alert, a queue attempt each).
func BenchmarkEmitNewKey(b *testing.B) {
	d, err := New(Config{Window: time.Millisecond, Endpoints: []Endpoint{{Name: "soc", URL: "http://127.0.0.1:1/"}}}, Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer closeAbandoning(b, d)
	ips := make([]string, DefaultMaxKeys)
	for i := range ips {
		ips[i] = "10.0." + strconv.Itoa(i>>8) + "." + strconv.Itoa(i&255)
	}
	e := blocked("")
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		e.ClientIP = ips[i%len(ips)]
		d.Emit(e)
	}
}

// BenchmarkEmitFiltered is an event no endpoint wants.
func BenchmarkEmitFiltered(b *testing.B) {
	d, err := New(Config{Endpoints: []Endpoint{{Name: "soc", URL: "http://127.0.0.1:1/", Events: []string{"backend.*"}}}}, Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer closeAbandoning(b, d)
	e := blocked("203.0.113.7")
	b.ReportAllocs()
	for b.Loop() {
		d.Emit(e)
	}
}

// closeAbandoning closes d outside the benchmark's time, without waiting
// for the retries of a dead receiver.
func closeAbandoning(b *testing.B, d *Dispatcher) {
	b.StopTimer()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	d.Close(ctx)
}
