package waf

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/corazawaf/coraza/v3/experimental"
	"github.com/corazawaf/coraza/v3/experimental/plugins/plugintypes"
	"github.com/corazawaf/coraza/v3/types"
)

// Action is what the WAF did with a request, as written in the access log.
type Action string

// The actions.
const (
	ActionPass   Action = "pass"   // inspected, nothing matched
	ActionBlock  Action = "block"  // refused
	ActionDetect Action = "detect" // rules matched in detect mode; passed
	ActionOff    Action = "off"    // not inspected (policy mode off)
	ActionError  Action = "error"  // inspection failed; refused
)

// Verdict is the outcome of inspecting a request.
type Verdict struct {
	Action Action
	// Status is the HTTP status to answer with when Action is block or error.
	Status int
	// RuleID is the rule that interrupted the request, if any.
	RuleID int
	// Rules are the IDs of the matched rules that log a message, in match order.
	Rules []int
	// Matches explain each of Rules: message, matched variable, and an
	// exclusion scoped to that rule, variable and path.
	Matches []Match
	// Score is CRS's blocking inbound anomaly score.
	Score int
	// Truncated reports a body over the limit of which only the first part was inspected.
	Truncated bool
	// RedirectURL is set when a rule's disruptive action is a redirect.
	RedirectURL string
	// Unconfirmed are the CRS matches that a semantic check rejected
	// (semantic.go): they did not score.
	Unconfirmed []Unconfirmed
}

// Blocked reports whether the request must not reach a backend.
func (v *Verdict) Blocked() bool { return v.Action == ActionBlock || v.Action == ActionError }

// Conn is the connection a request came over, as the WAF sees it.
type Conn struct {
	ClientIP   string
	ClientPort int
	ServerIP   string
	ServerPort int
	// JA4 is the client's TLS fingerprint; rules read it as TX:sekisho_ja4.
	JA4 string
	// JA4H is its HTTP fingerprint, when computed: TX:sekisho_ja4h.
	JA4H string
}

// Tx is one request's inspection. Close it when the response is done.
type Tx struct {
	e   *Engine
	ctx context.Context
	tx  types.Transaction // nil when the mode is off

	body    io.Reader // what to forward, set by InspectRequest
	bodyLen int64     // -1 when not known in advance
	// ReadTime is the time spent receiving the request body from the client;
	// InspectTime the time spent running rules.
	ReadTime, InspectTime time.Duration

	err  error
	path string // the request's path, for the exclusions a verdict suggests
}

// ErrClientGone marks a request whose client went away before it was inspected.
var ErrClientGone = errors.New("client went away")

// ErrClientBody marks a request body that could not be read from the client
// (reset, timeout, bad chunking): a client error, not a WAF failure.
var ErrClientBody = errors.New("reading request body")

// NewTx starts the inspection of one request; id becomes the transaction's unique ID.
func (e *Engine) NewTx(ctx context.Context, id string) *Tx {
	t := &Tx{e: e, ctx: ctx, bodyLen: -1}
	if e.waf != nil {
		t.tx = e.waf.NewTransactionWithOptions(experimental.Options{ID: id, Context: ctx})
		trackTx(t.tx)
	}
	return t
}

// InspectRequest runs the request phases (headers, then body) on r. uri is
// the request target exactly as it will be sent to the backend. On a pass,
// Body returns the body to forward: the bytes that were inspected.
func (t *Tx) InspectRequest(r *http.Request, uri string, c Conn) *Verdict {
	if t.tx == nil {
		t.body, t.bodyLen = r.Body, r.ContentLength
		if r.Body == nil { // a client request's, as http.NewRequest leaves it
			t.body, t.bodyLen = http.NoBody, 0
		}
		return &Verdict{Action: ActionOff}
	}
	start := time.Now()
	defer func() {
		t.InspectTime = time.Since(start) - t.ReadTime
		forgetValues(t.tx)
	}()

	tx := t.tx
	t.path = r.URL.Path
	tx.ProcessConnection(c.ClientIP, c.ClientPort, c.ServerIP, c.ServerPort)
	if st, ok := tx.(plugintypes.TransactionState); ok && c.JA4+c.JA4H != "" {
		if c.JA4 != "" {
			st.Variables().TX().Set("sekisho_ja4", []string{c.JA4})
		}
		if c.JA4H != "" {
			st.Variables().TX().Set("sekisho_ja4h", []string{c.JA4H})
		}
	}
	tx.ProcessURI(uri, r.Method, r.Proto)
	for k, vs := range r.Header {
		k = lowerName(k)
		for _, v := range vs {
			tx.AddRequestHeader(k, v)
		}
	}
	// net/http moves Host and Transfer-Encoding out of the header map; the
	// rules look for both.
	if r.Host != "" {
		tx.AddRequestHeader("host", r.Host)
		tx.SetServerName(r.Host)
	}
	for _, te := range r.TransferEncoding {
		tx.AddRequestHeader("transfer-encoding", te)
	}
	var it *types.Interruption
	if err := t.inSlot(func() { it = tx.ProcessRequestHeaders() }); err != nil {
		return t.failed(http.StatusServiceUnavailable, err)
	}
	if it != nil {
		return t.interrupted(it)
	}

	limit := t.e.cfg.RequestBodyLimit
	partial := t.e.cfg.RequestBodyLimitAction == LimitProcessPartial
	hasBody := r.Body != nil && r.Body != http.NoBody && r.ContentLength != 0
	// A body that is not multipart is all arguments: it is held to the
	// inspection budget (multipart text fields are, by rule 10001).
	budget := limit
	if !partial && !isMultipart(r.Header.Get("Content-Type")) {
		budget = t.e.cfg.RequestBodyNoFilesLimit
	}
	tooLarge := func() *Verdict {
		return t.interrupted(&types.Interruption{Status: http.StatusRequestEntityTooLarge, Action: "deny"})
	}
	if hasBody && r.ContentLength > budget && !partial {
		return tooLarge() // before one byte of the body is read
	}
	truncated := false
	if hasBody && tx.IsRequestBodyAccessible() {
		rd := &errReader{r: r.Body}
		var src io.Reader = rd
		if !partial {
			// One byte past the budget is enough to know: read no further.
			src = io.LimitReader(rd, budget+1)
		}
		readStart := time.Now()
		it, n, err := tx.ReadRequestBodyFrom(src)
		t.ReadTime = time.Since(readStart)
		if rd.err != nil {
			return t.failed(http.StatusBadRequest, fmt.Errorf("%w: %v", ErrClientBody, rd.err))
		}
		if err != nil {
			return t.failed(http.StatusInternalServerError, fmt.Errorf("buffering request body: %w", err))
		}
		if it != nil {
			return t.interrupted(it)
		}
		if int64(n) > budget && !partial { // a chunked body, whose length came only now
			return tooLarge()
		}
		inspected, err := tx.RequestBodyReader()
		if err != nil {
			return t.failed(http.StatusInternalServerError, fmt.Errorf("reading buffered body: %w", err))
		}
		if int64(n) > limit {
			// Process partial: the part past the limit follows uninspected.
			truncated = true
			t.body = io.MultiReader(inspected, r.Body)
		} else {
			t.body, t.bodyLen = inspected, int64(n)
		}
	} else if hasBody {
		t.body, t.bodyLen = r.Body, r.ContentLength
	} else {
		t.body, t.bodyLen = http.NoBody, 0
	}
	v := t.bodyPhase("request", tx.ProcessRequestBody)
	if !v.Blocked() {
		v.Truncated = truncated
	}
	return v
}

// Body returns the request body to forward, the bytes that were inspected,
// and its length (-1 if unknown). After a refusal there is none: a reader
// that fails, so that a caller that forwards anyway sends no body rather
// than crashing the process on a nil reader.
func (t *Tx) Body() (io.Reader, int64) {
	if t.body == nil {
		return failedBody{t.err}, -1
	}
	return t.body, t.bodyLen
}

// failedBody is the body of a request whose inspection did not pass.
type failedBody struct{ err error }

func (b failedBody) Read([]byte) (int, error) {
	return 0, fmt.Errorf("waf: no body to forward: the request was not passed (%v)", b.err)
}

// InspectResponseHeaders runs the response headers phase. A nil verdict means pass.
func (t *Tx) InspectResponseHeaders(status int, proto string, h http.Header) *Verdict {
	if t.tx == nil || !*t.e.cfg.InspectResponse {
		return nil
	}
	for k, vs := range h {
		for _, v := range vs {
			t.tx.AddResponseHeader(k, v)
		}
	}
	if it := t.tx.ProcessResponseHeaders(status, proto); it != nil {
		return t.interrupted(it)
	}
	return nil
}

// InspectResponseBody runs the response body phase (CRS's RESPONSE-95x
// data leakage rules and the outbound anomaly evaluation) on body, the
// decoded first part of the response (nil when it was not held: a binary
// type or a stream, whose headers the phase still weighs). Call it after
// InspectResponseHeaders passed. A nil verdict means the policy does not
// inspect response bodies.
func (t *Tx) InspectResponseBody(body []byte) *Verdict {
	if !t.InspectsResponseBody() {
		return nil
	}
	start := time.Now()
	defer func() {
		t.InspectTime += time.Since(start)
		forgetValues(t.tx)
	}()
	if len(body) > 0 {
		if _, _, err := t.tx.WriteResponseBody(body); err != nil {
			return t.failed(http.StatusBadGateway, fmt.Errorf("buffering response body: %w", err))
		}
	}
	return t.bodyPhase("response", t.tx.ProcessResponseBody)
}

// bodyPhase runs a body phase (Coraza's ProcessRequestBody or
// ProcessResponseBody) in an inspection slot: its interruption, a refusal
// when it fails, else a pass (detect when rules matched in detect mode).
func (t *Tx) bodyPhase(what string, phase func() (*types.Interruption, error)) *Verdict {
	var it *types.Interruption
	var err error
	if slotErr := t.inSlot(func() { it, err = phase() }); slotErr != nil {
		return t.failed(http.StatusServiceUnavailable, slotErr)
	}
	if err != nil {
		return t.failed(http.StatusInternalServerError, fmt.Errorf("processing %s body: %w", what, err))
	}
	if it != nil {
		return t.interrupted(it)
	}
	v := t.verdict(ActionPass)
	if t.e.cfg.Mode == ModeDetect && len(v.Rules) > 0 {
		v.Action = ActionDetect
	}
	return v
}

// Close runs the logging phase and frees the transaction's buffers.
func (t *Tx) Close() error {
	if t.tx == nil {
		return nil
	}
	t.tx.ProcessLogging()
	untrackTx(t.tx)
	return t.tx.Close()
}

func (t *Tx) interrupted(it *types.Interruption) *Verdict {
	v := t.verdict(ActionBlock)
	v.RuleID = it.RuleID
	switch it.Action {
	case "redirect":
		v.Status, v.RedirectURL = http.StatusFound, it.Data
	default: // deny, drop
		v.Status = it.Status
		if v.Status == 0 {
			v.Status = http.StatusForbidden
		}
	}
	return v
}

// failed is a verdict for an inspection that could not complete: the
// request is refused, never passed uninspected.
func (t *Tx) failed(status int, err error) *Verdict {
	v := t.verdict(ActionError)
	v.Status = status
	t.err = err
	return v
}

// Err returns why the inspection failed, for verdicts with ActionError.
func (t *Tx) Err() error { return t.err }

func (t *Tx) verdict(a Action) *Verdict {
	v := &Verdict{Action: a}
	for _, mr := range t.tx.MatchedRules() {
		// Rules marked nolog (CRS's bookkeeping) are not part of the verdict.
		if l, ok := mr.(interface{ Log() bool }); ok && !l.Log() || mr.Message() == "" {
			continue
		}
		v.Rules = append(v.Rules, mr.Rule().ID())
		v.Matches = append(v.Matches, matchOf(mr, t.path))
	}
	if m := memoOf(t.tx); m != nil && len(m.unconfirmed) > 0 {
		v.Unconfirmed = slices.Clone(m.unconfirmed)
	}
	if st, ok := t.tx.(interface {
		Variables() plugintypes.TransactionVariables
	}); ok {
		if s := st.Variables().TX().Get("blocking_inbound_anomaly_score"); len(s) > 0 {
			v.Score, _ = strconv.Atoi(s[0])
		}
	}
	return v
}

func isMultipart(contentType string) bool {
	mt, _, _ := strings.Cut(contentType, ";")
	return strings.EqualFold(strings.TrimSpace(mt), "multipart/form-data")
}

// errReader remembers a read error from the client, which Coraza's copy
// would otherwise not tell apart from its own.
type errReader struct {
	r   io.Reader
	err error
}

func (e *errReader) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err != nil && err != io.EOF {
		e.err = err
	}
	return n, err
}

// Rule evaluation is pure CPU work. inspectSlots lets as many requests run
// rules at once as there are CPUs and queues the rest, as an event loop
// would: interleaving many transactions on few cores only spreads their
// working sets (CRS's transformation caches reach megabytes for a JSON body)
// over the CPU caches, and holds every one of them in memory at once. A slot
// is held for one phase at a time, never while a client sends its body.
var inspectSlots = make(chan struct{}, runtime.GOMAXPROCS(0))

// inSlot runs phase in an inspection slot, unless the client leaves first.
func (t *Tx) inSlot(phase func()) error {
	select {
	case inspectSlots <- struct{}{}:
	default:
		select {
		case inspectSlots <- struct{}{}:
		case <-t.ctx.Done():
			return fmt.Errorf("%w while waiting for inspection: %v", ErrClientGone, context.Cause(t.ctx))
		}
	}
	defer func() { <-inspectSlots }()
	phase()
	return nil
}

// Header names reach the rules in lower case, as HTTP/2 and HTTP/3 send
// them: Coraza compares names without regard to case by lowering each
// name of a collection for every rule that reads it, which for a mixed-case
// name is a new string each time (about 5 % of a browser GET's CPU).
// lowerName lowers a name once per request, and the common ones not at all.
func lowerName(k string) string {
	if l, ok := lowerNames[k]; ok {
		return l
	}
	return strings.ToLower(k)
}

// lowerNames are the lower-case forms of the header names browsers and API
// clients send, as net/http canonicalizes them.
var lowerNames = func() map[string]string {
	m := map[string]string{}
	for _, k := range []string{"Accept", "Accept-Encoding", "Accept-Language", "Authorization", "Cache-Control",
		"Connection", "Content-Length", "Content-Type", "Cookie", "Dnt", "Forwarded", "If-Modified-Since",
		"If-None-Match", "Origin", "Pragma", "Priority", "Range", "Referer", "Sec-Ch-Ua", "Sec-Ch-Ua-Mobile",
		"Sec-Ch-Ua-Platform", "Sec-Fetch-Dest", "Sec-Fetch-Mode", "Sec-Fetch-Site", "Sec-Fetch-User", "Te",
		"Upgrade-Insecure-Requests", "User-Agent", "Via", "X-Forwarded-For", "X-Forwarded-Host",
		"X-Forwarded-Proto", "X-Real-Ip", "X-Request-Id", "X-Requested-With", "Traceparent", "Tracestate"} {
		m[k] = strings.ToLower(k)
	}
	return m
}()
