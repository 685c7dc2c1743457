package benign

import (
	"bytes"
	"encoding/json"
	"io"
	"mime"
	"mime/multipart"
	"net/url"
	"slices"
	"strings"
	"testing"
)

// TestCorpus checks that the corpus is large, stable and well formed: every
// body parses as the type its Content-Type names, so a request the WAF
// refuses is refused for what it says, not for being broken.
func TestCorpus(t *testing.T) {
	c := Corpus()
	if len(c) < 1000 {
		t.Fatalf("%d requests, want at least 1,000", len(c))
	}
	again := Corpus()
	for i := range c {
		if c[i].Target != again[i].Target || !bytes.Equal(c[i].Body, again[i].Body) || c[i].Header.Get("Cookie") != again[i].Header.Get("Cookie") {
			t.Fatalf("request %d differs between two builds", i)
		}
	}
	methods := map[string]bool{}
	for i, r := range c {
		methods[r.Method] = true
		req := r.HTTP()
		if req.URL.RawQuery != "" {
			if _, err := url.ParseQuery(req.URL.RawQuery); err != nil {
				t.Errorf("%d %s: query: %v", i, r.Shape, err)
			}
		}
		ct := r.Header.Get("Content-Type")
		if len(r.Body) == 0 {
			continue
		}
		mt, params, err := mime.ParseMediaType(ct)
		if err != nil {
			t.Errorf("%d %s: Content-Type %q: %v", i, r.Shape, ct, err)
			continue
		}
		switch {
		case mt == "application/json" || strings.HasSuffix(mt, "+json"):
			if !json.Valid(r.Body) {
				t.Errorf("%d %s: invalid JSON body", i, r.Shape)
			}
		case mt == "application/x-ndjson" || mt == "application/jsonl":
			for _, line := range strings.Split(strings.TrimSuffix(string(r.Body), "\n"), "\n") {
				if !json.Valid([]byte(line)) {
					t.Errorf("%d %s: invalid NDJSON line %q", i, r.Shape, line)
				}
			}
		case mt == "application/x-www-form-urlencoded":
			if _, err := url.ParseQuery(string(r.Body)); err != nil {
				t.Errorf("%d %s: form body: %v", i, r.Shape, err)
			}
		case mt == "multipart/form-data":
			mr := multipart.NewReader(bytes.NewReader(r.Body), params["boundary"])
			for {
				p, err := mr.NextPart()
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Errorf("%d %s: multipart: %v", i, r.Shape, err)
					break
				}
				io.Copy(io.Discard, p)
			}
		}
	}
	for _, m := range []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"} {
		if !methods[m] {
			t.Errorf("no %s request", m)
		}
	}
	shapes := Shapes(c)
	for _, s := range []string{"browser.page", "api.ndjson", "api.text", "graphql", "webhook.stripe", "upload", "oauth.authorize", "json.code"} {
		if !slices.Contains(shapes, s) {
			t.Errorf("no %s request", s)
		}
	}
}
