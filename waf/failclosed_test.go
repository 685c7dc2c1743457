package waf

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/sekisho/sekisho/rules"
)

// Blocked is true exactly for the verdicts that must not reach a backend:
// a block and an inspection error.
func TestVerdict_BlockedIncludesErrors(t *testing.T) {
	for a, want := range map[Action]bool{
		ActionPass: false, ActionDetect: false, ActionOff: false, ActionBlock: true, ActionError: true,
	} {
		if got := (&Verdict{Action: a}).Blocked(); got != want {
			t.Errorf("Verdict{%s}.Blocked() = %v, want %v", a, got, want)
		}
	}
}

// A request body that cannot be read from the client (bad chunking, cut
// short) is an error verdict with 400, in block, detect and process-partial
// policies alike, whose error is the client's; and nothing is left to
// forward: Body reads as an error, not as nil.
func TestInspectRequest_ClientBodyErrorFailsClosed(t *testing.T) {
	policies := []Config{{Name: "fc-block"}, {Name: "fc-detect", Mode: ModeDetect},
		{Name: "fc-partial", RequestBodyLimit: 8, RequestBodyLimitAction: LimitProcessPartial}}
	bodies := map[string]string{
		"bad chunk size":   "zz\r\nabc\r\n0\r\n\r\n",
		"chunk cut short":  "a\r\nabc",
		"no last chunk":    "3\r\nabc\r\n",
		"bad chunk ending": "3\r\nabcXY0\r\n\r\n",
	}
	for _, c := range policies {
		c.SetDefaults()
		e, err := New(c, rules.FS())
		if err != nil {
			t.Fatal(err)
		}
		for name, body := range bodies {
			t.Run(c.Name+"/"+name, func(t *testing.T) {
				// net/http's own chunked reader, as the server hands it over.
				r, err := http.ReadRequest(bufio.NewReader(strings.NewReader("POST /form HTTP/1.1\r\nHost: shop.example.com\r\n" +
					"Content-Type: application/x-www-form-urlencoded\r\nTransfer-Encoding: chunked\r\n\r\n" + body)))
				if err != nil {
					t.Fatal(err)
				}
				tx := e.NewTx(context.Background(), "fc")
				defer tx.Close()
				v := tx.InspectRequest(r, r.URL.RequestURI(), conn)
				if v.Action != ActionError || !v.Blocked() || v.Status != http.StatusBadRequest {
					t.Fatalf("verdict %s %d (blocked %v), want error 400, blocked", v.Action, v.Status, v.Blocked())
				}
				if !errors.Is(tx.Err(), ErrClientBody) {
					t.Fatalf("error %v, want the client's body error", tx.Err())
				}
				fwd, _ := tx.Body()
				if fwd == nil {
					t.Fatal("Body is nil: a caller that forwarded it would crash")
				}
				if _, err := io.ReadAll(fwd); err == nil {
					t.Fatal("Body reads without an error after a refusal")
				}
			})
		}
	}
}

// A request passed without a body (nil, as http.NewRequest makes it, or
// http.NoBody) has an empty body to forward, with the WAF off as on: only
// a refusal leaves a body that fails.
func TestInspectRequest_PassedWithoutBodyForwardsEmpty(t *testing.T) {
	for _, mode := range []Mode{ModeOff, ModeBlock} {
		c := Config{Name: "nobody-" + string(mode), Mode: mode}
		c.SetDefaults()
		e, err := New(c, rules.FS())
		if err != nil {
			t.Fatal(err)
		}
		for _, body := range []io.ReadCloser{nil, http.NoBody} {
			r, _ := http.NewRequest("GET", "http://shop.example.com/search?q=shoes", nil)
			r.Header.Set("User-Agent", "test/1.0")
			r.Header.Set("Accept", "text/html")
			r.Body = body
			tx := e.NewTx(context.Background(), "nobody")
			v := tx.InspectRequest(r, r.URL.RequestURI(), conn)
			if v.Blocked() {
				t.Fatalf("%s, body %v: verdict %s %d", mode, body, v.Action, v.Status)
			}
			rd, n := tx.Body()
			if b, err := io.ReadAll(rd); err != nil || len(b) != 0 || n > 0 {
				t.Errorf("%s, body %v: Body() read %q, %v (length %d), want empty", mode, body, b, err, n)
			}
			tx.Close()
		}
	}
}
