package waf

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
)

// Replayed is a request read from a replay file, and where it was.
type Replayed struct {
	Request *http.Request
	Line    int // the line it starts on
	// MissingBody names the recorded header that announces a body the
	// line does not hold ("Content-Length: 512"; an audit log records no
	// bodies), or is "": the request is replayed without it, so no rule
	// sees the body and the verdict may differ from the one it got.
	MissingBody string
}

// maxReplayBody bounds one replayed request's body.
const maxReplayBody = 16 << 20

// ReadRequests reads requests to replay: a JSON-lines file, one object per
// line {"method", "uri", "headers": {name: value or [values]}, "body"}, or
// raw HTTP/1.1 requests one after the other (bodies framed by
// Content-Length). A line starting with "{" decides JSON lines; sekisho's
// audit log is such a file, without bodies (Replayed.MissingBody).
func ReadRequests(r io.Reader) ([]Replayed, error) {
	br := bufio.NewReader(r)
	first, _ := br.Peek(1)
	if len(first) == 1 && first[0] == '{' {
		return readJSONLines(br)
	}
	return readRaw(br)
}

type jsonRequest struct {
	Method  string                     `json:"method"`
	URI     string                     `json:"uri"`
	Host    string                     `json:"host"` // as an audit log records it
	Headers map[string]json.RawMessage `json:"headers"`
	Body    string                     `json:"body"`
}

func readJSONLines(br *bufio.Reader) ([]Replayed, error) {
	var out []Replayed
	sc := bufio.NewScanner(br)
	sc.Buffer(make([]byte, 64<<10), maxReplayBody)
	for n := 1; sc.Scan(); n++ {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		var j jsonRequest
		if err := json.Unmarshal(line, &j); err != nil {
			return out, fmt.Errorf("line %d: %w", n, err)
		}
		if j.Method == "" {
			j.Method = http.MethodGet
		}
		req, err := http.NewRequest(j.Method, "http://replay.invalid"+j.URI, strings.NewReader(j.Body))
		if err != nil || !strings.HasPrefix(j.URI, "/") {
			return out, fmt.Errorf("line %d: uri %q: want an origin-form target such as /path?query", n, j.URI)
		}
		req.RequestURI = j.URI
		for k, raw := range j.Headers {
			var one string
			var many []string
			switch {
			case json.Unmarshal(raw, &one) == nil:
				req.Header.Add(k, one)
			case json.Unmarshal(raw, &many) == nil:
				for _, v := range many {
					req.Header.Add(k, v)
				}
			default:
				return out, fmt.Errorf("line %d: header %q: want a string or a list of strings", n, k)
			}
		}
		if h := cmp.Or(req.Header.Get("Host"), j.Host); h != "" {
			req.Host = h
			req.Header.Del("Host")
		}
		rec := Replayed{Request: req, Line: n}
		if j.Body == "" {
			if cl, err := strconv.ParseInt(req.Header.Get("Content-Length"), 10, 64); err == nil && cl > 0 {
				rec.MissingBody = "Content-Length: " + strconv.FormatInt(cl, 10)
			} else if te := req.Header.Get("Transfer-Encoding"); te != "" {
				rec.MissingBody = "Transfer-Encoding: " + te
			}
		}
		req.ContentLength = int64(len(j.Body))
		req.Header.Set("Content-Length", strconv.Itoa(len(j.Body)))
		out = append(out, rec)
	}
	return out, sc.Err()
}

func readRaw(br *bufio.Reader) ([]Replayed, error) {
	var out []Replayed
	for {
		// Blank lines between requests are not part of either.
		for {
			b, err := br.Peek(1)
			if err != nil {
				return out, nil
			}
			if b[0] != '\r' && b[0] != '\n' {
				break
			}
			br.ReadByte()
		}
		req, err := http.ReadRequest(br)
		if err != nil {
			if errors.Is(err, io.EOF) {
				return out, nil
			}
			return out, fmt.Errorf("request %d: %w", len(out)+1, err)
		}
		body, err := io.ReadAll(io.LimitReader(req.Body, maxReplayBody+1))
		if err != nil || len(body) > maxReplayBody {
			return out, fmt.Errorf("request %d: body: unreadable or over %d bytes", len(out)+1, maxReplayBody)
		}
		req.Body = io.NopCloser(bytes.NewReader(body))
		out = append(out, Replayed{Request: req, Line: len(out) + 1})
	}
}

// Check runs one replayed request through the engine, as the gateway
// would, from a documentation address.
func (e *Engine) Check(req *http.Request) *Verdict {
	tx := e.NewTx(context.Background(), "replay")
	defer tx.Close()
	uri := req.RequestURI
	if uri == "" {
		uri = req.URL.RequestURI()
	}
	return tx.InspectRequest(req, uri, Conn{ClientIP: "192.0.2.1", ClientPort: 40000, ServerIP: "192.0.2.2", ServerPort: 443})
}
