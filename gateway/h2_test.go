package gateway

import (
	"crypto/tls"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/net/http2"
)

// HTTP/2 connections are served by net/http's own HTTP/2 server, as
// HTTP/1 ones are: sekisho_connections_open counts one while it is open
// and none after (x/net's http2.ServeConn, used before, never reported a
// new or closed connection to the server's ConnState), and the handler
// knows what the listener learnt of the connection (its TLS state).
func TestFrontend_HTTP2ConnectionsAreTheServers(t *testing.T) {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok")
	}))
	defer backend.Close()
	access := &syncBuffer{}
	g, _, _, _ := runGatewayWith(t, h3GatewayYAML(backend.URL), Options{Log: zerolog.Nop(), Access: access})
	tr := &http2.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}
	client := &http.Client{Transport: tr, Timeout: 5 * time.Second}
	for range 3 {
		resp, err := client.Get("https://" + g.Addrs("web")[0].String() + "/")
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || resp.Proto != "HTTP/2.0" {
			t.Fatalf("%d over %s", resp.StatusCode, resp.Proto)
		}
	}
	if n := g.frontend("web").open.Load(); n != 1 {
		t.Errorf("open connections %d during the HTTP/2 session, want 1", n)
	}
	tr.CloseIdleConnections()
	eventually(t, "the closed HTTP/2 connection is no longer counted", func() bool { return g.frontend("web").open.Load() == 0 })
	if l := access.String(); strings.Count(l, `"tls_version":"TLSv1.3"`) != 3 {
		t.Errorf("access log lacks the TLS state of the HTTP/2 requests:\n%s", l)
	}
}
