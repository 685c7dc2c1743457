package accesslog

import (
	"bytes"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// What a client sends is escaped as HAProxy escapes it: in captured
// headers '"', '#', '{', '|', '}', control bytes and bytes from 127 up; in
// the request line '"', '#' and the same bytes. A client cannot close a
// field, a block or the line and write its own.
func TestHTTPLog_Escapes(t *testing.T) {
	f, err := ParseFormat(HTTPLog)
	if err != nil {
		t.Fatal(err)
	}
	forged := `x"} {y} "GET /admin HTTP/1.1"` + "\n" + `10.0.0.9:1 [01/Jan/2026:00:00:00.000] web app/s1`
	e := &Entry{
		Time: time.Date(2026, 11, 21, 12, 14, 14, 0, time.UTC), ClientIP: "10.0.1.2", ClientPort: 1,
		Frontend: "web", Backend: "app", Server: "s1", Method: "GET", Protocol: "HTTP/1.1",
		URI: "/a\"b#c{d|e}\x01\x7f\xff?q=1 2", Path: "decoded", Status: 200,
		CapturedRequestHeaders: []string{forged, "tab\there"}, CapturedResponseHeaders: []string{"ok#1"},
	}
	got := f.Line(e)
	want := `10.0.1.2:1 [21/Nov/2026:12:14:14.000] web app/s1 0/0/0/-1/0 200 0 - - ---- 0/0/0/0/0 0/0 ` +
		`{x#22#7D #7By#7D #22GET /admin HTTP/1.1#22#0A10.0.0.9:1 [01/Jan/2026:00:00:00.000] web app/s1|tab#09here} {ok#231} ` +
		`"GET /a#22b#23c{d|e}#01#7F#FF?q=1 2 HTTP/1.1"`
	if got != want {
		t.Fatalf("\ngot  %s\nwant %s", got, want)
	}
	if l, _ := ParseFormat("%HM %HU %HV"); l.Line(e) != "GET /a#22b#23c{d|e}#01#7F#FF?q=1 2 HTTP/1.1" {
		t.Fatalf("%%HM %%HU %%HV: %s", l.Line(e))
	}
}

// A request that did not parse is HAProxy's <BADREQ> line.
func TestHTTPLog_BadRequest(t *testing.T) {
	f, _ := ParseFormat(HTTPLog)
	e := &Entry{Time: time.Date(2026, 11, 21, 12, 14, 14, 5e6, time.UTC), ClientIP: "10.0.1.2", ClientPort: 40000,
		Frontend: "web", BadRequest: true, Status: 400, Total: 3 * time.Millisecond, TermState: "PR--",
		ActiveConns: 1, FrontendConns: 1, CapturedRequestHeaders: nil}
	want := `10.0.1.2:40000 [21/Nov/2026:12:14:14.005] web web/<NOSRV> -1/-1/-1/-1/3 400 0 - - PR-- 1/1/0/0/0 0/0 "<BADREQ>"`
	if got := f.Line(e); got != want {
		t.Fatalf("\ngot  %s\nwant %s", got, want)
	}
}

// %Tc and %Tr are -1 when the server chosen could not be connected to.
func TestHTTPLog_FailedConnect(t *testing.T) {
	f, _ := ParseFormat("%TR/%Tw/%Tc/%Tr/%Ta %tsc")
	e := &Entry{Server: "s1", Connect: 2 * time.Millisecond, ConnectFailed: true, Total: 4 * time.Millisecond, TermState: "SC--"}
	if got := f.Line(e); got != "0/0/-1/-1/4 SC--" {
		t.Fatalf("got %s", got)
	}
}

// %sslc is OpenSSL's name of each suite Go offers, as `openssl ciphers -V`
// lists it (Debian's OpenSSL 3 leaves out RC4 and 3DES; their names come
// from OpenSSL's documentation).
func TestOpenSSLCipher(t *testing.T) {
	out, err := exec.Command("openssl", "ciphers", "-V", "ALL:COMPLEMENTOFALL:@SECLEVEL=0").Output()
	if err != nil {
		t.Fatalf("openssl (Debian's openssl package) is needed: %v", err)
	}
	byID := map[string]string{}
	for _, l := range strings.Split(string(out), "\n") {
		if fs := strings.Fields(l); len(fs) > 2 {
			byID[strings.ToUpper(fs[0])] = fs[2]
		}
	}
	checked := 0
	for _, s := range append(tls.CipherSuites(), tls.InsecureCipherSuites()...) {
		id := fmt.Sprintf("0X%02X,0X%02X", s.ID>>8, s.ID&0xff)
		want, ok := byID[id]
		if !ok {
			if _, known := opensslNames[s.ID]; !known && s.ID>>8 != 0x13 {
				t.Errorf("%s: no OpenSSL name", s.Name)
			}
			continue
		}
		if got := OpenSSLCipher(s.ID); got != want {
			t.Errorf("%s (%s): %q, OpenSSL says %q", s.Name, id, got, want)
		}
		checked++
	}
	if checked < 20 {
		t.Fatalf("only %d suites found in openssl's list", checked)
	}
}

// The JSON line's time has milliseconds, always three digits.
func TestJSON_TimeHasMilliseconds(t *testing.T) {
	var buf bytes.Buffer
	New(&buf).Write(&Entry{Time: time.Date(2026, 11, 21, 12, 14, 14, 50e6, time.UTC)})
	var m map[string]any
	if err := json.Unmarshal(buf.Bytes(), &m); err != nil {
		t.Fatal(err)
	}
	if m["time"] != "2026-11-21T12:14:14.050Z" {
		t.Fatalf("time %v", m["time"])
	}
}
