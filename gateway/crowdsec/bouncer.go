package crowdsec

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults for the Bouncer's zero fields.
const (
	// DefaultInterval is how often CrowdSec's own bouncers pull.
	DefaultInterval = 10 * time.Second
	// DefaultTimeout leaves room for a full list on a slow link.
	DefaultTimeout = 5 * time.Second
	// DefaultMaxBody holds a full list of a few hundred thousand decisions.
	DefaultMaxBody = 64 << 20
)

// pruneEvery is how often lapsed decisions are swept out of the copy; they
// stop answering on their own, so this only bounds memory.
const pruneEvery = time.Minute

// userAgent names the bouncer to the LAPI, which lists it in `cscli bouncers list`.
const userAgent = "sekisho-bouncer/v1"

// ErrConfig marks the errors of Start that leave nothing running: a bad
// configuration, which retrying cannot mend.
var ErrConfig = errors.New("crowdsec: bad bouncer configuration")

// errTooLarge is an answer over MaxBody.
var errTooLarge = errors.New("answer larger than the bouncer's MaxBody")

// Bouncer keeps a copy of a CrowdSec LAPI's decisions about IP addresses,
// pulled from its decision stream, for the gateway to ask about each request.
type Bouncer struct {
	// URL is the LAPI's base URL, e.g. "http://127.0.0.1:8080/".
	URL string
	// APIKey is the bouncer's key (`cscli bouncers add`); it is sent, never logged.
	APIKey string
	// Interval is the time between pulls; 0 means DefaultInterval.
	Interval time.Duration
	// Timeout bounds one pull, the answer's body included; 0 means DefaultTimeout.
	Timeout time.Duration
	// MaxBody bounds an answer's size in bytes; 0 means DefaultMaxBody.
	MaxBody int64
	// Client makes the requests; nil means http.DefaultClient.
	Client *http.Client
	// OnError hears of each failed pull but Start's (which Start returns) and
	// of decisions too malformed to use; nil drops them.
	OnError func(error)

	mu sync.RWMutex
	st *store // nil before Start; changed under mu by the pulling goroutine

	lastSync atomic.Int64 // Unix ns of the last good pull

	life    sync.Mutex
	started bool
	cancel  context.CancelFunc
	done    chan struct{}

	// Touched only by the pulling goroutine.
	resync    bool      // the next pull must ask for the full list
	lastPrune time.Time // when lapsed decisions were last swept out
}

// Start makes the first pull, for the full list, and keeps pulling every
// Interval until ctx ends or Close is called. An error from the first pull is
// returned, yet the pulling goes on in the background, so that the gateway
// can say the LAPI is unreachable and serve anyway; only an error that
// matches ErrConfig leaves nothing running.
func (b *Bouncer) Start(ctx context.Context) error {
	endpoint, err := b.endpoint()
	if err != nil {
		return err
	}
	b.life.Lock()
	if b.started {
		b.life.Unlock()
		return fmt.Errorf("%w: Start called twice", ErrConfig)
	}
	b.started = true
	ctx, b.cancel = context.WithCancel(ctx)
	b.done = make(chan struct{})
	b.life.Unlock()

	b.mu.Lock()
	b.st = newStore()
	b.mu.Unlock()
	b.resync = true
	first := make(chan error, 1)
	go b.run(ctx, endpoint, first)
	return <-first
}

// Close stops the pulling and waits for it to end. The decisions already
// pulled keep answering: a gateway draining its connections still bounces.
func (b *Bouncer) Close() {
	b.life.Lock()
	cancel, done := b.cancel, b.done
	b.life.Unlock()
	if cancel == nil {
		return
	}
	cancel()
	<-done
}

// Decision is the strongest decision in force about addr, from the exact
// address or a range that holds it; ok is false when there is none, including
// before the first pull has answered.
func (b *Bouncer) Decision(addr netip.Addr) (d Decision, ok bool) {
	if !addr.IsValid() {
		return Decision{}, false
	}
	addr = addr.Unmap()
	if addr.Zone() != "" {
		addr = addr.WithZone("") // the LAPI's values have none
	}
	now := time.Now().UnixNano()
	b.mu.RLock()
	var e entry
	if b.st != nil {
		e, ok = b.st.lookup(addr, now)
	}
	b.mu.RUnlock()
	if !ok {
		return Decision{}, false
	}
	return e.decision(), true
}

// LastSync is when the copy last matched the LAPI; zero until a pull succeeds.
func (b *Bouncer) LastSync() time.Time {
	n := b.lastSync.Load()
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n)
}

// Len is how many decisions the copy holds, lapsed ones not yet swept included.
func (b *Bouncer) Len() int {
	b.mu.RLock()
	defer b.mu.RUnlock()
	if b.st == nil {
		return 0
	}
	return len(b.st.byID)
}

// run is the pulling goroutine: the first pull's error goes to Start, the
// later ones to OnError.
func (b *Bouncer) run(ctx context.Context, endpoint *url.URL, first chan<- error) {
	defer close(b.done)
	first <- b.pull(ctx, endpoint)
	t := time.NewTimer(b.interval())
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := b.pull(ctx, endpoint); err != nil && ctx.Err() == nil {
			b.report(err)
		}
		t.Reset(b.interval())
	}
}

// pull asks for what changed, or for everything when the copy may have
// missed something, and brings it into the copy.
func (b *Bouncer) pull(ctx context.Context, endpoint *url.URL) error {
	startup := b.resync
	ans, at, err := b.fetch(ctx, endpoint, startup)
	if err != nil {
		if mayHaveLost(err) {
			b.resync = true
		}
		return err
	}
	var skipped int
	var bad error
	if startup {
		// A full list replaces the copy: what it lacks was deleted meanwhile.
		// It is built aside so that readers wait only for the swap.
		st := newStore()
		skipped, bad = st.apply(ans.New, nil, at)
		b.mu.Lock()
		b.st = st
		b.mu.Unlock()
		b.lastPrune = at
	} else {
		b.mu.Lock()
		skipped, bad = b.st.apply(ans.New, ans.Deleted, at)
		b.mu.Unlock()
	}
	b.resync = false
	b.lastSync.Store(at.UnixNano())
	if skipped > 0 {
		b.report(fmt.Errorf("crowdsec: %d decisions from the LAPI could not be used, the first: %w", skipped, bad))
	}
	b.maybePrune(at)
	return nil
}

// maybePrune sweeps lapsed decisions out of the copy now and then.
func (b *Bouncer) maybePrune(now time.Time) {
	if now.Sub(b.lastPrune) < pruneEvery {
		return
	}
	b.lastPrune = now
	b.mu.Lock()
	b.st.prune(now)
	b.mu.Unlock()
}

// mayHaveLost tells whether a failed pull may have lost decisions: the LAPI
// notes a bouncer's pull when it has answered, so only a request that never
// reached it (no connection) is sure to be asked again in full by the next
// delta.
func mayHaveLost(err error) bool {
	var op *net.OpError
	return !errors.As(err, &op) || op.Op != "dial"
}

// answer is the stream's answer: decisions new since the last pull, and
// those deleted or lapsed since (either list null when empty).
type answer struct {
	New     []apiDecision `json:"new"`
	Deleted []apiDecision `json:"deleted"`
}

// fetch makes one request to the stream and reads its answer, received at at.
func (b *Bouncer) fetch(ctx context.Context, endpoint *url.URL, startup bool) (ans *answer, at time.Time, err error) {
	ctx, cancel := context.WithTimeout(ctx, b.timeout())
	defer cancel()
	u := *endpoint
	u.RawQuery = url.Values{"startup": {strconv.FormatBool(startup)}, "scopes": {"ip,range"}}.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, at, fmt.Errorf("crowdsec: %w", err)
	}
	req.Header.Set("X-Api-Key", b.APIKey)
	req.Header.Set("User-Agent", userAgent)
	req.Header.Set("Accept", "application/json")
	client := b.Client
	if client == nil {
		client = http.DefaultClient
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, at, fmt.Errorf("crowdsec: pull from LAPI: %w", err)
	}
	defer resp.Body.Close()
	at = time.Now()
	if resp.StatusCode != http.StatusOK {
		return nil, at, statusError(resp)
	}
	ans, err = decode(resp.Body, b.maxBody())
	if err != nil {
		return nil, at, fmt.Errorf("crowdsec: pull from LAPI %s: %w", endpoint.Redacted(), err)
	}
	return ans, at, nil
}

// statusError says what the LAPI answered instead of a stream, with the
// start of its message (403 is a wrong key; the key itself is never shown).
func statusError(resp *http.Response) error {
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 256))
	return fmt.Errorf("crowdsec: pull from LAPI %s: status %s: %q", resp.Request.URL.Redacted(), resp.Status, msg)
}

// decode reads an answer of at most max bytes: one JSON object and nothing after.
func decode(body io.Reader, max int64) (*answer, error) {
	r := bufio.NewReader(&capped{r: body, left: max})
	if err := expectObject(r); err != nil {
		return nil, err
	}
	dec := json.NewDecoder(r)
	var ans answer
	if err := dec.Decode(&ans); err != nil {
		if errors.Is(err, errTooLarge) {
			return nil, fmt.Errorf("%w (%d bytes)", errTooLarge, max)
		}
		return nil, fmt.Errorf("bad JSON: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		if errors.Is(err, errTooLarge) {
			return nil, fmt.Errorf("%w (%d bytes)", errTooLarge, max)
		}
		return nil, errors.New("bad JSON: more after the answer")
	}
	return &ans, nil
}

// expectObject checks that the answer is a JSON object, so that a null, a
// list or a string is not taken for an answer with nothing in it.
func expectObject(r *bufio.Reader) error {
	for {
		c, err := r.ReadByte()
		if err != nil {
			return fmt.Errorf("bad JSON: %w", err)
		}
		switch c {
		case ' ', '\t', '\r', '\n':
			continue
		case '{':
			return r.UnreadByte()
		}
		return fmt.Errorf("bad JSON: answer starts with %q, not an object", c)
	}
}

// capped reads at most left bytes, and fails rather than stop short when
// there are more: a truncated list would look like a short one.
type capped struct {
	r    io.Reader
	left int64
}

// Read reads from the body within the cap.
func (c *capped) Read(p []byte) (int, error) {
	if c.left <= 0 {
		var probe [1]byte
		n, err := c.r.Read(probe[:])
		if n > 0 {
			return 0, errTooLarge
		}
		return 0, err
	}
	if int64(len(p)) > c.left {
		p = p[:c.left]
	}
	n, err := c.r.Read(p)
	c.left -= int64(n)
	return n, err
}

// endpoint is the stream's URL, or why the configuration cannot work.
func (b *Bouncer) endpoint() (*url.URL, error) {
	u, err := url.Parse(b.URL)
	if err != nil {
		return nil, fmt.Errorf("%w: URL: %v", ErrConfig, err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("%w: URL %q is not an http(s) URL with a host", ErrConfig, u.Redacted())
	}
	if err := checkKey(b.APIKey); err != nil {
		return nil, err
	}
	u = u.JoinPath("v1", "decisions", "stream")
	u.RawQuery, u.Fragment = "", ""
	return u, nil
}

// checkKey refuses a key that cannot go in a header, without quoting it.
func checkKey(key string) error {
	if key == "" {
		return fmt.Errorf("%w: no API key", ErrConfig)
	}
	for i := 0; i < len(key); i++ {
		if c := key[i]; c <= ' ' || c >= 0x7f {
			return fmt.Errorf("%w: the API key has a space or a control or non-ASCII character at byte %d (a stray newline from its file?)", ErrConfig, i)
		}
	}
	return nil
}

// report hands err to OnError.
func (b *Bouncer) report(err error) {
	if b.OnError != nil {
		b.OnError(err)
	}
}

// interval is Interval or its default.
func (b *Bouncer) interval() time.Duration {
	if b.Interval > 0 {
		return b.Interval
	}
	return DefaultInterval
}

// timeout is Timeout or its default.
func (b *Bouncer) timeout() time.Duration {
	if b.Timeout > 0 {
		return b.Timeout
	}
	return DefaultTimeout
}

// maxBody is MaxBody or its default.
func (b *Bouncer) maxBody() int64 {
	if b.MaxBody > 0 {
		return b.MaxBody
	}
	return DefaultMaxBody
}
