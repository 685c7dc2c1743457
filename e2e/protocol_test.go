package e2e

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha1"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// protoConn is a raw client connection to the gateway: exact bytes out,
// responses parsed with http.ReadResponse.
type protoConn struct {
	t  testing.TB
	c  net.Conn
	br *bufio.Reader
}

// protoDial opens a raw connection to a bind of g; with useTLS it speaks
// TLS and offers only http/1.1 by ALPN.
func protoDial(t testing.TB, g *Gateway, bind string, useTLS bool) *protoConn {
	t.Helper()
	addr := g.Addrs[bind]
	if addr == "" {
		t.Fatalf("no bind %q in %v", bind, g.Addrs)
	}
	d := &net.Dialer{Timeout: 5 * time.Second}
	var c net.Conn
	var err error
	if useTLS {
		var tc *tls.Conn
		tc, err = tls.DialWithDialer(d, "tcp", addr, &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"http/1.1"}})
		if err == nil {
			if p := tc.ConnectionState().NegotiatedProtocol; p != "http/1.1" {
				tc.Close()
				t.Fatalf("ALPN negotiated %q, want http/1.1", p)
			}
		}
		c = tc
	} else {
		c, err = d.Dial("tcp", addr)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &protoConn{t: t, c: c, br: bufio.NewReader(c)}
}

func (p *protoConn) write(raw string) {
	p.t.Helper()
	p.c.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(p.c, raw); err != nil {
		p.t.Fatalf("writing request: %v", err)
	}
}

// read reads one response and its whole body.
func (p *protoConn) read(method string) (*http.Response, []byte) {
	p.t.Helper()
	p.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(p.br, &http.Request{Method: method})
	if err != nil {
		p.t.Fatalf("reading response: %v", err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		p.t.Fatalf("reading response body: %v", err)
	}
	return resp, body
}

func (p *protoConn) roundTrip(raw string) (*http.Response, []byte) {
	p.t.Helper()
	p.write(raw)
	method, _, _ := strings.Cut(raw, " ")
	return p.read(method)
}

// expectClosed asserts that the gateway closed the connection: the next
// read yields no byte and EOF (not a timeout, not another response).
func (p *protoConn) expectClosed() {
	p.t.Helper()
	p.c.SetReadDeadline(time.Now().Add(5 * time.Second))
	rest, err := io.ReadAll(p.br)
	if len(rest) > 0 {
		p.t.Fatalf("after the response the gateway sent %d more bytes: %q", len(rest), rest)
	}
	if err != nil {
		p.t.Fatalf("connection not closed by the gateway after the response: %v", err)
	}
}

// protoPoll calls cond every 10ms until it is true or d passes.
func protoPoll(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// protoFramingEcho answers with the framing the backend received.
func protoFramingEcho(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("X-Backend-TE", strings.Join(r.TransferEncoding, ","))
	w.Header().Set("X-Backend-CL", strconv.FormatInt(r.ContentLength, 10))
	fmt.Fprint(w, "ok a")
}

// TestProtocol_AmbiguousFraming: Content-Length together with
// Transfer-Encoding is refused, never forwarded, and ends the connection;
// plain chunked requests pass with their exact body.
func TestProtocol_AmbiguousFraming(t *testing.T) {
	a := StartBackend(t, "a")
	a.Handle = protoFramingEcho
	g := StartGateway(t, webConfig, ConfigData{"A": a.Addr})

	for _, tr := range []struct {
		name string
		bind string
		tls  bool
	}{{"plain", "web#0", false}, {"tls", "web#1", true}} {
		for _, tc := range []struct {
			name, head string
		}{
			{"CL then TE", "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n"},
			{"TE then CL", "Transfer-Encoding: chunked\r\nContent-Length: 5\r\n"},
			{"odd case", "content-LENGTH: 5\r\ntransfer-encoding: chunked\r\n"},
		} {
			for _, pipelined := range []bool{false, true} {
				name := tr.name + "/" + tc.name
				if pipelined {
					name += "/pipelined"
				}
				t.Run(name, func(t *testing.T) {
					before := len(a.Requests())
					p := protoDial(t, g, tr.bind, tr.tls)
					req := "POST /framing HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/x-www-form-urlencoded\r\n" +
						tc.head + "\r\n5\r\na=b&c\r\n0\r\n\r\n"
					if pipelined {
						req += "GET /second HTTP/1.1\r\nHost: localhost\r\n\r\n"
					}
					resp, body := p.roundTrip(req)
					if resp.StatusCode != 400 {
						t.Fatalf("got %d %q, want 400", resp.StatusCode, body)
					}
					if !resp.Close {
						t.Errorf("400 response does not announce Connection: close (header %q)", resp.Header.Get("Connection"))
					}
					p.expectClosed()
					if n := len(a.Requests()) - before; n != 0 {
						t.Fatalf("backend received %d requests, want 0: %+v", n, a.Requests()[before:])
					}
					id := resp.Header.Get("X-Request-Id")
					if id == "" {
						t.Fatal("400 response has no X-Request-Id: not the gateway's answer")
					}
					if l := g.LogFor(id); l["status"] != float64(400) || !strings.Contains(fmt.Sprint(l["error"]), "Transfer-Encoding") {
						t.Fatalf("access log line: %v", l)
					}
				})
			}
		}
		t.Run(tr.name+"/chunked alone passes", func(t *testing.T) {
			before := len(a.Requests())
			p := protoDial(t, g, tr.bind, tr.tls)
			resp, body := p.roundTrip("POST /chunked?x=1 HTTP/1.1\r\nHost: localhost\r\n" +
				"Content-Type: application/x-www-form-urlencoded\r\nTransfer-Encoding: chunked\r\n\r\n" +
				"5\r\na=hel\r\n8\r\nlo&b=wor\r\n2\r\nld\r\n0\r\n\r\n")
			if resp.StatusCode != 200 || string(body) != "ok a" {
				t.Fatalf("got %d %q, want 200 \"ok a\"", resp.StatusCode, body)
			}
			got := a.Requests()[before:]
			if len(got) != 1 {
				t.Fatalf("backend received %d requests, want 1", len(got))
			}
			if string(got[0].Body) != "a=hello&b=world" || got[0].RequestURI != "/chunked?x=1" {
				t.Fatalf("backend got %s %q, want /chunked?x=1 \"a=hello&b=world\"", got[0].RequestURI, got[0].Body)
			}
			// The body was re-framed with a length (Transfer-Encoding is hop-by-hop).
			if te, cl := resp.Header.Get("X-Backend-TE"), resp.Header.Get("X-Backend-CL"); te != "" || cl != "15" {
				t.Fatalf("backend saw Transfer-Encoding %q Content-Length %q, want none and 15", te, cl)
			}
			// The connection stays usable.
			resp, body = p.roundTrip("GET /again HTTP/1.1\r\nHost: localhost\r\n\r\n")
			if resp.StatusCode != 200 {
				t.Fatalf("second request on the connection: %d %q", resp.StatusCode, body)
			}
		})
	}
}

// TestProtocol_LengthFramedBodyIsNotHeaders: a body holding what looks
// like an ambiguous header block is body, framed by its length (the WAF is
// off here: CRS would refuse such a body itself). The chunked request after
// it on the connection passes; a truly ambiguous one after that is still
// refused.
func TestProtocol_LengthFramedBodyIsNotHeaders(t *testing.T) {
	a := StartBackend(t, "a")
	a.Handle = protoFramingEcho
	g := StartGateway(t, webConfig, ConfigData{"A": a.Addr, "PolicyName": "off", "Policy": "{name: off, mode: \"off\"}"})
	for _, tr := range []struct {
		name string
		bind string
		tls  bool
	}{{"plain", "web#0", false}, {"tls", "web#1", true}} {
		t.Run(tr.name, func(t *testing.T) {
			p := protoDial(t, g, tr.bind, tr.tls)
			look := "x=1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"
			resp, body := p.roundTrip("POST /form HTTP/1.1\r\nHost: localhost\r\nContent-Type: text/plain\r\n" +
				"Content-Length: " + strconv.Itoa(len(look)) + "\r\n\r\n" + look)
			if resp.StatusCode != 200 {
				t.Fatalf("length-framed request: %d %q", resp.StatusCode, body)
			}
			resp, body = p.roundTrip("POST /chunked HTTP/1.1\r\nHost: localhost\r\nContent-Type: text/plain\r\n" +
				"Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n")
			if resp.StatusCode != 200 {
				t.Fatalf("chunked request after it: %d %q (a false alarm from the body)", resp.StatusCode, body)
			}
			resp, body = p.roundTrip("POST /framing HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5\r\n" +
				"Transfer-Encoding: chunked\r\n\r\n5\r\na=b&c\r\n0\r\n\r\n")
			if resp.StatusCode != 400 {
				t.Fatalf("ambiguous request after them: %d %q, want 400", resp.StatusCode, body)
			}
		})
	}
}

// TestProtocol_AmbiguousTargets: request targets that a backend could read
// differently from the WAF are refused with 400 and never forwarded;
// ordinary percent-encoding passes byte for byte.
func TestProtocol_AmbiguousTargets(t *testing.T) {
	a := StartBackend(t, "a")
	g := StartGateway(t, webConfig, ConfigData{"A": a.Addr})

	for _, tc := range []struct{ name, line string }{
		{"dot-dot segment", "GET /a/../b HTTP/1.1"},
		{"dot segment", "GET /a/./b HTTP/1.1"},
		{"root dot-dot", "GET /.. HTTP/1.1"},
		{"trailing dot-dot before query", "GET /a/..?q=1 HTTP/1.1"},
		{"encoded slash lower", "GET /a%2fb HTTP/1.1"},
		{"encoded slash upper", "GET /a%2Fb HTTP/1.1"},
		{"encoded dots", "GET /%2e%2e/etc/passwd HTTP/1.1"},
		{"encoded single dot segment", "GET /a/%2E/b HTTP/1.1"},
		{"encoded backslash", "GET /a%5cb HTTP/1.1"},
		{"encoded backslash upper", "GET /..%5C..%5Cwindows HTTP/1.1"},
		{"raw backslash", "GET /a\\b HTTP/1.1"},
		{"overlong utf-8 dots", "GET /%c0%ae%c0%ae/etc/passwd HTTP/1.1"},
		{"broken utf-8", "GET /caf%C3 HTTP/1.1"},
		{"encoded NUL", "GET /a%00.php HTTP/1.1"},
		{"fragment", "GET /a#frag HTTP/1.1"},
		{"asterisk OPTIONS", "OPTIONS * HTTP/1.1"},
		{"asterisk GET", "GET * HTTP/1.1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := len(a.Requests())
			p := protoDial(t, g, "web#0", false)
			resp, body := p.roundTrip(tc.line + "\r\nHost: localhost\r\n\r\n")
			if resp.StatusCode != 400 {
				t.Fatalf("%q: got %d %q, want 400", tc.line, resp.StatusCode, body)
			}
			if got := a.Requests()[before:]; len(got) != 0 {
				t.Fatalf("%q was forwarded: backend got %q", tc.line, got[0].RequestURI)
			}
			id := resp.Header.Get("X-Request-Id")
			if id == "" {
				t.Fatalf("400 without X-Request-Id: not the gateway's refusal (body %q)", body)
			}
			if l := g.LogFor(id); l["status"] != float64(400) || l["error"] == nil {
				t.Fatalf("access log line: %v", l)
			}
		})
	}

	for _, target := range []string{
		"/caf%C3%A9/a%20b",
		"/caf%c3%a9/x%2Cy;p=1?q=a%20b&r=%2F",
		"/%E6%97%A5%E6%9C%AC/..foo/.bar/a..b",
	} {
		t.Run("passes "+target, func(t *testing.T) {
			before := len(a.Requests())
			p := protoDial(t, g, "web#0", false)
			resp, body := p.roundTrip("GET " + target + " HTTP/1.1\r\nHost: localhost\r\n\r\n")
			if resp.StatusCode != 200 {
				t.Fatalf("got %d %q, want 200", resp.StatusCode, body)
			}
			got := a.Requests()[before:]
			if len(got) != 1 || got[0].RequestURI != target {
				t.Fatalf("backend got %+v, want exactly RequestURI %q", got, target)
			}
		})
	}
}

// TestProtocol_HeaderHygiene: h2c upgrades are not passed on, hop-by-hop
// headers and headers named in Connection are removed, client-claimed
// address headers are replaced by the gateway's own.
func TestProtocol_HeaderHygiene(t *testing.T) {
	a := StartBackend(t, "a")
	a.Handle = protoFramingEcho
	g := StartGateway(t, webConfig, ConfigData{"A": a.Addr})
	last := func(t *testing.T, before int) Received {
		t.Helper()
		got := a.Requests()[before:]
		if len(got) != 1 {
			t.Fatalf("backend received %d requests, want 1", len(got))
		}
		return got[0]
	}
	mustLack := func(t *testing.T, h http.Header, names ...string) {
		t.Helper()
		for _, n := range names {
			if v, ok := h[http.CanonicalHeaderKey(n)]; ok {
				t.Errorf("backend received %s: %q", n, v)
			}
		}
	}
	transports := []struct {
		name, bind, proto string
		tls               bool
	}{{"plain", "web#0", "http", false}, {"tls", "web#1", "https", true}}

	for _, tr := range transports {
		t.Run(tr.name+"/h2c upgrade not forwarded", func(t *testing.T) {
			before := len(a.Requests())
			p := protoDial(t, g, tr.bind, tr.tls)
			resp, body := p.roundTrip("GET /h2c HTTP/1.1\r\nHost: localhost\r\n" +
				"Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n")
			if resp.StatusCode != 200 || resp.Proto != "HTTP/1.1" || string(body) != "ok a" {
				t.Fatalf("got %s %d %q, want HTTP/1.1 200 \"ok a\"", resp.Proto, resp.StatusCode, body)
			}
			if resp.Header.Get("Upgrade") != "" {
				t.Fatalf("response offers Upgrade: %q", resp.Header.Get("Upgrade"))
			}
			r := last(t, before)
			mustLack(t, r.Header, "Upgrade", "HTTP2-Settings", "Connection")
			// The connection still speaks HTTP/1.1.
			resp, _ = p.roundTrip("GET /after-h2c HTTP/1.1\r\nHost: localhost\r\n\r\n")
			if resp.StatusCode != 200 || resp.Proto != "HTTP/1.1" {
				t.Fatalf("next request: %s %d", resp.Proto, resp.StatusCode)
			}
		})

		t.Run(tr.name+"/hop-by-hop removed", func(t *testing.T) {
			before := len(a.Requests())
			p := protoDial(t, g, tr.bind, tr.tls)
			resp, body := p.roundTrip("POST /hop HTTP/1.1\r\nHost: localhost\r\n" +
				"Content-Type: application/x-www-form-urlencoded\r\n" +
				"Connection: keep-alive, X-Secret-Hop\r\nX-Secret-Hop: 1\r\nKeep-Alive: timeout=5\r\n" +
				"Proxy-Connection: keep-alive\r\nTE: gzip, deflate\r\nX-End-To-End: kept\r\n" +
				"Transfer-Encoding: chunked\r\n\r\n7\r\nk=v&x=y\r\n0\r\n\r\n")
			if resp.StatusCode != 200 {
				t.Fatalf("got %d %q, want 200", resp.StatusCode, body)
			}
			r := last(t, before)
			mustLack(t, r.Header, "Connection", "Keep-Alive", "Proxy-Connection", "TE", "X-Secret-Hop", "Transfer-Encoding")
			if r.Header.Get("X-End-To-End") != "kept" {
				t.Errorf("end-to-end header lost: %v", r.Header)
			}
			if te, cl := resp.Header.Get("X-Backend-TE"), resp.Header.Get("X-Backend-CL"); te != "" || cl != "7" || r.Header.Get("Content-Length") != "7" {
				t.Errorf("backend framing: Transfer-Encoding %q Content-Length %q (header %q), want none and 7", te, cl, r.Header.Get("Content-Length"))
			}
			if string(r.Body) != "k=v&x=y" {
				t.Errorf("backend body %q", r.Body)
			}
		})

		t.Run(tr.name+"/Connection: close names a header", func(t *testing.T) {
			before := len(a.Requests())
			p := protoDial(t, g, tr.bind, tr.tls)
			resp, body := p.roundTrip("GET /hop-close HTTP/1.1\r\nHost: localhost\r\n" +
				"Connection: close, X-Secret-Hop\r\nX-Secret-Hop: 1\r\n\r\n")
			if resp.StatusCode != 200 {
				t.Fatalf("got %d %q, want 200", resp.StatusCode, body)
			}
			mustLack(t, last(t, before).Header, "Connection", "X-Secret-Hop")
			p.expectClosed()
		})

		t.Run(tr.name+"/TE trailers kept", func(t *testing.T) {
			before := len(a.Requests())
			p := protoDial(t, g, tr.bind, tr.tls)
			resp, body := p.roundTrip("GET /te HTTP/1.1\r\nHost: localhost\r\nTE: trailers\r\n\r\n")
			if resp.StatusCode != 200 {
				t.Fatalf("got %d %q, want 200", resp.StatusCode, body)
			}
			if te := last(t, before).Header.Get("Te"); te != "trailers" {
				t.Fatalf("backend TE %q, want trailers", te)
			}
		})

		t.Run(tr.name+"/client address headers replaced", func(t *testing.T) {
			before := len(a.Requests())
			p := protoDial(t, g, tr.bind, tr.tls)
			const host = "shop.example:8443"
			resp, body := p.roundTrip("GET /whoami HTTP/1.1\r\nHost: " + host + "\r\n" +
				"X-Forwarded-For: 6.6.6.6\r\nX-Forwarded-Host: evil.example\r\nX-Forwarded-Proto: gopher\r\n" +
				"Forwarded: for=6.6.6.6;proto=https;host=evil.example\r\nX-Real-IP: 6.6.6.6\r\n" +
				"True-Client-IP: 6.6.6.6\r\nX_Forwarded_For: 6.6.6.6\r\nX-Forwarded-Port: 1\r\n\r\n")
			if resp.StatusCode != 200 {
				t.Fatalf("got %d %q, want 200", resp.StatusCode, body)
			}
			r := last(t, before)
			mustLack(t, r.Header, "Forwarded", "X-Real-Ip", "True-Client-Ip")
			for k, v := range r.Header {
				if strings.Contains(k, "_") {
					t.Errorf("backend received %s: %q", k, v)
				}
				for _, s := range v {
					if strings.Contains(s, "6.6.6.6") || strings.Contains(s, "evil.example") || s == "gopher" {
						t.Errorf("client-claimed value reached the backend: %s: %q", k, s)
					}
				}
			}
			_, port, _ := net.SplitHostPort(g.Addrs[tr.bind])
			want := map[string]string{"X-Forwarded-For": "127.0.0.1", "X-Forwarded-Proto": tr.proto, "X-Forwarded-Host": host,
				"X-Forwarded-Port": port} // the gateway's own, not the client's "1"
			for k, w := range want {
				if got := r.Header.Values(k); len(got) != 1 || got[0] != w {
					t.Errorf("backend %s = %q, want [%q]", k, got, w)
				}
			}
			if r.Host != host {
				t.Errorf("backend Host %q, want %q", r.Host, host)
			}
		})
	}
}

const protoWSGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

func protoWSAccept(key string) string {
	sum := sha1.Sum([]byte(key + protoWSGUID))
	return base64.StdEncoding.EncodeToString(sum[:])
}

// TestProtocol_WebSocketPasses: a WebSocket upgrade reaches a backend that
// answers 101, and bytes flow both ways afterwards.
func TestProtocol_WebSocketPasses(t *testing.T) {
	if got := protoWSAccept("dGhlIHNhbXBsZSBub25jZQ=="); got != "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" {
		t.Fatalf("protoWSAccept is wrong (RFC 6455 §1.3 example): %s", got)
	}
	a := StartBackend(t, "a")
	a.Handle = func(w http.ResponseWriter, r *http.Request) {
		if !strings.EqualFold(r.Header.Get("Upgrade"), "websocket") ||
			!strings.Contains(strings.ToLower(r.Header.Get("Connection")), "upgrade") ||
			r.Header.Get("Sec-WebSocket-Version") != "13" || r.Header.Get("Sec-WebSocket-Key") == "" {
			http.Error(w, "not a websocket handshake", http.StatusBadRequest)
			return
		}
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(15 * time.Second))
		fmt.Fprintf(brw, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n",
			protoWSAccept(r.Header.Get("Sec-WebSocket-Key")))
		if brw.Flush() != nil {
			return
		}
		buf := make([]byte, 4096)
		for range 1000 { // echo until the peer closes or the deadline passes
			n, err := brw.Read(buf)
			if n > 0 {
				if _, werr := conn.Write(buf[:n]); werr != nil {
					return
				}
			}
			if err != nil {
				return
			}
		}
	}
	g := StartGateway(t, webConfig, ConfigData{"A": a.Addr})

	p := protoDial(t, g, "web#0", false)
	const key = "x3JJHMbDL1EzLkh9GBhXDw=="
	resp, _ := p.roundTrip("GET /chat HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: " + key + "\r\nSec-WebSocket-Version: 13\r\nOrigin: http://localhost\r\n\r\n")
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("got %d, want 101; access log: %v", resp.StatusCode, g.AccessLog())
	}
	if got := resp.Header.Get("Sec-WebSocket-Accept"); got != protoWSAccept(key) {
		t.Fatalf("Sec-WebSocket-Accept %q, want %q", got, protoWSAccept(key))
	}
	if !strings.EqualFold(resp.Header.Get("Upgrade"), "websocket") {
		t.Fatalf("Upgrade %q", resp.Header.Get("Upgrade"))
	}
	for i, msg := range []string{"\x81\x05hello", "binary \x00\x01\x02\xff payload", strings.Repeat("x", 10000)} {
		p.write(msg)
		p.c.SetReadDeadline(time.Now().Add(5 * time.Second))
		got := make([]byte, len(msg))
		if _, err := io.ReadFull(p.br, got); err != nil {
			t.Fatalf("message %d: reading echo: %v", i, err)
		}
		if string(got) != msg {
			t.Fatalf("message %d: echo %q, want %q", i, got, msg)
		}
	}
	// Once the client closes, the exchange is logged as the 101 it was.
	p.c.Close()
	id := resp.Header.Get("X-Request-Id")
	if id == "" {
		t.Fatal("101 response has no X-Request-Id")
	}
	if l := g.LogFor(id); l["status"] != float64(101) || l["path"] != "/chat" || l["error"] != nil {
		t.Fatalf("access log line for the WebSocket: %v", l)
	}
	if got := a.Requests(); len(got) != 1 || got[0].RequestURI != "/chat" {
		t.Fatalf("backend received %+v", got)
	}
}

var protoHex32 = regexp.MustCompile(`^[0-9a-f]{32}$`)

// TestProtocol_RequestID: well-formed IDs are kept end to end, malformed ones
// are replaced by a generated one; the ID is on the error pages.
func TestProtocol_RequestID(t *testing.T) {
	a := StartBackend(t, "a")
	g := StartGateway(t, webConfig, ConfigData{"A": a.Addr})
	url := g.URL("http", "web#0")

	for i, tc := range []struct {
		name, given string
		kept        bool
	}{
		{"well-formed", "abc-123.def", true},
		{"well-formed with colon and underscore", "req_42:Z", true},
		{"128 chars", strings.Repeat("b", 128), true},
		{"space", "abc def", false},
		{"200 chars", strings.Repeat("a", 200), false},
		{"script", "<script>alert(1)</script>", false},
		{"quote", `abc"def`, false},
		{"none", "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := fmt.Sprintf("/rid/%d", i)
			req, err := http.NewRequest("GET", url+path, nil)
			if err != nil {
				t.Fatal(err)
			}
			if tc.given != "" {
				req.Header.Set("X-Request-ID", tc.given)
			}
			resp, err := H1Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Fatalf("status %d", resp.StatusCode)
			}
			id := resp.Header.Get("X-Request-Id")
			if tc.kept {
				if id != tc.given {
					t.Fatalf("response X-Request-Id %q, want the client's %q", id, tc.given)
				}
			} else if !protoHex32.MatchString(id) || id == tc.given {
				t.Fatalf("response X-Request-Id %q, want a generated 32-hex ID", id)
			}
			var rec *Received
			for _, r := range a.Requests() {
				if r.RequestURI == path {
					rec = &r
				}
			}
			if rec == nil {
				t.Fatal("backend did not receive the request")
			}
			if got := rec.Header.Values("X-Request-Id"); len(got) != 1 || got[0] != id {
				t.Fatalf("backend X-Request-Id %q, want [%q]", got, id)
			}
			if l := g.LogFor(id); l["path"] != path || l["status"] != float64(200) {
				t.Fatalf("access log line for %s: %v", id, l)
			}
		})
	}

	xss := "/search?q=%3Cscript%3Ealert(1)%3C%2Fscript%3E"
	for _, tc := range []struct {
		name, accept, given string
	}{
		{"blocked html generated id", "text/html", ""},
		{"blocked html client id", "", "blocked-req-1"},
		{"blocked json", "application/json", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := len(a.Requests())
			req, err := http.NewRequest("GET", url+xss, nil)
			if err != nil {
				t.Fatal(err)
			}
			if tc.accept != "" {
				req.Header.Set("Accept", tc.accept)
			}
			if tc.given != "" {
				req.Header.Set("X-Request-ID", tc.given)
			}
			resp, err := H1Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 403 {
				t.Fatalf("status %d %q, want 403", resp.StatusCode, body)
			}
			if n := len(a.Requests()) - before; n != 0 {
				t.Fatalf("blocked request reached the backend (%d)", n)
			}
			id := resp.Header.Get("X-Request-Id")
			if tc.given != "" && id != tc.given || tc.given == "" && !protoHex32.MatchString(id) {
				t.Fatalf("X-Request-Id %q (client sent %q)", id, tc.given)
			}
			if tc.accept == "application/json" {
				var page struct {
					Status    int    `json:"status"`
					RequestID string `json:"request_id"`
				}
				if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
					t.Fatalf("Content-Type %q, want JSON", ct)
				}
				if err := json.Unmarshal(body, &page); err != nil {
					t.Fatalf("page is not JSON: %v: %q", err, body)
				}
				if page.RequestID != id || page.Status != 403 {
					t.Fatalf("JSON page %+v, want request_id %q status 403", page, id)
				}
			} else {
				if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
					t.Fatalf("Content-Type %q, want HTML", ct)
				}
				if !bytes.Contains(body, []byte(id)) {
					t.Fatalf("403 page does not show request ID %q:\n%s", id, body)
				}
			}
			if l := g.LogFor(id); l["status"] != float64(403) || l["waf_action"] == "" {
				t.Fatalf("access log line: %v", l)
			}
		})
	}
}

// protoSlowBackend answers after delay (or when the request is cancelled) with a
// body of size bytes.
func protoSlowBackend(t *testing.T, delay time.Duration, body []byte) *Backend {
	b := StartBackend(t, "slow")
	b.Handle = func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(delay):
		case <-r.Context().Done():
			return
		}
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.Write(body)
	}
	return b
}

type protoResult struct {
	status int
	body   []byte
	err    error
}

// protoStartSlow sends GET url in the background and waits until the
// backend has received it.
func protoStartSlow(t *testing.T, b *Backend, url string) <-chan protoResult {
	done := make(chan protoResult, 1)
	go func() {
		resp, err := H1Client().Get(url)
		if err != nil {
			done <- protoResult{err: err}
			return
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		done <- protoResult{resp.StatusCode, body, err}
	}()
	protoPoll(t, 10*time.Second, "the backend to receive the request", func() bool { return len(b.Requests()) == 1 })
	return done
}

// TestProtocol_GracefulShutdown: on SIGTERM the listeners close at once, the
// in-flight request completes, and the process exits 0.
func TestProtocol_GracefulShutdown(t *testing.T) {
	want := bytes.Repeat([]byte("0123456789abcdef"), 8192) // 128 KiB
	b := protoSlowBackend(t, 1500*time.Millisecond, want)
	g := StartGateway(t, webConfig, ConfigData{"A": b.Addr, "Extra": "shutdown_timeout: 10s"})
	addr := g.Addrs["web#0"]
	done := protoStartSlow(t, b, g.URL("http", "web#0")+"/slow")

	start := time.Now()
	g.Signal(syscall.SIGTERM)
	protoPoll(t, time.Second, "new connections to be refused", func() bool {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return false
		}
		if errors.Is(err, syscall.ECONNRESET) {
			// Landed in the accept backlog as the listener closed; the
			// kernel reset it unserved. Dial again: the next one is refused.
			return false
		}
		if !errors.Is(err, syscall.ECONNREFUSED) {
			t.Fatalf("dial after SIGTERM: %v, want connection refused", err)
		}
		return true
	})
	select {
	case res := <-done:
		t.Fatalf("the in-flight request ended (%v, %d) before new connections were refused", res.err, res.status)
	default: // still in flight: the backend sleeps 1.5s
	}

	var res protoResult
	select {
	case res = <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("in-flight request did not complete")
	}
	if res.err != nil || res.status != 200 || !bytes.Equal(res.body, want) {
		t.Fatalf("in-flight request: err %v status %d, %d body bytes (want 200 and %d)", res.err, res.status, len(res.body), len(want))
	}
	exited, err := g.Wait(10 * time.Second)
	if !exited {
		t.Fatalf("gateway still running 10s after SIGTERM:\n%s", g.Stderr())
	}
	if err != nil {
		t.Fatalf("gateway exit: %v\n%s", err, g.Stderr())
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Fatalf("shutdown took %v, more than shutdown_timeout", took)
	}
	if !strings.Contains(g.Stderr(), `"stopped"`) {
		t.Fatalf("no \"stopped\" log line:\n%s", g.Stderr())
	}
}

// TestProtocol_ShutdownTimeout: a request that outlives shutdown_timeout is
// cut off and the process still exits promptly.
func TestProtocol_ShutdownTimeout(t *testing.T) {
	b := protoSlowBackend(t, 5*time.Second, []byte("late"))
	g := StartGateway(t, webConfig, ConfigData{"A": b.Addr, "Extra": "shutdown_timeout: 1s"})
	done := protoStartSlow(t, b, g.URL("http", "web#0")+"/slow")

	start := time.Now()
	g.Signal(syscall.SIGTERM)
	exited, err := g.Wait(3 * time.Second)
	took := time.Since(start)
	if !exited {
		t.Fatalf("gateway still running 3s after SIGTERM with shutdown_timeout 1s:\n%s", g.Stderr())
	}
	if err != nil {
		t.Fatalf("gateway exit: %v\n%s", err, g.Stderr())
	}
	if took < 900*time.Millisecond {
		t.Fatalf("gateway exited after %v, before the 1s shutdown_timeout, with a request in flight", took)
	}
	if !strings.Contains(g.Stderr(), "shutdown deadline passed") {
		t.Fatalf("no log line about the passed deadline:\n%s", g.Stderr())
	}
	select {
	case res := <-done:
		if res.err == nil && res.status == 200 && string(res.body) == "late" {
			t.Fatal("the request outliving the timeout completed anyway")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("client still waiting 5s after the gateway exited")
	}
}

const protoRoutesConfig = `
frontends:
  - name: web
    bind:
      - address: 127.0.0.1:0
    routes:
      - {host: shop.example, backend: app}
backends:
  - name: app
    servers:
      - {name: a, address: "{{.A}}"}
log:
  access: {{.AccessLog}}
`

// TestProtocol_NoRoute: a Host no route matches, with no default_backend, is 404.
func TestProtocol_NoRoute(t *testing.T) {
	a := StartBackend(t, "a")
	g := StartGateway(t, protoRoutesConfig, ConfigData{"A": a.Addr})
	for _, tc := range []struct {
		host   string
		status int
	}{
		{"other.example", 404},
		{"shop.example.evil", 404},
		{"SHOP.example:80", 200},
		{"shop.example", 200},
	} {
		t.Run(tc.host, func(t *testing.T) {
			before := len(a.Requests())
			p := protoDial(t, g, "web", false)
			resp, body := p.roundTrip("GET /x HTTP/1.1\r\nHost: " + tc.host + "\r\n\r\n")
			if resp.StatusCode != tc.status {
				t.Fatalf("Host %s: got %d %q, want %d", tc.host, resp.StatusCode, body, tc.status)
			}
			forwarded := len(a.Requests()) - before
			if want := map[bool]int{true: 1, false: 0}[tc.status == 200]; forwarded != want {
				t.Fatalf("backend received %d requests, want %d", forwarded, want)
			}
			if tc.status == 404 {
				if l := g.LogFor(resp.Header.Get("X-Request-Id")); l["status"] != float64(404) || l["error"] != "no route" {
					t.Fatalf("access log line: %v", l)
				}
			}
		})
	}
}

// protoRunSekisho runs the binary with args (at most 30s) and returns its exit
// code and output.
func protoRunSekisho(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("sekisho %v did not exit within 30s:\n%s", args, errb.String())
	}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		code = ee.ExitCode()
	default:
		t.Fatal(err)
	}
	return code, out.String(), errb.String()
}

// TestProtocol_CLI: version output, and a bind failure is reported with the
// address and a non-zero exit.
func TestProtocol_CLI(t *testing.T) {
	t.Run("version", func(t *testing.T) {
		code, out, errs := protoRunSekisho(t, "version")
		if code != 0 || !strings.HasPrefix(out, "sekisho ") || strings.Count(out, "\n") != 1 {
			t.Fatalf("exit %d, stdout %q, stderr %q; want 0 and one line starting \"sekisho \"", code, out, errs)
		}
	})
	t.Run("port in use", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		addr := ln.Addr().String()
		a := StartBackend(t, "a")
		cfg := filepath.Join(t.TempDir(), "sekisho.yaml")
		err = os.WriteFile(cfg, []byte(fmt.Sprintf(`
frontends:
  - name: web
    bind:
      - address: %q
    default_backend: app
backends:
  - name: app
    servers:
      - {name: a, address: %q}
log:
  access: "off"
`, addr, a.Addr)), 0o600)
		if err != nil {
			t.Fatal(err)
		}
		code, _, errs := protoRunSekisho(t, "run", "-c", cfg)
		if code == 0 {
			t.Fatalf("sekisho run exited 0 with %s already in use:\n%s", addr, errs)
		}
		if !strings.Contains(errs, addr) {
			t.Fatalf("error output does not name %s:\n%s", addr, errs)
		}
		// The port is still ours: the listener keeps working.
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			t.Fatalf("our listener on %s: %v", addr, err)
		}
		c.Close()
	})
}
