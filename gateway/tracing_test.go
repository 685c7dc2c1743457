package gateway

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/rs/zerolog"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"
)

// otlpReceiver is a local OTLP/HTTP traces endpoint that keeps the spans.
type otlpReceiver struct {
	mu    sync.Mutex
	spans []*tracepb.Span
}

func (o *otlpReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	var req coltracepb.ExportTraceServiceRequest
	if r.URL.Path != "/v1/traces" || proto.Unmarshal(body, &req) != nil {
		http.Error(w, "bad export", http.StatusBadRequest)
		return
	}
	o.mu.Lock()
	for _, rs := range req.ResourceSpans {
		for _, ss := range rs.ScopeSpans {
			o.spans = append(o.spans, ss.Spans...)
		}
	}
	o.mu.Unlock()
	w.Header().Set("Content-Type", "application/x-protobuf")
	b, _ := proto.Marshal(&coltracepb.ExportTraceServiceResponse{})
	w.Write(b)
}

// of returns the spans of trace id (hex), by name.
func (o *otlpReceiver) of(id string) map[string]*tracepb.Span {
	o.mu.Lock()
	defer o.mu.Unlock()
	out := map[string]*tracepb.Span{}
	for _, s := range o.spans {
		if hex.EncodeToString(s.TraceId) == id {
			out[s.Name] = s
		}
	}
	return out
}

// A request carrying a traceparent gets a span of the gateway's, child of
// the client's, with child spans for the WAF and the upstream exchange,
// exported over OTLP; the server's traceparent names the upstream span;
// the access log has the trace id. A request without one starts a trace
// (start: true); with sample_ratio 0 it is not exported.
func TestTracing_PropagatesAndExports(t *testing.T) {
	var mu sync.Mutex
	var seen []string
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.Header.Get("Traceparent"))
		mu.Unlock()
		io.WriteString(w, "ok")
	}))
	defer backend.Close()
	receiver := &otlpReceiver{}
	collector := httptest.NewServer(receiver)
	defer collector.Close()
	var access syncBuffer
	yaml := func(ratio string) string {
		return fmt.Sprintf(`
frontends:
  - name: web
    bind: [{address: "127.0.0.1:0"}]
    default_backend: app
backends:
  - name: app
    servers: [{address: "%s"}]
tracing: {start: true, otlp_endpoint: "%s/v1/traces", export_interval: 50ms, sample_ratio: %s}
`, strings.TrimPrefix(backend.URL, "http://"), collector.URL, ratio)
	}
	g, _, _, _ := runGatewayWith(t, yaml("1"), Options{Log: zerolog.Nop(), Access: &access})
	web := "http://" + g.Addrs("web")[0].String()
	send := func(traceparent string) {
		t.Helper()
		req, _ := http.NewRequest("GET", web+"/search?q=shoes", nil)
		req.Header.Set("User-Agent", "test/1.0")
		req.Header.Set("Accept", "text/html")
		if traceparent != "" {
			req.Header.Set("Traceparent", traceparent)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	const traceID, clientSpan = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
	send("00-" + traceID + "-" + clientSpan + "-01")
	send("")

	var spans map[string]*tracepb.Span
	eventually(t, "the spans of the client's trace", func() bool { spans = receiver.of(traceID); return len(spans) == 3 })
	server, waf, up := spans["HTTP GET"], spans["waf"], spans["upstream"]
	if server == nil || waf == nil || up == nil || hex.EncodeToString(server.ParentSpanId) != clientSpan ||
		string(waf.ParentSpanId) != string(server.SpanId) || string(up.ParentSpanId) != string(server.SpanId) ||
		server.Kind != tracepb.Span_SPAN_KIND_SERVER {
		t.Fatalf("spans %v", spans)
	}
	mu.Lock()
	got := append([]string(nil), seen...)
	mu.Unlock()
	if want := "00-" + traceID + "-" + hex.EncodeToString(up.SpanId) + "-01"; len(got) != 2 || got[0] != want {
		t.Fatalf("the server got traceparent %q, want %q (the upstream span)", got, want)
	}
	var started string
	if parts := strings.Split(got[1], "-"); len(parts) == 4 && parts[1] != traceID && parts[3] == "01" {
		started = parts[1]
	} else {
		t.Fatalf("a request without a traceparent: the server got %q, want a new sampled trace", got[1])
	}
	eventually(t, "the new trace's spans", func() bool { return len(receiver.of(started)) == 3 })
	var ids []string
	for _, line := range strings.Split(strings.TrimSpace(access.String()), "\n") {
		var e struct {
			TraceID string `json:"trace_id"`
		}
		json.Unmarshal([]byte(line), &e)
		ids = append(ids, e.TraceID)
	}
	if strings.Join(ids, ",") != traceID+","+started {
		t.Errorf("access log trace ids %v, want %s and %s", ids, traceID, started)
	}

	// Sampled out: the context still goes on, nothing is exported.
	g2, _, _, _ := runGatewayWith(t, yaml("0"), Options{Log: zerolog.Nop()})
	web = "http://" + g2.Addrs("web")[0].String()
	send("")
	mu.Lock()
	last := seen[len(seen)-1]
	mu.Unlock()
	parts := strings.Split(last, "-")
	if len(parts) != 4 || parts[3] != "00" {
		t.Fatalf("sampled out: the server got %q, want an unsampled traceparent", last)
	}
	if n := len(receiver.of(parts[1])); n != 0 {
		t.Errorf("sampled out, yet %d spans exported", n)
	}
}

// Without tracing: a client's trace headers reach the server untouched.
func TestTracing_OffPassesHeadersThrough(t *testing.T) {
	got := make(chan string, 1)
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- r.Header.Get("Traceparent") + " " + r.Header.Get("Tracestate")
	}))
	defer backend.Close()
	const tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	g, _, _, _ := runGatewayWith(t, fmt.Sprintf(`
frontends:
  - name: web
    bind: [{address: "127.0.0.1:0"}]
    default_backend: app
    default_waf_policy: "off"
waf:
  policies: [{name: "off", mode: "off"}]
backends:
  - name: app
    servers: [{address: "%s"}]
`, strings.TrimPrefix(backend.URL, "http://")), Options{Log: zerolog.Nop()})
	req, _ := http.NewRequest("GET", "http://"+g.Addrs("web")[0].String()+"/", nil)
	req.Header.Set("Traceparent", tp)
	req.Header.Set("Tracestate", "vendor=1")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if h := <-got; h != tp+" vendor=1" {
		t.Errorf("the server got %q", h)
	}
}
