package gateway

import (
	"cmp"
	"context"
	"fmt"
	"net/http"
	"reflect"
	"strconv"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.26.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/sekisho/sekisho/gateway/config"
)

// tracing is the gateway's part in W3C trace context (config.Tracing):
// one span per request, child of the client's when it sent one, with
// child spans for the WAF and the upstream exchange; the servers get a
// traceparent naming the request's span.
type tracing struct {
	cfg      config.Tracing
	provider *sdktrace.TracerProvider
	tracer   trace.Tracer
	prop     propagation.TextMapPropagator
}

// newTracing builds the config's tracing, or takes over prev's when its
// config did not change (its exporter's queue goes on).
func (g *Gateway) newTracing(c *config.Config, prev *Gateway) (*tracing, error) {
	tc := c.Tracing
	if tc == nil {
		return nil, nil
	}
	if prev != nil && prev.tracing != nil && reflect.DeepEqual(*tc, prev.tracing.cfg) {
		return prev.tracing, nil
	}
	ratio := 1.0
	if tc.SampleRatio != nil {
		ratio = *tc.SampleRatio
	}
	opts := []sdktrace.TracerProviderOption{
		sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(ratio))),
		sdktrace.WithResource(resource.NewSchemaless(semconv.ServiceName(cmp.Or(tc.ServiceName, "sekisho")))),
	}
	if tc.OTLPEndpoint != "" {
		exp, err := otlptracehttp.New(context.Background(), otlptracehttp.WithEndpointURL(tc.OTLPEndpoint))
		if err != nil {
			return nil, fmt.Errorf("tracing.otlp_endpoint: %w", err)
		}
		opts = append(opts, sdktrace.WithBatcher(exp, sdktrace.WithBatchTimeout(cmp.Or(tc.ExportInterval, 5*time.Second))))
	}
	p := sdktrace.NewTracerProvider(opts...)
	return &tracing{cfg: *tc, provider: p, tracer: p.Tracer("github.com/sekisho/sekisho/gateway"),
		prop: propagation.TraceContext{}}, nil
}

// close sends what is queued (a few seconds at most) and stops.
func (t *tracing) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	t.provider.Shutdown(ctx)
}

// traceStart opens the request's span: the child of the client's trace,
// or a new trace when the config starts them. The servers get its
// traceparent, the log its trace id.
func (h *handler) traceStart(q *request) {
	t := h.tracing
	if t == nil {
		return
	}
	r := q.r
	ctx := t.prop.Extract(r.Context(), propagation.HeaderCarrier(r.Header))
	if !trace.SpanContextFromContext(ctx).IsValid() && !t.cfg.Start {
		return
	}
	ctx, span := t.tracer.Start(ctx, "HTTP "+r.Method, trace.WithSpanKind(trace.SpanKindServer),
		trace.WithAttributes(attribute.String("http.request.method", r.Method), attribute.String("url.path", r.URL.Path),
			attribute.String("server.address", r.Host), attribute.String("client.address", q.e.ClientIP),
			attribute.String("sekisho.frontend", h.name), attribute.String("sekisho.request_id", q.e.RequestID)))
	q.r, q.span = r.WithContext(ctx), span
	delete(r.Header, "Traceparent")
	delete(r.Header, "Tracestate")
	t.prop.Inject(ctx, propagation.HeaderCarrier(r.Header))
	q.e.TraceID = span.SpanContext().TraceID().String()
}

// traceChild opens a child span of the request's; the returned func ends it.
func (h *handler) traceChild(q *request, name string) func() {
	_, end := h.child(q, name)
	return end
}

// traceUpstream opens the upstream exchange's span, and makes it the
// parent the server's traceparent names.
func (h *handler) traceUpstream(q *request) func() {
	ctx, end := h.child(q, "upstream")
	if ctx != nil {
		h.tracing.prop.Inject(ctx, propagation.HeaderCarrier(q.r.Header))
	}
	return end
}

func (h *handler) child(q *request, name string) (context.Context, func()) {
	if q.span == nil {
		return nil, func() {}
	}
	ctx, span := h.tracing.tracer.Start(q.r.Context(), name)
	return ctx, func() { span.End() }
}

// traceEnd closes the request's span with what the log line says.
func (q *request) traceEnd() {
	if q.span == nil {
		return
	}
	e := q.e
	q.span.SetAttributes(attribute.Int("http.response.status_code", e.Status), attribute.String("sekisho.backend", e.Backend),
		attribute.String("sekisho.server", e.Server), attribute.String("sekisho.waf_action", e.WAFAction))
	if e.Status >= 500 {
		q.span.SetStatus(codes.Error, strconv.Itoa(e.Status)+" "+http.StatusText(e.Status))
	}
	q.span.End()
}
