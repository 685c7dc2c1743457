package gateway

import (
	"bytes"
	"compress/gzip"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/andybalholm/brotli"
	"github.com/klauspost/compress/zstd"
	"github.com/quic-go/quic-go/http3"
	"github.com/rs/zerolog"
)

// Pages that leak, as applications do when they fail, each with the CRS
// rule that must name the leak.
var leakPages = []struct {
	path, leak string
	rule       int
}{
	{"/sql", "You have an error in your SQL syntax; check the manual that corresponds to your MySQL server version for the right syntax to use near ''' at line 1", 951230},
	{"/java", "java.lang.NullPointerException\n\tat com.example.Orders.list(Orders.java:42)\n\tat java.lang.Thread.run(Thread.java:748)", 952110},
	{"/php", "<b>Fatal error</b>:  Uncaught Error: Call to undefined function foo() in /var/www/html/index.php:3", 953100},
	{"/dir", "<title>Index of /backup</title></head><body><h1>Index of /backup</h1><a href=\"?C=N;O=D\">Name</a> <a href=\"db.sql\">db.sql</a>", 950130},
}

func leakPage(leak string) string {
	return "<!doctype html><html><head><title>Orders</title></head><body><h1>Orders</h1><p>" +
		strings.Repeat("Your SQL course starts Monday; Java and PHP follow. ", 20) + "</p>" + leak + "</body></html>\n"
}

func gzipped(s string) []byte { return encoded("gzip", s) }

// encoded is s in a Content-Encoding, by the encoders servers use.
func encoded(enc, s string) []byte {
	var b bytes.Buffer
	var w io.WriteCloser
	switch enc {
	case "gzip":
		w = gzip.NewWriter(&b)
	case "br":
		w = brotli.NewWriter(&b)
	case "zstd":
		w, _ = zstd.NewWriter(&b)
	}
	io.WriteString(w, s)
	w.Close()
	return b.Bytes()
}

// encodings are the compressed kinds leakBackend serves.
var encodings = []string{"gzip", "br", "zstd"}

// leakBackend serves /leak/<page>, /clean/<page> and /<encoding>/<page>
// (gzip, br, zstd), each with a header of its own that a refused response
// must not leak either.
func leakBackend(t *testing.T) string {
	t.Helper()
	mux := http.NewServeMux()
	for _, p := range leakPages {
		for _, kind := range append([]string{"leak", "clean"}, encodings...) {
			page := leakPage(p.leak)
			if kind == "clean" {
				page = leakPage("<p>All fine.</p>")
			}
			h := func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "text/html; charset=utf-8")
				w.Header().Set("X-Backend-Secret", "s3cr3t")
				if slices.Contains(encodings, kind) {
					w.Header().Set("Content-Encoding", kind)
					w.Write(encoded(kind, page))
					return
				}
				io.WriteString(w, page)
			}
			mux.HandleFunc("/"+kind+p.path, h)
			mux.HandleFunc("/detect/"+kind+p.path, h)
		}
	}
	return serve(t, mux)
}

func serve(t *testing.T, h http.Handler) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

// respGateway runs a gateway in front of backend: the default policy
// (block), and /detect/ with a detect policy.
func respGateway(t *testing.T, backend string, access io.Writer) string {
	t.Helper()
	g, _, _, _ := runGatewayWith(t, fmt.Sprintf(`
frontends:
  - name: web
    bind: [{address: "127.0.0.1:0"}]
    default_backend: app
    routes:
      - {path_prefix: /detect/, backend: app, waf_policy: detect}
waf:
  policies:
    - {name: default}
    - {name: detect, mode: detect}
backends:
  - name: app
    servers: [{address: "%s"}]
`, backend), Options{Log: zerolog.Nop(), Access: access})
	return "http://" + g.Addrs("web")[0].String()
}

// rawClient gets responses as they come: no decompression, no pooling.
var rawClient = &http.Client{Transport: &http.Transport{DisableCompression: true, DisableKeepAlives: true}, Timeout: 30 * time.Second}

func getRaw(t *testing.T, url string) (*http.Response, []byte) {
	t.Helper()
	resp, err := rawClient.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

// accessEntry finds the access log line of the request with id.
func accessEntry(t *testing.T, log, id string) map[string]any {
	t.Helper()
	for _, line := range strings.Split(log, "\n") {
		var e map[string]any
		if json.Unmarshal([]byte(line), &e) == nil && e["request_id"] == id {
			return e
		}
	}
	t.Fatalf("no access log line for %s in:\n%s", id, log)
	return nil
}

func loggedRules(e map[string]any) []int {
	var ids []int
	rs, _ := e["waf_rules"].([]any)
	for _, r := range rs {
		ids = append(ids, int(r.(float64)))
	}
	return ids
}

// A response that leaks an SQL error, a stack trace, a PHP error or a
// directory listing is refused: the client gets the gateway's 403 page,
// none of the server's headers and no byte of its body, and the access
// log names the rule; gzip, brotli or zstd do not hide the leak. The same pages without
// the leak pass byte for byte; in detect mode the leak passes and is logged.
func TestResponseBody_LeaksRefused(t *testing.T) {
	var access syncBuffer
	front := respGateway(t, leakBackend(t), &access)
	for _, p := range leakPages {
		for _, kind := range append([]string{"leak"}, encodings...) {
			t.Run(kind+p.path, func(t *testing.T) {
				resp, body := getRaw(t, front+"/"+kind+p.path)
				if resp.StatusCode != http.StatusForbidden {
					t.Fatalf("status %d, want 403; body %q", resp.StatusCode, body)
				}
				if resp.Header.Get("X-Backend-Secret") != "" || resp.Header.Get("Content-Encoding") != "" {
					t.Errorf("the server's headers leaked: %v", resp.Header)
				}
				if bytes.Contains(body, []byte("Orders")) || !bytes.Contains(body, []byte("blocked by the security policy")) {
					t.Errorf("body is not the gateway's page: %q", body)
				}
				e := accessEntry(t, access.String(), resp.Header.Get("X-Request-Id"))
				if !slices.Contains(loggedRules(e), p.rule) || e["waf_action"] != "block" || e["termination_state"] != "WD--" {
					t.Errorf("access log %v: want block, WD--, rule %d", e, p.rule)
				}
			})
		}
		t.Run("clean"+p.path, func(t *testing.T) {
			resp, body := getRaw(t, front+"/clean"+p.path)
			if want := leakPage("<p>All fine.</p>"); resp.StatusCode != 200 || string(body) != want || resp.Header.Get("X-Backend-Secret") != "s3cr3t" {
				t.Errorf("status %d, body %q, want 200 and %q with the server's headers", resp.StatusCode, body, want)
			}
		})
		t.Run("detect"+p.path, func(t *testing.T) {
			resp, body := getRaw(t, front+"/detect/leak"+p.path)
			if resp.StatusCode != 200 || string(body) != leakPage(p.leak) {
				t.Fatalf("status %d, body %q, want 200 and the page", resp.StatusCode, body)
			}
			e := accessEntry(t, access.String(), resp.Header.Get("X-Request-Id"))
			if !slices.Contains(loggedRules(e), p.rule) || e["waf_action"] != "detect" {
				t.Errorf("access log %v: want detect naming %d", e, p.rule)
			}
		})
	}
}

// firstByteBeforeRelease gets url and reads the first byte of the body
// while the backend waits on release, which only this closes, after that
// byte came: a gateway that held the body would never deliver it. It then
// reads the rest and returns the body's length.
func firstByteBeforeRelease(t *testing.T, url string, release chan struct{}) int64 {
	t.Helper()
	first := make(chan error, 1)
	var resp *http.Response
	go func() {
		var err error
		resp, err = rawClient.Get(url)
		if err == nil {
			_, err = io.ReadFull(resp.Body, make([]byte, 1))
		}
		first <- err
	}()
	select {
	case err := <-first:
		close(release)
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		close(release)
		t.Fatal("no byte of the body came before the backend finished: the gateway held it")
	}
	defer resp.Body.Close()
	n, err := io.Copy(io.Discard, resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return n + 1
}

// Binary downloads, Server-Sent Events, responses that ask not to be
// buffered and the part of a text body past the limit are not held: the
// first byte reaches the client while the backend still waits to send the
// rest. The backend's first write is flushed, then it waits for the test.
func TestResponseBody_StreamsNotHeld(t *testing.T) {
	const big = 100 << 20
	release := map[string]chan struct{}{}
	for _, p := range []string{"/binary", "/sse", "/unbuffered", "/longtext"} {
		release[p] = make(chan struct{})
	}
	mux := http.NewServeMux()
	stream := func(path, contentType string, first []byte, rest func(w io.Writer)) {
		mux.HandleFunc(path, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", contentType)
			if path == "/binary" {
				w.Header().Set("Content-Length", fmt.Sprint(big))
			}
			if path == "/unbuffered" {
				w.Header().Set("X-Accel-Buffering", "no")
			}
			w.Write(first)
			w.(http.Flusher).Flush()
			select {
			case <-release[path]:
			case <-r.Context().Done():
				return
			}
			rest(w)
		})
	}
	chunk := bytes.Repeat([]byte{0xa5}, 32<<10)
	stream("/binary", "application/octet-stream", chunk, func(w io.Writer) {
		for range big/len(chunk) - 1 {
			w.Write(chunk)
		}
	})
	stream("/sse", "text/event-stream", []byte("data: one\n\n"), func(w io.Writer) { io.WriteString(w, "data: two\n\n") })
	stream("/unbuffered", "text/plain", []byte("tick\n"), func(w io.Writer) { io.WriteString(w, "tock\n") })
	// Past the 64 KiB limit in its first write: held to the limit, inspected, released.
	longText := []byte(strings.Repeat("All fine here.\n", 100<<10/15))
	stream("/longtext", "text/plain", longText, func(w io.Writer) { io.WriteString(w, "The end.\n") })
	front := respGateway(t, serve(t, mux), io.Discard)

	if n := firstByteBeforeRelease(t, front+"/binary", release["/binary"]); n != big {
		t.Errorf("binary: %d bytes, want %d", n, big)
	}
	if n := firstByteBeforeRelease(t, front+"/sse", release["/sse"]); n != int64(len("data: one\n\ndata: two\n\n")) {
		t.Errorf("sse: %d bytes", n)
	}
	if n := firstByteBeforeRelease(t, front+"/unbuffered", release["/unbuffered"]); n != 10 {
		t.Errorf("unbuffered: %d bytes", n)
	}
	if n := firstByteBeforeRelease(t, front+"/longtext", release["/longtext"]); n != int64(len(longText))+9 {
		t.Errorf("long text: %d bytes", n)
	}
}

// A gzip body that inflates a thousandfold is decoded to the limit only:
// the request allocates a few MiB, not the 64 MiB the body inflates to, and
// the client gets the compressed bytes unchanged.
func TestResponseBody_GzipBombBounded(t *testing.T) {
	bomb := gzipped(string(make([]byte, 64<<20)))
	mux := http.NewServeMux()
	mux.HandleFunc("/bomb", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		w.Header().Set("Content-Encoding", "gzip")
		w.Write(bomb)
	})
	front := respGateway(t, serve(t, mux), io.Discard)
	getRaw(t, front+"/bomb") // warm: the first request builds pools
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	resp, body := getRaw(t, front+"/bomb")
	runtime.ReadMemStats(&after)
	if resp.StatusCode != 200 || !bytes.Equal(body, bomb) {
		t.Fatalf("status %d, %d bytes; want 200 and the %d sent", resp.StatusCode, len(body), len(bomb))
	}
	alloc := after.TotalAlloc - before.TotalAlloc
	t.Logf("a %d-byte gzip body of 64 MiB: %.1f MiB allocated by the request", len(bomb), float64(alloc)/(1<<20))
	if alloc > 16<<20 {
		t.Errorf("the request allocated %.1f MiB: the decoding is not bounded", float64(alloc)/(1<<20))
	}
}

// A refused response is audited as a refused request is: its request,
// the action and the response rule that matched.
func TestResponseBody_Audited(t *testing.T) {
	path := t.TempDir() + "/audit.log"
	g, cancel, done, _ := runGatewayWith(t, fmt.Sprintf(`
frontends:
  - name: web
    bind: [{address: "127.0.0.1:0"}]
    default_backend: app
backends:
  - name: app
    servers: [{address: "%s"}]
audit_log: {path: "%s"}
`, leakBackend(t), path), Options{Log: zerolog.Nop()})
	resp, _ := getRaw(t, "http://"+g.Addrs("web")[0].String()+"/leak/sql")
	cancel()
	<-done // the audit log is flushed and closed
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var rec map[string]any
	json.Unmarshal(bytes.TrimSpace(data), &rec)
	if resp.StatusCode != 403 || rec["uri"] != "/leak/sql" || rec["action"] != "block" || !strings.Contains(fmt.Sprint(rec["matches"]), "951230") {
		t.Fatalf("status %d, audit log %s", resp.StatusCode, data)
	}
}

// Over HTTP/2 and HTTP/3 a leaking response is refused as over HTTP/1.1,
// and a clean one passes whole.
func TestResponseBody_LeaksRefusedOverH2AndH3(t *testing.T) {
	g, _, _, _ := runGateway(t, h3GatewayYAML("http://"+leakBackend(t)), zerolog.Nop())
	site := "https://" + g.Addrs("web")[0].String()
	insecure := &tls.Config{InsecureSkipVerify: true}
	h3 := &http3.Transport{TLSClientConfig: insecure, DisableCompression: true}
	defer h3.Close()
	for _, c := range []struct {
		proto string
		rt    http.RoundTripper
	}{
		{"HTTP/2.0", &http.Transport{TLSClientConfig: insecure, ForceAttemptHTTP2: true, DisableCompression: true}},
		{"HTTP/3.0", h3},
	} {
		client := &http.Client{Transport: c.rt, Timeout: 10 * time.Second}
		for _, path := range []string{"/leak/sql", "/gzip/php", "/clean/java"} {
			resp, err := client.Get(site + path)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.Proto != c.proto {
				t.Fatalf("%s: got %s", c.proto, resp.Proto)
			}
			if strings.HasPrefix(path, "/clean/") {
				if resp.StatusCode != 200 || string(body) != leakPage("<p>All fine.</p>") {
					t.Errorf("%s %s: status %d, %d bytes; want 200 and the page", c.proto, path, resp.StatusCode, len(body))
				}
				continue
			}
			if resp.StatusCode != 403 || resp.Header.Get("X-Backend-Secret") != "" || bytes.Contains(body, []byte("Orders")) {
				t.Errorf("%s %s: status %d, headers %v, body %q; want the gateway's 403 alone", c.proto, path, resp.StatusCode, resp.Header, body)
			}
		}
	}
}
