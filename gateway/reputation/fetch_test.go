package reputation

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

const lastModified = "Mon, 02 Jan 2006 15:04:05 GMT"

// feed serves a list whose answers the test scripts by request number.
type feed struct {
	t     *testing.T
	n     atomic.Int32
	steps []http.HandlerFunc
}

func (f *feed) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	n := int(f.n.Add(1))
	if n > len(f.steps) {
		f.t.Errorf("request %d: not scripted", n)
		w.WriteHeader(http.StatusTeapot)
		return
	}
	f.steps[n-1](w, r)
}

func goodList(etag string, body string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("ETag", etag)
		w.Header().Set("Last-Modified", lastModified)
		fmt.Fprint(w, body)
	}
}

// conditional checks that a refetch carries the first body's validators.
func conditional(t *testing.T, next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("If-None-Match") != `"v1"` || r.Header.Get("If-Modified-Since") != lastModified {
			t.Errorf("refetch without the good copy's validators: %q, %q", r.Header.Get("If-None-Match"), r.Header.Get("If-Modified-Since"))
		}
		next(w, r)
	}
}

func TestURLListRefetch(t *testing.T) {
	big := strings.Repeat("192.0.2.99\n", 200) // 2200 bytes, a valid list
	f := &feed{t: t}
	f.steps = []http.HandlerFunc{
		goodList(`"v1"`, "# feed\n192.0.2.0/24\n"),
		conditional(t, func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNotModified) }),
		conditional(t, goodList(`"v2"`, "<html><body>Service Unavailable</body></html>\n")),
		conditional(t, func(w http.ResponseWriter, r *http.Request) { // declared length
			w.Header().Set("Content-Length", fmt.Sprint(len(big)))
			fmt.Fprint(w, big)
		}),
		conditional(t, func(w http.ResponseWriter, r *http.Request) { // chunked
			for range 4 {
				fmt.Fprint(w, big[:600])
				w.(http.Flusher).Flush()
			}
		}),
		conditional(t, func(w http.ResponseWriter, r *http.Request) { http.Error(w, "oops", http.StatusInternalServerError) }),
		conditional(t, func(w http.ResponseWriter, r *http.Request) { // cut short
			w.Header().Set("Content-Length", "100")
			fmt.Fprint(w, "198.51.100.0/24\n")
		}),
		conditional(t, func(w http.ResponseWriter, r *http.Request) { // too slow
			select {
			case <-r.Context().Done():
			case <-time.After(5 * time.Second):
			}
		}),
	}
	srv := httptest.NewServer(f)
	var reported errs
	l := &URLList{URL: srv.URL + "/drop.txt?key=secret", MaxBytes: 1024, Timeout: 200 * time.Millisecond, OnError: reported.add}
	if err := l.Load(); err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	good := l.Set()
	if !good.Contains(addrA) || good.Len() != 1 {
		t.Fatal("wrong first set")
	}
	wantErrs := []string{
		"", // 304
		`drop.txt?...:1: "<html><body>Service Unavailable</body></html>": not an IP address`,
		"body of 2200 bytes, more than the 1024 allowed",
		"body of more than the 1024 bytes allowed",
		"status 500 Internal Server Error",
		"reading the body: unexpected EOF",
		"context deadline exceeded",
		"connection refused",
	}
	for i, want := range wantErrs {
		if i == len(wantErrs)-1 {
			srv.Close()
		}
		l.refresh()
		if l.Set() != good {
			t.Fatalf("refetch %d replaced the set", i+2)
		}
		got := reported.get()
		if want == "" {
			if len(got) != 0 {
				t.Fatalf("304 reported %v", got)
			}
			continue
		}
		if len(got) != i {
			t.Fatalf("after refetch %d: %d errors reported, want %d: %v", i+2, len(got), i, got)
		}
		msg := got[i-1].Error()
		if !strings.Contains(msg, want) || !strings.Contains(msg, srv.URL+"/drop.txt?...") ||
			!strings.Contains(msg, "keeping the previous 1 prefixes") || strings.Contains(msg, "secret") {
			t.Fatalf("refetch %d reported %q, want it to name the URL (without its key) and say %q", i+2, msg, want)
		}
	}
	if n := int(f.n.Load()); n != len(f.steps) {
		t.Fatalf("%d requests, want %d", n, len(f.steps))
	}
}

func TestURLListNewVersion(t *testing.T) {
	f := &feed{t: t}
	f.steps = []http.HandlerFunc{
		goodList(`"v1"`, "192.0.2.0/24\n"),
		conditional(t, goodList(`"v2"`, "198.51.100.0/24\n")),
		func(w http.ResponseWriter, r *http.Request) {
			if r.Header.Get("If-None-Match") != `"v2"` {
				t.Errorf("If-None-Match %q, want the new version's", r.Header.Get("If-None-Match"))
			}
			w.WriteHeader(http.StatusNotModified)
		},
	}
	srv := httptest.NewServer(f)
	defer srv.Close()
	var reported errs
	l := &URLList{URL: srv.URL, Interval: 10 * time.Millisecond, OnError: reported.add}
	if err := l.Load(); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the new version", func() bool { return l.Set().Contains(addrB) })
	eventually(t, "the refetch after it", func() bool { return f.n.Load() >= 3 })
	l.Close()
	if l.Set().Contains(addrA) || len(reported.get()) != 0 {
		t.Fatalf("wrong set, or errors %v", reported.get())
	}
}

func TestURLListCloseCancels(t *testing.T) {
	arrived := make(chan struct{})
	f := &feed{t: t}
	f.steps = []http.HandlerFunc{
		goodList(`"v1"`, "192.0.2.0/24\n"),
		func(w http.ResponseWriter, r *http.Request) {
			close(arrived)
			<-r.Context().Done()
		},
	}
	srv := httptest.NewServer(f)
	defer srv.Close()
	var reported errs
	l := &URLList{URL: srv.URL, Interval: 10 * time.Millisecond, OnError: reported.add}
	if err := l.Load(); err != nil {
		t.Fatal(err)
	}
	<-arrived
	start := time.Now()
	l.Close()
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("Close took %v", d)
	}
	if len(reported.get()) != 0 {
		t.Fatalf("a fetch cut short by Close was reported: %v", reported.get())
	}
}

// refusing is a URL nothing listens on any more.
func refusing(t *testing.T) string {
	srv := httptest.NewServer(http.NotFoundHandler())
	srv.Close()
	return srv.URL + "/list.txt"
}

func TestURLListCache(t *testing.T) {
	cache := filepath.Join(t.TempDir(), "drop.cache")
	srv := httptest.NewServer(goodList(`"v1"`, "192.0.2.0/24\n"))
	defer srv.Close()
	l := &URLList{URL: srv.URL, CachePath: cache}
	if err := l.Load(); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(cache); err != nil || string(b) != "192.0.2.0/24\n" {
		t.Fatalf("cache holds %q, %v", b, err)
	}

	var reported errs
	offline := &URLList{URL: refusing(t), CachePath: cache, OnError: reported.add}
	if err := offline.Load(); err != nil {
		t.Fatalf("with a cache, Load failed: %v", err)
	}
	if !offline.Set().Contains(addrA) {
		t.Fatal("the cached copy was not used")
	}
	if got := reported.get(); len(got) != 1 || !strings.Contains(got[0].Error(), "using the cached copy "+cache) ||
		!strings.Contains(got[0].Error(), "connection refused") {
		t.Fatalf("reported %v", got)
	}

	noCache := &URLList{URL: offline.URL, CachePath: cache + ".missing"}
	if err := noCache.Load(); err == nil || !strings.Contains(err.Error(), "no cached copy") || !strings.Contains(err.Error(), offline.URL) {
		t.Fatalf("err = %v, want the fetch and the cache named", err)
	}
	writeFile(t, cache, "junk\n")
	junk := &URLList{URL: offline.URL, CachePath: cache}
	if err := junk.Load(); err == nil || !strings.Contains(err.Error(), cache+`:1: "junk"`) {
		t.Fatalf("err = %v, want the cache's bad line", err)
	}
}

func TestURLListLoadErrors(t *testing.T) {
	notFound := httptest.NewServer(http.NotFoundHandler())
	defer notFound.Close()
	notModified := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNotModified)
	}))
	defer notModified.Close()
	tests := []struct{ url, want string }{
		{"ftp://example.com/list", "not an http or https URL"},
		{"https:///list", "not an http or https URL"},
		{"http://u:pw@%zz", "(unparsable URL)"},
		{refusing(t), "/list.txt: dial tcp"},
		{notFound.URL + "/x?token=secret", "/x?...: status 404 Not Found"},
		{notModified.URL, "status 304 Not Modified"}, // to a request with no validators
	}
	for _, tt := range tests {
		l := &URLList{URL: tt.url}
		err := l.Load()
		if err == nil || !strings.Contains(err.Error(), tt.want) || strings.Contains(err.Error(), "secret") || strings.Contains(err.Error(), "pw") {
			t.Errorf("Load(%s) = %v, want %q", tt.url, err, tt.want)
		}
		l.Close()
	}
}

func TestURLListCacheWriteFailure(t *testing.T) {
	srv := httptest.NewServer(goodList(`"v1"`, "192.0.2.0/24\n"))
	defer srv.Close()
	var reported errs
	l := &URLList{URL: srv.URL, CachePath: filepath.Join(t.TempDir(), "no", "such", "dir"), OnError: reported.add}
	if err := l.Load(); err != nil {
		t.Fatal(err)
	}
	if got := reported.get(); len(got) != 1 || !errors.Is(got[0], os.ErrNotExist) || !l.Set().Contains(addrA) {
		t.Fatalf("a cache that cannot be written: reported %v", got)
	}
}

func TestRedact(t *testing.T) {
	for in, want := range map[string]string{
		"https://www.spamhaus.org/drop/drop.txt":           "https://www.spamhaus.org/drop/drop.txt",
		"https://user:pass@feed.example/list?key=abc#frag": "https://feed.example/list?...",
		"https://feed.example/list?":                       "https://feed.example/list?...",
	} {
		if got := redact(in); got != want {
			t.Errorf("redact(%q) = %q, want %q", in, got, want)
		}
	}
}
