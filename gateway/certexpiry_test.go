package gateway

import (
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/sekisho/sekisho/certs"
	"github.com/sekisho/sekisho/waf/alert/alerttest"
)

// Served certificates show their expiry in the metrics, and one within
// alerts.cert_expiring of it raises a cert.expiring webhook at start.
func TestCertExpiry_MetricAndAlert(t *testing.T) {
	receiver := alerttest.NewReceiver(t, nil)
	// A file certificate that expires in 10 days (made 355 days ago) and a
	// self-signed one that has a year left.
	cert, err := certs.SelfSigned([]string{"soon.test"}, time.Now().Add(-355*24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	key, _ := x509.MarshalPKCS8PrivateKey(cert.PrivateKey)
	certFile, keyFile := filepath.Join(dir, "soon.crt"), filepath.Join(dir, "soon.key")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Certificate[0]}), 0o600)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: key}), 0o600)
	_, backend := namedServer(t, "127.0.0.1:0", "a")
	g, _, _, _ := runGatewayWith(t, fmt.Sprintf(`
frontends:
  - name: web
    bind: [{address: "127.0.0.1:0", tls: true}]
    tls: {certificates: [{cert_file: %q, key_file: %q}], self_signed: [later.test]}
    default_backend: app
backends:
  - name: app
    servers: [{address: %q}]
alerts:
  endpoints: [{name: ops, url: %q, events: [cert.expiring]}]
admin: {address: "127.0.0.1:0"}
`, certFile, keyFile, backend, receiver.URL), Options{Log: zerolog.Nop()})

	receiver.Wait(t, 1, 10*time.Second, "cert.expiring alert")
	time.Sleep(200 * time.Millisecond) // a second one (for later.test) would be a bug
	if got := receiver.Events(); len(got) != 1 || got[0]["type"] != "cert.expiring" || got[0]["host"] != "soon.test" || !strings.HasPrefix(got[0]["message"].(string), "expires in 24") {
		t.Errorf("alerts %v, want one cert.expiring for soon.test, 240h left", got)
	}

	resp, err := http.Get("http://" + g.AdminAddr().String() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, c := range []struct {
		labels   string
		notAfter time.Time
	}{
		{`frontend="web",name="soon.test",source="file"`, cert.Leaf.NotAfter},
		{`file="",frontend="web",name="later.test",source="self_signed"`, time.Now().Add(365 * 24 * time.Hour)},
	} {
		var line string
		for _, l := range strings.Split(string(body), "\n") {
			if strings.HasPrefix(l, "sekisho_certificate_expiry_timestamp_seconds{") && strings.Contains(l, c.labels) {
				line = l
			}
		}
		var v float64
		if line == "" {
			t.Errorf("no expiry metric with %s in:\n%s", c.labels, body)
			continue
		}
		fmt.Sscanf(line[strings.LastIndexByte(line, ' ')+1:], "%g", &v)
		if d := v - float64(c.notAfter.Unix()); d < -60 || d > 60 {
			t.Errorf("%s: %v, want %d", line, v, c.notAfter.Unix())
		}
	}
}
