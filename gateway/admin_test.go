package gateway

import (
	"bufio"
	"crypto/tls"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/quic-go/quic-go/http3"
	"github.com/rs/zerolog"
)

// scrape reads the admin listener's /metrics and sums the samples of name
// whose labels include every one of labels (`key="value"`).
func scrape(t *testing.T, url, token, name string, labels ...string) float64 {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("metrics: %d", resp.StatusCode)
	}
	sum := 0.0
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name+"{") {
			continue
		}
		match := true
		for _, l := range labels {
			match = match && strings.Contains(line, l)
		}
		if match {
			v, _ := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
			sum += v
		}
	}
	return sum
}

// The admin listener serves Prometheus metrics behind its bearer token:
// TLS handshakes by transport, version and cipher (QUIC ones included) and
// failed handshakes by reason.
func TestAdmin_MetricsCountHandshakes(t *testing.T) {
	backend, _ := app(t)
	tokenFile := filepath.Join(t.TempDir(), "token")
	os.WriteFile(tokenFile, []byte("s3cret\n"), 0o600)
	yaml := h3GatewayYAML(backend) + `admin: {address: "127.0.0.1:0", token_file: "` + tokenFile + `"}` + "\n"
	g, _, _, _ := runGateway(t, yaml, zerolog.Nop())
	site := "https://" + g.Addrs("web")[0].String() + "/"
	metricsURL := "http://" + g.AdminAddr().String() + "/metrics"

	if _, err := get(t, site, &tls.Config{MinVersion: tls.VersionTLS11, MaxVersion: tls.VersionTLS11}); err == nil {
		t.Fatal("TLS 1.1 was served")
	}
	for range 2 {
		if _, err := get(t, site, &tls.Config{MinVersion: tls.VersionTLS13}); err != nil {
			t.Fatal(err)
		}
	}
	h3 := &http3.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}
	defer h3.Close()
	resp, err := (&http.Client{Transport: h3, Timeout: 5 * time.Second}).Get(site)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()

	if resp, err := http.Get(metricsURL); err != nil || resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("metrics without the token: %v %v", resp, err)
	}
	eventually(t, "the refused handshake counted", func() bool {
		return scrape(t, metricsURL, "s3cret", "sekisho_tls_handshake_failures_total", `frontend="web"`, `reason="version"`) == 1
	})
	if n := scrape(t, metricsURL, "s3cret", "sekisho_tls_handshakes_total", `transport="tcp"`, `version="TLSv1.3"`, `cipher="TLS_`); n != 2 {
		t.Errorf("TCP TLS 1.3 handshakes: %v, want 2", n)
	}
	if n := scrape(t, metricsURL, "s3cret", "sekisho_tls_handshakes_total", `transport="quic"`, `version="TLSv1.3"`); n != 1 {
		t.Errorf("QUIC handshakes: %v, want 1", n)
	}
}
