// Package crowdsectest runs a real CrowdSec Local API for a test, as
// net/http/httptest runs an HTTP server: Debian's crowdsec package, installed
// when missing, started as a LAPI alone on loopback with a configuration and
// database of the test's own, and stopped when the test ends.
//
// The LAPI has no agent (crowdsec runs with -no-cs), no Central API
// (-no-capi, no online_client) and no Prometheus listener. A bouncer is
// registered for the test (LAPI.Key), and a machine, which cscli logs in as
// to make and delete decisions (LAPI.CSCLI).
package crowdsectest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sekisho/sekisho/e2e/debpkg"
)

// Bounds on the waits of this package, so that a stuck crowdsec or cscli
// fails the test rather than hanging it.
const (
	startTimeout = 15 * time.Second // for the LAPI to answer /health
	cscliTimeout = 30 * time.Second // for one run of cscli
)

// LAPI is a CrowdSec Local API run for one test.
type LAPI struct {
	URL     string        // URL is the LAPI's base, http://127.0.0.1:PORT/.
	Key     string        // Key is the API key of a bouncer registered for the test.
	Dir     string        // Dir holds the LAPI's configuration, database and credentials.
	Config  string        // Config is the path of the LAPI's config.yaml, which cscli is given.
	Startup time.Duration // Startup is how long Start took once crowdsec was installed.

	cscli string // the path of cscli
}

// Start installs crowdsec if needed, starts a LAPI on loopback for t, and stops it at t's cleanup.
func Start(t testing.TB) *LAPI {
	t.Helper()
	crowdsec, cscli := needCrowdSec(t)
	began := time.Now()
	dir := t.TempDir()
	port := freePort(t)
	l := &LAPI{
		URL:    fmt.Sprintf("http://127.0.0.1:%d/", port),
		Dir:    dir,
		Config: writeConfig(t, dir, port),
		cscli:  cscli,
	}
	// cscli registers both in the database directly, before the LAPI runs.
	l.Key = strings.TrimSpace(l.CSCLI(t, "bouncers", "add", "sekisho-test", "-o", "raw"))
	pw := make([]byte, 16)
	rand.Read(pw)
	l.CSCLI(t, "machines", "add", "sekisho-test-machine", "--password", hex.EncodeToString(pw), "--force",
		"-f", filepath.Join(dir, "etc", "local_api_credentials.yaml"))
	run(t, crowdsec, l.Config, l.URL+"health")
	l.Startup = time.Since(began)
	return l
}

// CSCLI runs cscli with the LAPI's config and the given arguments, failing t on error; returns its output.
func (l *LAPI) CSCLI(t testing.TB, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), cscliTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, l.cscli, append([]string{"-c", l.Config}, args...)...)
	cmd.WaitDelay = time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			err = fmt.Errorf("%w (killed after %v)", err, cscliTimeout)
		}
		t.Fatalf("cscli %s: %v\n%s%s", strings.Join(args, " "), err, stdout.Bytes(), tail(stderr.Bytes()))
	}
	return stdout.String()
}

// capiOptOut is where Debian's crowdsec package looks, on install, for the
// admin's wish not to register to CrowdSec's Central API (README.Debian):
// a file with a comment in it. Without it the package's postinst registers,
// which fails offline and leaves the package half-configured, and every
// later apt-get with it.
const capiOptOut = "/etc/crowdsec/online_api_credentials.yaml"

// needCrowdSec returns the paths of crowdsec and cscli, installing Debian's
// crowdsec package when they are missing, opted out of the Central API so
// that it installs without the internet; t fails with how to install it when
// that is not possible.
func needCrowdSec(t testing.TB) (crowdsec, cscli string) {
	t.Helper()
	if _, err := exec.LookPath("crowdsec"); err != nil {
		optOutOfCAPI(t)
	}
	crowdsec = debpkg.Need(t, "crowdsec", "crowdsec")
	cscli = debpkg.Need(t, "cscli", "crowdsec")
	repairPackage(t)
	return crowdsec, cscli
}

// optOutOfCAPI writes the opt-out before the package is installed, unless
// the admin has already written one (or registered).
func optOutOfCAPI(t testing.TB) {
	if fi, err := os.Stat(capiOptOut); err == nil && fi.Size() > 0 {
		return
	}
	err := os.MkdirAll(filepath.Dir(capiOptOut), 0o755)
	if err == nil {
		err = os.WriteFile(capiOptOut, []byte("# no thanks: no Central API registration (sekisho's tests install crowdsec offline)\n"), 0o600)
	}
	if err != nil {
		t.Logf("could not opt out of CrowdSec's Central API before installing crowdsec (%v): without the internet its postinst will fail; "+
			"as root, write a comment into %s, then run `apt-get install -y crowdsec`", err, capiOptOut)
	}
}

// repairPackage finishes configuring a crowdsec package left half-configured
// by an install that tried to register to the Central API offline, so that
// later installs of other packages are not blocked by it. The binaries work
// either way: this is for the machine's sake, and only logged.
func repairPackage(t testing.TB) {
	out, err := exec.Command("dpkg-query", "-W", "-f=${Status}", "crowdsec").Output()
	if err != nil || strings.HasSuffix(string(out), " installed") {
		return
	}
	optOutOfCAPI(t)
	if o, err := exec.Command("dpkg", "--configure", "crowdsec").CombinedOutput(); err != nil {
		t.Logf("crowdsec package is %q and `dpkg --configure crowdsec` failed (%v): %s", out, err, tail(o))
	}
}

// tail is the end of a program's output, where its error is.
func tail(b []byte) string {
	const n = 2000
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}

// config is a CrowdSec configuration for a Local API alone, on
// 127.0.0.1:port, everything in dir: no agent (crowdsec runs with -no-cs),
// no Central API (no online_client), no Prometheus listener.
const config = `common:
  daemonize: false
  log_media: stdout
  log_level: info
  working_dir: {{dir}}
config_paths:
  config_dir: {{dir}}/etc/
  data_dir: {{dir}}/data/
  hub_dir: {{dir}}/hub/
  index_path: {{dir}}/hub/.index.json
  simulation_path: {{dir}}/etc/simulation.yaml
cscli:
  output: human
db_config:
  type: sqlite
  db_path: {{dir}}/data/crowdsec.db
  use_wal: true
api:
  client:
    credentials_path: {{dir}}/etc/local_api_credentials.yaml
  server:
    listen_uri: 127.0.0.1:{{port}}
    profiles_path: {{dir}}/etc/profiles.yaml
    trusted_ips:
      - 127.0.0.1
prometheus:
  enabled: false
`

// profiles is the LAPI's profiles.yaml, which it needs to start; decisions
// made by cscli do not go through it.
const profiles = `name: default_ip_remediation
filters:
  - Alert.Remediation == true && Alert.GetScope() == "Ip"
decisions:
  - type: ban
    duration: 4h
on_success: break
`

// writeConfig writes the configuration into dir and returns its path.
func writeConfig(t testing.TB, dir string, port int) string {
	t.Helper()
	for _, d := range []string{"etc", "data", "hub"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	cfg := strings.NewReplacer("{{dir}}", dir, "{{port}}", fmt.Sprint(port)).Replace(config)
	files := map[string]string{
		"config.yaml":         cfg,
		"etc/profiles.yaml":   profiles,
		"etc/simulation.yaml": "simulation: false\n",
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return filepath.Join(dir, "config.yaml")
}

// freePort is a loopback port nothing listens on, just now.
func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// syncBuffer is a process's output, written and read from different goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write appends p.
func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// Bytes is a copy of what was written.
func (s *syncBuffer) Bytes() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return bytes.Clone(s.b.Bytes())
}

// run runs crowdsec as a Local API alone until the test ends, and waits for
// it to answer health; its output is shown if the test fails.
func run(t testing.TB, crowdsec, cfg, health string) {
	t.Helper()
	var out syncBuffer
	cmd := exec.Command(crowdsec, "-c", cfg, "-no-cs", "-no-capi")
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start crowdsec: %v", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
		if t.Failed() {
			t.Logf("crowdsec's output:\n%s", tail(out.Bytes()))
		}
	})
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(startTimeout)
	for {
		select {
		case err := <-exited:
			exited <- err
			t.Fatalf("crowdsec exited at start (%v)", err)
		default:
		}
		if resp, err := client.Get(health); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("crowdsec's LAPI did not answer %s within %v", health, startTimeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
