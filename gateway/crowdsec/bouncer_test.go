package crowdsec

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeLAPI plays a LAPI's decision stream the way CrowdSec does: it notes
// what it has answered a bouncer, and sends later pulls only what changed
// since, so that an answer lost on the way loses those changes for good.
type fakeLAPI struct {
	t   *testing.T
	key string

	mu       sync.Mutex
	mode     string                // "ok", "garbage" or "500"
	live     map[int64]apiDecision // Duration holds the absolute end, as RFC 3339
	log      []fakeEvent           // every add and delete, in order
	answered int                   // how much of log the LAPI believes sent
	startups []bool                // each request's startup flag
}

// fakeEvent is a decision added or deleted.
type fakeEvent struct {
	id      int64
	deleted bool
}

// newFakeLAPI is a LAPI with no decision, expecting key.
func newFakeLAPI(t *testing.T, key string) *fakeLAPI {
	return &fakeLAPI{t: t, key: key, mode: "ok", live: map[int64]apiDecision{}}
}

// add makes decision d, lasting d.Duration from now.
func (f *fakeLAPI) add(d apiDecision) {
	dur, err := time.ParseDuration(d.Duration)
	if err != nil {
		f.t.Fatal(err)
	}
	d.Duration = time.Now().Add(dur).Format(time.RFC3339Nano)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.live[d.ID] = d
	f.log = append(f.log, fakeEvent{id: d.ID})
}

// remove deletes decision id, as `cscli decisions delete` does.
func (f *fakeLAPI) remove(id int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.live, id)
	f.log = append(f.log, fakeEvent{id: id, deleted: true})
}

// setMode changes how the LAPI answers, and tells how many requests came before.
func (f *fakeLAPI) setMode(mode string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.mode = mode
	return len(f.startups)
}

// requests is each request's startup flag so far.
func (f *fakeLAPI) requests() []bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]bool(nil), f.startups...)
}

// ServeHTTP answers GET /v1/decisions/stream.
func (f *fakeLAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet || r.URL.Path != "/v1/decisions/stream" {
		f.t.Errorf("LAPI asked %s %s", r.Method, r.URL.Path)
		http.NotFound(w, r)
		return
	}
	if r.Header.Get("X-Api-Key") != f.key {
		f.t.Errorf("LAPI got a request without the bouncer's key")
		w.WriteHeader(http.StatusForbidden)
		fmt.Fprint(w, `{"message":"access forbidden"}`)
		return
	}
	startup := r.URL.Query().Get("startup")
	if startup != "true" && startup != "false" {
		f.t.Errorf("LAPI got startup=%q", startup)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.startups = append(f.startups, startup == "true")
	switch f.mode {
	case "500":
		// The LAPI failed before answering: it does not note the pull.
		w.WriteHeader(http.StatusInternalServerError)
		fmt.Fprint(w, `{"message":"database is locked"}`)
	case "garbage":
		// Something on the way mangled an answer the LAPI noted as sent.
		f.answered = len(f.log)
		fmt.Fprint(w, `{"new": [{"id": 1, "scope": "Ip", "val`)
	default:
		f.answer(w, startup == "true")
	}
}

// answer sends everything in force, or what changed since the last answer.
func (f *fakeLAPI) answer(w http.ResponseWriter, startup bool) {
	var ans struct {
		New     []apiDecision `json:"new"`
		Deleted []apiDecision `json:"deleted"`
	}
	now := time.Now()
	send := func(d apiDecision) apiDecision {
		until, _ := time.Parse(time.RFC3339Nano, d.Duration)
		d.Duration = until.Sub(now).String()
		return d
	}
	if startup {
		for _, d := range f.live {
			ans.New = append(ans.New, send(d))
		}
	} else {
		for _, ev := range f.log[f.answered:] {
			if d, ok := f.live[ev.id]; ok && !ev.deleted {
				ans.New = append(ans.New, send(d))
			} else if ev.deleted {
				ans.Deleted = append(ans.Deleted, apiDecision{ID: ev.id, Duration: "-1s"})
			}
		}
	}
	f.answered = len(f.log)
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(ans)
}

// errorLog collects what a Bouncer reports.
type errorLog struct {
	mu   sync.Mutex
	errs []error
}

// add is an OnError.
func (l *errorLog) add(err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.errs = append(l.errs, err)
}

// all is every error reported so far.
func (l *errorLog) all() []error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]error(nil), l.errs...)
}

// has tells whether an error reported so far says s.
func (l *errorLog) has(s string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, err := range l.errs {
		if strings.Contains(err.Error(), s) {
			return true
		}
	}
	return false
}

// waitFor waits, a bounded time, for cond.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waited 5s for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// typeOf is the type of the decision about addr, or "".
func typeOf(b *Bouncer, addr string) string {
	d, ok := b.Decision(netip.MustParseAddr(addr))
	if !ok {
		return ""
	}
	return d.Type
}

// expect checks the decisions about some addresses.
func expect(t *testing.T, b *Bouncer, want map[string]string) {
	t.Helper()
	for addr, typ := range want {
		if got := typeOf(b, addr); got != typ {
			t.Errorf("%s: decision %q, want %q", addr, got, typ)
		}
	}
}

const testKey = "0123456789abcdef0123456789abcdef"

func TestBouncerFollowsLAPI(t *testing.T) {
	lapi := newFakeLAPI(t, testKey)
	for _, d := range []apiDecision{
		dec(1, "Ip", "192.0.2.1", "ban", "1h"),
		dec(2, "Ip", "192.0.2.1", "captcha", "2h"),
		dec(3, "Range", "10.0.0.0/8", "captcha", "1h"),
		dec(4, "Range", "10.1.0.0/16", "ban", "1h"),
		dec(5, "Ip", "2001:db8::1", "ban", "1h"),
		dec(6, "Country", "FR", "ban", "1h"),
		dec(7, "Ip", "192.0.2.9", "ban", "400ms"),
	} {
		lapi.add(d)
	}
	srv := httptest.NewServer(lapi)
	defer srv.Close()
	var errs errorLog
	b := &Bouncer{URL: srv.URL, APIKey: testKey, Interval: 20 * time.Millisecond, OnError: errs.add}
	if err := b.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer b.Close()

	// Start returns once the full list is in.
	if reqs := lapi.requests(); len(reqs) == 0 || !reqs[0] {
		t.Fatalf("first pull: startup flags %v, want true first", reqs)
	}
	expect(t, b, map[string]string{
		"192.0.2.1": "ban", "::ffff:192.0.2.1": "ban", "10.2.3.4": "captcha", "10.1.2.3": "ban",
		"2001:db8::1": "ban", "192.0.2.9": "ban", "198.51.100.1": "", "2001:db8::2": "",
	})
	if d, _ := b.Decision(netip.MustParseAddr("192.0.2.1")); d.Origin != "cscli" || d.Scenario != "test 1" || time.Until(d.Until) < 59*time.Minute {
		t.Errorf("192.0.2.1: %+v", d)
	}
	if b.Len() != 6 || b.LastSync().IsZero() {
		t.Errorf("%d decisions synced at %v, want 6 and a time", b.Len(), b.LastSync())
	}

	// A deletion removes that decision, not the other one on the address.
	lapi.remove(1)
	waitFor(t, "the ban on 192.0.2.1 to go", func() bool { return typeOf(b, "192.0.2.1") == "captcha" })
	// A decision lapses on time though the LAPI says nothing.
	waitFor(t, "the ban on 192.0.2.9 to lapse", func() bool { return typeOf(b, "192.0.2.9") == "" })
	lapi.add(dec(8, "Ip", "203.0.113.5", "ban", "1h"))
	waitFor(t, "the new ban on 203.0.113.5", func() bool { return typeOf(b, "203.0.113.5") == "ban" })
	for i, startup := range lapi.requests()[1:] {
		if startup {
			t.Fatalf("pull %d asked for the full list with nothing lost", i+2)
		}
	}

	// Garbage: the decisions stay, and the deletion lost with it is caught
	// up with by a full pull once the LAPI answers well again.
	lapi.setMode("garbage")
	waitFor(t, "bad JSON to be reported", func() bool { return errs.has("bad JSON") })
	lapi.remove(4)
	waitFor(t, "a pull to lose the deletion", func() bool {
		lapi.mu.Lock()
		defer lapi.mu.Unlock()
		return lapi.answered == len(lapi.log)
	})
	expect(t, b, map[string]string{"192.0.2.1": "captcha", "203.0.113.5": "ban", "10.1.2.3": "ban"})
	n := lapi.setMode("ok")
	waitFor(t, "the lost deletion to be caught up with", func() bool { return typeOf(b, "10.1.2.3") == "captcha" })
	if reqs := lapi.requests(); !reqs[n] {
		t.Errorf("first pull after bad JSON: startup=false, want a full pull")
	}

	// An error status: the decisions stay.
	lapi.setMode("500")
	waitFor(t, "the 500 to be reported", func() bool { return errs.has("500") })
	expect(t, b, map[string]string{"192.0.2.1": "captcha", "203.0.113.5": "ban", "10.1.2.3": "captcha"})
	n = lapi.setMode("ok")
	lapi.add(dec(9, "Range", "2001:db8:1::/48", "ban", "1h"))
	waitFor(t, "the LAPI to be back", func() bool { return typeOf(b, "2001:db8:1::5") == "ban" })
	if reqs := lapi.requests(); !reqs[n] {
		t.Errorf("first pull after a 500: startup=false, want a full pull")
	}

	// The LAPI gone: the decisions stay.
	srv.Close()
	waitFor(t, "the LAPI's absence to be reported", func() bool { return errs.has("connect") })
	expect(t, b, map[string]string{"192.0.2.1": "captcha", "203.0.113.5": "ban", "2001:db8:1::5": "ban", "198.51.100.1": ""})

	for _, err := range errs.all() {
		if strings.Contains(err.Error(), testKey) {
			t.Errorf("an error shows the API key: %v", err)
		}
	}
}

// listenAt serves h on addr ("127.0.0.1:0" for any port) until the test ends
// or the returned stop is called.
func listenAt(t *testing.T, addr string, h http.Handler) (url string, stop func()) {
	t.Helper()
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h}
	go srv.Serve(l)
	stop = func() { srv.Close() }
	t.Cleanup(stop)
	return "http://" + l.Addr().String(), stop
}

func TestStartWhileLAPIDown(t *testing.T) {
	lapi := newFakeLAPI(t, testKey)
	lapi.add(dec(1, "Ip", "192.0.2.1", "ban", "1h"))
	url, stop := listenAt(t, "127.0.0.1:0", lapi)
	stop()

	var errs errorLog
	b := &Bouncer{URL: url, APIKey: testKey, Interval: 20 * time.Millisecond, OnError: errs.add}
	err := b.Start(context.Background())
	defer b.Close()
	if err == nil || errors.Is(err, ErrConfig) {
		t.Fatalf("Start with the LAPI down: %v, want an error other than ErrConfig", err)
	}
	if typeOf(b, "192.0.2.1") != "" {
		t.Fatal("a decision with the LAPI never reached")
	}
	waitFor(t, "a retry to fail too", func() bool { return errs.has("connect") })

	listenAt(t, strings.TrimPrefix(url, "http://"), lapi)
	waitFor(t, "the LAPI's decisions once it is up", func() bool { return typeOf(b, "192.0.2.1") == "ban" })
	if reqs := lapi.requests(); !reqs[0] {
		t.Errorf("first pull: startup=false, want the full list")
	}
}

// TestNoFullPullAfterNoConnection checks that a LAPI that could not be
// reached is asked only for what changed meanwhile: it never answered, so
// it still knows what this bouncer has.
func TestNoFullPullAfterNoConnection(t *testing.T) {
	lapi := newFakeLAPI(t, testKey)
	lapi.add(dec(1, "Ip", "192.0.2.1", "ban", "1h"))
	url, stop := listenAt(t, "127.0.0.1:0", lapi)
	var errs errorLog
	b := &Bouncer{URL: url, APIKey: testKey, Interval: 20 * time.Millisecond, OnError: errs.add}
	if err := b.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	stop()
	waitFor(t, "the LAPI's absence to be reported", func() bool { return errs.has("connect") })
	lapi.remove(1)
	lapi.add(dec(2, "Ip", "192.0.2.2", "captcha", "1h"))
	n := len(lapi.requests())
	listenAt(t, strings.TrimPrefix(url, "http://"), lapi)
	waitFor(t, "the changes made while it was away", func() bool {
		return typeOf(b, "192.0.2.1") == "" && typeOf(b, "192.0.2.2") == "captcha"
	})
	if reqs := lapi.requests(); reqs[n] {
		t.Errorf("first pull after the LAPI came back asked for the full list; nothing was lost")
	}
}

func TestWrongKey(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusForbidden)
		fmt.Fprint(w, `{"message":"access forbidden"}`)
	}))
	defer srv.Close()
	key := "a-wrong-key-not-to-be-shown"
	b := &Bouncer{URL: srv.URL, APIKey: key, Interval: time.Hour}
	err := b.Start(context.Background())
	b.Close()
	if err == nil || !strings.Contains(err.Error(), "403") || !strings.Contains(err.Error(), "access forbidden") {
		t.Fatalf("Start with a wrong key: %v, want the 403 and its message", err)
	}
	if strings.Contains(err.Error(), key) {
		t.Errorf("the error shows the key: %v", err)
	}
}

func TestMaxBody(t *testing.T) {
	var ds []apiDecision
	for i := range 50 {
		ds = append(ds, dec(int64(i+1), "Ip", fmt.Sprintf("192.0.2.%d", i), "ban", "1h"))
	}
	body, _ := json.Marshal(map[string]any{"new": ds, "deleted": nil})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(body) }))
	defer srv.Close()

	b := &Bouncer{URL: srv.URL, APIKey: testKey, Interval: time.Hour, MaxBody: int64(len(body)) - 1}
	err := b.Start(context.Background())
	b.Close()
	if !errors.Is(err, errTooLarge) || typeOf(b, "192.0.2.1") != "" {
		t.Fatalf("answer 1 byte over MaxBody: %v, want errTooLarge and no decision", err)
	}
	b = &Bouncer{URL: srv.URL, APIKey: testKey, Interval: time.Hour, MaxBody: int64(len(body))}
	err = b.Start(context.Background())
	b.Close()
	if err != nil || typeOf(b, "192.0.2.1") != "ban" {
		t.Fatalf("answer of MaxBody bytes: %v", err)
	}
}

func TestDecode(t *testing.T) {
	for _, s := range []string{`{"new":null,"deleted":null}`, `{}`, " {\"new\":[],\"deleted\":[]}\n"} {
		if _, err := decode(strings.NewReader(s), 1<<20); err != nil {
			t.Errorf("%q: %v", s, err)
		}
	}
	for _, s := range []string{"", "null", "[]", `"new"`, `{"new": [`, `{"new": 5}`, `{"new":[]} {}`, `<html>`, `{"new":[{"id":"one"}]}`} {
		if _, err := decode(strings.NewReader(s), 1<<20); err == nil {
			t.Errorf("%q: no error", s)
		}
	}
}

func TestConfigErrors(t *testing.T) {
	for _, b := range []*Bouncer{
		{URL: "http://127.0.0.1:8080", APIKey: ""},
		{URL: "http://127.0.0.1:8080", APIKey: testKey + "\n"},
		{URL: "127.0.0.1:8080", APIKey: testKey},
		{URL: "ftp://127.0.0.1/", APIKey: testKey},
		{URL: "http://[::1", APIKey: testKey},
	} {
		err := b.Start(context.Background())
		if !errors.Is(err, ErrConfig) {
			t.Errorf("%q: %v, want ErrConfig", b.URL, err)
		}
		if err != nil && strings.Contains(err.Error(), testKey) {
			t.Errorf("the error shows the key: %v", err)
		}
		b.Close()
	}
}

func TestLifecycle(t *testing.T) {
	var b Bouncer
	if _, ok := b.Decision(netip.MustParseAddr("192.0.2.1")); ok {
		t.Error("a decision before Start")
	}
	if _, ok := b.Decision(netip.Addr{}); ok {
		t.Error("a decision about no address")
	}
	b.Close() // before Start: nothing to stop

	lapi := newFakeLAPI(t, testKey)
	srv := httptest.NewServer(lapi)
	defer srv.Close()
	b2 := &Bouncer{URL: srv.URL + "/", APIKey: testKey}
	if err := b2.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := b2.Start(context.Background()); !errors.Is(err, ErrConfig) {
		t.Errorf("second Start: %v, want ErrConfig", err)
	}
	done := make(chan struct{})
	go func() { b2.Close(); b2.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not return")
	}

	// Start's context ends the pulling too.
	ctx, cancel := context.WithCancel(context.Background())
	b3 := &Bouncer{URL: srv.URL, APIKey: testKey, Interval: 10 * time.Millisecond}
	if err := b3.Start(ctx); err != nil {
		t.Fatal(err)
	}
	cancel()
	select {
	case <-b3.done:
	case <-time.After(5 * time.Second):
		t.Fatal("the pulling outlived Start's context")
	}
}
