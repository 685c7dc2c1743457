package gateway

import (
	"context"
	"crypto/tls"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/quic-go/quic-go/http3"
	"github.com/rs/zerolog"
	"golang.org/x/net/http2"

	"github.com/sekisho/sekisho/gateway/config"
)

// startGateway runs a TLS gateway in front of backendURL; done is closed
// when Run returns, with Run's error in *runErr.
func startGateway(t *testing.T, backendURL string) (g *Gateway, cancel context.CancelFunc, done chan struct{}, runErr *error) {
	t.Helper()
	return runGateway(t, h3GatewayYAML(backendURL)+"shutdown_timeout: 10s\n", zerolog.Nop())
}

// h3GatewayYAML is one frontend, "web", on a free loopback port with a
// self-signed certificate and HTTP/3, in front of one server.
func h3GatewayYAML(backendURL string) string {
	return `
frontends:
  - name: web
    bind: [{address: "127.0.0.1:0", tls: true}]
    tls: {self_signed: [localhost]}
    http3: true
    default_backend: app
backends:
  - name: app
    servers: [{address: "` + strings.TrimPrefix(backendURL, "http://") + `"}]
`
}

// runGateway runs the gateway a config describes until the test ends.
func runGateway(t *testing.T, yaml string, log zerolog.Logger) (g *Gateway, cancel context.CancelFunc, done chan struct{}, runErr *error) {
	t.Helper()
	return runGatewayWith(t, yaml, Options{Log: log})
}

func runGatewayWith(t *testing.T, yaml string, o Options) (g *Gateway, cancel context.CancelFunc, done chan struct{}, runErr *error) {
	t.Helper()
	c, err := config.Parse("test.yaml", []byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	g, err = New(c, o)
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Listen(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done = make(chan struct{})
	runErr = new(error)
	go func() { *runErr = g.Run(ctx); close(done) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			t.Error("gateway did not stop")
		}
	})
	return g, cancel, done, runErr
}

// A SIGTERM lets requests in flight finish, over HTTP/2 and over HTTP/3
// (GOAWAY, then the QUIC connection drains).
func TestRun_ShutdownLetsInflightRequestsFinish(t *testing.T) {
	t.Run("HTTP/2", func(t *testing.T) {
		shutdownLetsInflightFinish(t, &http2.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}, "HTTP/2.0")
	})
	t.Run("HTTP/3", func(t *testing.T) {
		tr := &http3.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}
		defer tr.Close()
		shutdownLetsInflightFinish(t, tr, "HTTP/3.0")
	})
}

func shutdownLetsInflightFinish(t *testing.T, tr http.RoundTripper, proto string) {
	received := make(chan struct{})
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(received)
		time.Sleep(time.Second)
		io.WriteString(w, "finished")
	}))
	defer backend.Close()
	g, cancel, done, runErr := startGateway(t, backend.URL)
	url := "https://" + g.Addrs("web")[0].String() + "/slow"
	client := &http.Client{Transport: tr}

	type result struct {
		proto, body string
		err         error
	}
	res := make(chan result, 1)
	go func() {
		resp, err := client.Get(url)
		if err != nil {
			res <- result{err: err}
			return
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		res <- result{resp.Proto, string(b), err}
	}()
	select {
	case <-received:
	case <-time.After(10 * time.Second):
		t.Fatal("request never reached the backend")
	}
	cancel() // as SIGTERM does
	select {
	case r := <-res:
		if r.err != nil || r.proto != proto || r.body != "finished" {
			t.Fatalf("in-flight request: %+v", r)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("in-flight request did not finish")
	}
	select {
	case <-done:
		if *runErr != nil {
			t.Fatalf("Run: %v", *runErr)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("gateway did not stop after its last request")
	}
}
