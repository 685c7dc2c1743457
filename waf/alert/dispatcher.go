package alert

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"text/template"
	"time"
)

// Why alerts are dropped (Options.OnDrop).
const (
	DropMaxKeys          = "max_keys"          // a new key while max_keys keys were held
	DropQueueFull        = "queue_full"        // the endpoint's queue was full
	DropRetriesExhausted = "retries_exhausted" // every attempt failed
	DropRetryAfter       = "retry_after"       // the receiver asked to wait longer than max_backoff
	DropShutdown         = "shutdown"          // Close's deadline came first
)

// Options are the hooks into the program that runs the dispatcher.
type Options struct {
	// OnDrop is told of n alerts that will never be delivered, reason
	// being one of the Drop* constants (fit for a metric label) and err
	// the detail, if any (for a log). Endpoint is "" for DropMaxKeys, whose
	// events were dropped before reaching any endpoint. It is called from
	// the dispatcher's own goroutines, never from Emit, and full queues
	// and tables are summed per tick, so that it can log every call.
	OnDrop func(endpoint string, n int, reason string, err error)
	// OnDeliver is told of each alert's outcome at an endpoint that did not
	// drop it: err is nil for a 2xx, else the receiver refused it (a 4xx
	// other than 429, a redirect) or the payload did not render.
	OnDeliver func(endpoint string, status int, err error)
	// Client sends the requests; by default one that follows no redirects,
	// so that a signed body goes only where it was configured to.
	Client *http.Client
	// Now is the clock of event times and windows; time.Now by default.
	Now func() time.Time
}

// Dispatcher groups events into alerts and delivers them to the endpoints.
// A nil *Dispatcher is valid and drops everything, so that a gateway
// without alerts needs no checks.
type Dispatcher struct {
	window    time.Duration
	maxKeys   int
	now       func() time.Time
	onDrop    func(string, int, string, error)
	onDeliver func(string, int, error)
	endpoints []*endpoint

	mu         sync.Mutex
	closed     bool
	entries    map[key]*entry
	head, tail *entry // by window start, oldest first, so a tick stops at the first young one

	tableDrops atomic.Int64
	// ctx aborts attempts and backoffs once Close's deadline has come.
	ctx       context.Context
	cancel    context.CancelFunc
	stop      chan struct{}
	ticker    sync.WaitGroup
	workers   sync.WaitGroup
	closeOnce sync.Once
}

// key is what makes events "the same": the (type, rule, client IP,
// route), plus what tells apart the events that have no rule or client
// (backend.down of two servers, cert.expiring of two certificates).
type key struct {
	typ      string
	severity Severity
	rule     int
	clientIP string
	route    string
	host     string
	policy   string
	backend  string
	server   string
}

// entry is a key's window: the first event went out when it opened, and
// pending counts those since the last alert.
type entry struct {
	key         key
	mask        uint64 // the endpoints that want this key
	start       time.Time
	pending     int
	first, last time.Time
	sample      Event // the latest pending event, whose details the summary carries
	prev, next  *entry
}

// New starts a dispatcher: a goroutine per endpoint and one that closes
// windows. c is validated (with its defaults set) and the secrets read here.
func New(c Config, o Options) (*Dispatcher, error) {
	c.Endpoints = slices.Clone(c.Endpoints) // SetDefaults must not write into the caller's slice
	c.SetDefaults()
	if err := c.Validate(); err != nil {
		return nil, err
	}
	d := &Dispatcher{
		window:    c.Window,
		maxKeys:   c.MaxKeys,
		now:       o.Now,
		onDrop:    o.OnDrop,
		onDeliver: o.OnDeliver,
		entries:   map[key]*entry{},
		stop:      make(chan struct{}),
	}
	if d.now == nil {
		d.now = time.Now
	}
	if d.onDrop == nil {
		d.onDrop = func(string, int, string, error) {}
	}
	if d.onDeliver == nil {
		d.onDeliver = func(string, int, error) {}
	}
	client := o.Client
	if client == nil {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.MaxIdleConnsPerHost = 2
		client = &http.Client{
			Transport:     t,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	for i := range c.Endpoints {
		ep, err := newEndpoint(&c.Endpoints[i], c.QueueSize, client)
		if err != nil {
			return nil, fmt.Errorf("endpoints[%d].%w", i, err)
		}
		d.endpoints = append(d.endpoints, ep)
	}
	d.ctx, d.cancel = context.WithCancel(context.Background())
	for _, ep := range d.endpoints {
		d.workers.Add(1)
		go d.work(ep)
	}
	// A summary goes out between one window and 1¼ windows after it opened.
	tick := min(max(d.window/4, 5*time.Millisecond), time.Second)
	d.ticker.Add(1)
	go d.tick(tick)
	return d, nil
}

func newEndpoint(c *Endpoint, queue int, client *http.Client) (*endpoint, error) {
	ep := &endpoint{
		name:       c.Name,
		url:        c.URL,
		format:     c.Format,
		timeout:    c.Timeout,
		maxRetries: *c.MaxRetries,
		backoff:    c.Backoff,
		maxBackoff: c.MaxBackoff,
		headers:    http.Header{},
		client:     client,
		queue:      make(chan *Alert, queue),
		drain:      make(chan struct{}),
	}
	u, _ := url.Parse(c.URL) // Validate parsed it
	ep.redacted = u.Scheme + "://" + u.Host
	if u.Path != "" && u.Path != "/" || u.RawQuery != "" {
		ep.redacted += "/…"
	}
	ep.minSeverity, _ = ParseSeverity(c.MinSeverity)
	for _, f := range c.Events {
		if f == "*" {
			ep.events = nil
			break
		}
		ep.events = append(ep.events, strings.TrimSuffix(f, "*")) // "waf.*" matches as the prefix "waf."
	}
	for k, v := range c.Headers {
		ep.headers.Set(k, v)
	}
	if ep.headers.Get("Content-Type") == "" {
		ep.headers.Set("Content-Type", "application/json")
	}
	if ep.headers.Get("User-Agent") == "" {
		ep.headers.Set("User-Agent", "sekisho-alert/1")
	}
	if c.Format == FormatTemplate {
		ep.tmpl, _ = parseTemplate(c.Name, c.Template) // Validate parsed it
	}
	switch {
	case c.SecretFile != "":
		b, err := os.ReadFile(c.SecretFile)
		if err != nil {
			return nil, fmt.Errorf("secret_file: %w", err)
		}
		s := strings.TrimRight(string(b), "\r\n")
		if s == "" {
			return nil, fmt.Errorf("secret_file: %s is empty", c.SecretFile)
		}
		ep.secret = []byte(s)
	case os.Getenv(SecretEnv(c.Name)) != "":
		ep.secret = []byte(os.Getenv(SecretEnv(c.Name)))
	}
	return ep, nil
}

// endpoint is an Endpoint made ready to send.
type endpoint struct {
	name        string
	url         string
	redacted    string // the URL as errors show it: scheme and host only
	format      string
	tmpl        *template.Template
	secret      []byte
	events      []string // exact types, or prefixes ending in '.'; nil is all
	minSeverity Severity
	timeout     time.Duration
	maxRetries  int
	backoff     time.Duration
	maxBackoff  time.Duration
	headers     http.Header
	client      *http.Client

	queue      chan *Alert
	drain      chan struct{} // closed by Close: send what is queued, then stop
	queueDrops atomic.Int64
}

func (ep *endpoint) wants(typ string, s Severity) bool {
	if s < ep.minSeverity {
		return false
	}
	if ep.events == nil {
		return true
	}
	for _, f := range ep.events {
		if f == typ || strings.HasSuffix(f, ".") && strings.HasPrefix(typ, f) {
			return true
		}
	}
	return false
}

// Emit records an event. It never blocks on delivery and allocates only
// for the first event of a key in a window: the repeats of a burst are a
// map lookup and a counter under a mutex. It is safe from many goroutines.
func (d *Dispatcher) Emit(e Event) {
	if d == nil || e.Type == "" {
		return
	}
	if e.Severity == 0 {
		e.Severity = DefaultSeverity(e.Type)
	}
	var mask uint64
	for i, ep := range d.endpoints {
		if ep.wants(e.Type, e.Severity) {
			mask |= 1 << i
		}
	}
	if mask == 0 {
		return
	}
	var now time.Time // read once at most: the clock is a measurable part of Emit's cost
	if e.Time.IsZero() {
		now = d.now()
		e.Time = now
	}
	k := key{typ: e.Type, severity: e.Severity, clientIP: e.ClientIP, route: e.Route, host: e.Host,
		policy: e.Policy, backend: e.Backend, server: e.Server}
	if len(e.Matches) > 0 {
		k.rule = e.Matches[0].RuleID
	}

	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return
	}
	if en := d.entries[k]; en != nil {
		if en.pending == 0 || e.Time.Before(en.first) {
			en.first = e.Time
		}
		if en.pending == 0 || e.Time.After(en.last) {
			en.last = e.Time
		}
		en.pending++
		en.sample = e
		return
	}
	if len(d.entries) >= d.maxKeys {
		d.tableDrops.Add(1)
		return
	}
	if now.IsZero() {
		now = d.now()
	}
	en := &entry{key: k, mask: mask, start: now}
	d.entries[k] = en
	d.pushBack(en)
	d.enqueue(&Alert{Event: e, Count: 1, First: e.Time, Last: e.Time}, mask)
}

// enqueue hands a to the endpoints in mask without waiting. Emit holds
// d.mu, so that nothing is queued after Close has told the workers to drain.
func (d *Dispatcher) enqueue(a *Alert, mask uint64) {
	for i, ep := range d.endpoints {
		if mask&(1<<i) == 0 {
			continue
		}
		select {
		case ep.queue <- a:
		default:
			ep.queueDrops.Add(1)
		}
	}
}

func (d *Dispatcher) tick(every time.Duration) {
	defer d.ticker.Done()
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-d.stop:
			return
		case <-t.C:
			d.flush(false)
			d.reportDrops()
		}
	}
}

// flush sends the summaries of the windows that have ended (all of them
// when closing). A key that had repeats opens a new window at once, so a
// steady attack costs one call a window; a quiet one is forgotten, so its
// next event goes out at once again.
func (d *Dispatcher) flush(closing bool) {
	type out struct {
		a    *Alert
		mask uint64
	}
	var outs []out
	now := d.now()
	d.mu.Lock()
	if closing {
		d.closed = true
	}
	for en := d.head; en != nil; {
		next := en.next
		if !closing && now.Sub(en.start) < d.window {
			break
		}
		d.unlink(en)
		if en.pending > 0 {
			outs = append(outs, out{&Alert{Event: en.sample, Count: en.pending, First: en.first, Last: en.last}, en.mask})
			if !closing {
				// At the tail with start = now, so this walk stops there.
				en.pending, en.sample, en.start = 0, Event{}, now
				d.pushBack(en)
				en = next
				continue
			}
		}
		delete(d.entries, en.key)
		en = next
	}
	if closing {
		// Under the lock, like every enqueue once closed is set, so that
		// the workers, told to drain next, see everything.
		defer d.mu.Unlock()
	} else {
		// Emit waits on the lock; thousands of summaries need not hold it.
		// Close waits for this goroutine before it drains, so none is lost.
		d.mu.Unlock()
	}
	for _, o := range outs {
		d.enqueue(o.a, o.mask)
	}
}

func (d *Dispatcher) pushBack(en *entry) {
	en.prev, en.next = d.tail, nil
	if d.tail != nil {
		d.tail.next = en
	} else {
		d.head = en
	}
	d.tail = en
}

func (d *Dispatcher) unlink(en *entry) {
	if en.prev != nil {
		en.prev.next = en.next
	} else {
		d.head = en.next
	}
	if en.next != nil {
		en.next.prev = en.prev
	} else {
		d.tail = en.prev
	}
	en.prev, en.next = nil, nil
}

// reportDrops tells OnDrop what was dropped without a goroutine of ours
// seeing it (a full queue or table), summed since the last report.
func (d *Dispatcher) reportDrops() {
	if n := d.tableDrops.Swap(0); n > 0 {
		d.onDrop("", int(n), DropMaxKeys, nil)
	}
	for _, ep := range d.endpoints {
		if n := ep.queueDrops.Swap(0); n > 0 {
			d.onDrop(ep.name, int(n), DropQueueFull, nil)
		}
	}
}

// Close stops taking events, sends the summaries of open windows and
// delivers what is queued, retries included, until ctx ends; then it
// abandons the rest (reported to OnDrop) and returns ctx's error. Its
// goroutines have stopped when it returns.
func (d *Dispatcher) Close(ctx context.Context) error {
	if d == nil {
		return nil
	}
	d.closeOnce.Do(func() {
		close(d.stop)
		d.ticker.Wait()
		d.flush(true)
		for _, ep := range d.endpoints {
			close(ep.drain)
		}
	})
	done := make(chan struct{})
	go func() {
		d.workers.Wait()
		close(done)
	}()
	var err error
	select {
	case <-done:
	case <-ctx.Done():
		err = ctx.Err()
		d.cancel()
		<-done
	}
	d.cancel()
	d.reportDrops()
	return err
}
