package crowdsec

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sekisho/sekisho/e2e/debpkg"
)

// capiOptOut is where Debian's crowdsec package looks, on install, for the
// admin's wish not to register to CrowdSec's Central API (README.Debian):
// a file with a comment in it. Without it the package's postinst registers,
// which fails offline and leaves the package half-configured, and every
// later apt-get with it.
const capiOptOut = "/etc/crowdsec/online_api_credentials.yaml"

// needCrowdSec returns the paths of crowdsec and cscli, installing Debian's
// crowdsec package when they are missing, opted out of the Central API so
// that it installs without the internet.
func needCrowdSec(t *testing.T) (crowdsec, cscli string) {
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
func optOutOfCAPI(t *testing.T) {
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
func repairPackage(t *testing.T) {
	out, err := exec.Command("dpkg-query", "-W", "-f=${Status}", "crowdsec").Output()
	if err != nil || strings.HasSuffix(string(out), " installed") {
		return
	}
	optOutOfCAPI(t)
	if out, err := exec.Command("dpkg", "--configure", "crowdsec").CombinedOutput(); err != nil {
		t.Logf("crowdsec package is %q and `dpkg --configure crowdsec` failed (%v): %s", out, err, tail(out))
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

// lapiConfig is a CrowdSec configuration for a Local API alone, on
// 127.0.0.1:port, everything in dir: no agent (crowdsec runs with -no-cs),
// no Central API (no online_client), no Prometheus listener.
const lapiConfig = `common:
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

// lapiProfiles is the LAPI's profiles.yaml, which it needs to start; the
// decisions of this test are made by cscli and do not go through it.
const lapiProfiles = `name: default_ip_remediation
filters:
  - Alert.Remediation == true && Alert.GetScope() == "Ip"
decisions:
  - type: ban
    duration: 4h
on_success: break
`

// writeLAPIConfig writes the configuration into dir and returns its path.
func writeLAPIConfig(t *testing.T, dir string, port int) string {
	t.Helper()
	for _, d := range []string{"etc", "data", "hub"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	cfg := strings.NewReplacer("{{dir}}", dir, "{{port}}", fmt.Sprint(port)).Replace(lapiConfig)
	files := map[string]string{
		"config.yaml":         cfg,
		"etc/profiles.yaml":   lapiProfiles,
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
func freePort(t *testing.T) int {
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

// startLAPI runs crowdsec as a Local API alone until the test ends, and
// waits for it to answer; its output is shown if the test fails.
func startLAPI(t *testing.T, crowdsec, cfg string, port int) {
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
	health := fmt.Sprintf("http://127.0.0.1:%d/health", port)
	deadline := time.Now().Add(15 * time.Second)
	for {
		select {
		case err := <-exited:
			exited <- err
			t.Fatalf("crowdsec exited at start (%v)", err)
		default:
		}
		if resp, err := http.Get(health); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("crowdsec's LAPI did not answer %s within 15s", health)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestRealLAPI follows decisions made with cscli on a real CrowdSec Local
// API, Debian's crowdsec package, run with a configuration of the test's own.
func TestRealLAPI(t *testing.T) {
	crowdsec, cscliPath := needCrowdSec(t)
	began := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dir := t.TempDir()
	port := freePort(t)
	cfg := writeLAPIConfig(t, dir, port)
	cscli := func(args ...string) string {
		t.Helper()
		cmd := exec.CommandContext(ctx, cscliPath, append([]string{"-c", cfg}, args...)...)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			t.Fatalf("cscli %s: %v\n%s%s", args[0], err, stdout.Bytes(), tail(stderr.Bytes()))
		}
		return stdout.String()
	}

	key := strings.TrimSpace(cscli("bouncers", "add", "sekisho-test", "-o", "raw"))
	// cscli makes decisions through the LAPI, logged in as a machine.
	pw := make([]byte, 16)
	rand.Read(pw)
	cscli("machines", "add", "sekisho-test-machine", "--password", hex.EncodeToString(pw), "--force",
		"-f", filepath.Join(dir, "etc", "local_api_credentials.yaml"))
	startLAPI(t, crowdsec, cfg, port)
	started := time.Now()

	var errs errorLog
	b := &Bouncer{URL: fmt.Sprintf("http://127.0.0.1:%d/", port), APIKey: key, Interval: 200 * time.Millisecond, OnError: errs.add}
	if err := b.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer b.Close()

	cscli("decisions", "add", "--ip", "198.51.100.7", "--duration", "1h", "--type", "ban")
	cscli("decisions", "add", "--range", "203.0.113.0/24", "--duration", "1h", "--type", "captcha")
	made := time.Now()
	waitFor(t, "the LAPI's decisions", func() bool {
		return typeOf(b, "198.51.100.7") == "ban" && typeOf(b, "203.0.113.77") == "captcha"
	})
	seen := time.Since(made)
	d, _ := b.Decision(netip.MustParseAddr("198.51.100.7"))
	if d.Origin != "cscli" || time.Until(d.Until) < 55*time.Minute || time.Until(d.Until) > time.Hour {
		t.Errorf("198.51.100.7: %+v, want a decision of cscli's for about an hour", d)
	}
	expect(t, b, map[string]string{"::ffff:198.51.100.7": "ban", "203.0.114.1": "", "198.51.100.8": ""})

	cscli("decisions", "delete", "--ip", "198.51.100.7")
	deleted := time.Now()
	waitFor(t, "the deleted decision to go", func() bool { return typeOf(b, "198.51.100.7") == "" })
	gone := time.Since(deleted)
	expect(t, b, map[string]string{"203.0.113.77": "captcha"})

	// A bouncer starting now gets the full list, which the deletion left out
	// (the LAPI lists it among the deleted, which a full list ignores).
	fresh := &Bouncer{URL: b.URL, APIKey: key, Interval: time.Hour, OnError: errs.add}
	if err := fresh.Start(ctx); err != nil {
		t.Fatal(err)
	}
	fresh.Close()
	expect(t, fresh, map[string]string{"198.51.100.7": "", "203.0.113.77": "captcha"})
	if e := errs.all(); len(e) > 0 {
		t.Errorf("errors reported: %v", e)
	}
	t.Logf("crowdsec LAPI up %v after the test began; decisions seen %v after cscli made them, deletion %v after; %v in all",
		started.Sub(began).Round(time.Millisecond), seen.Round(time.Millisecond), gone.Round(time.Millisecond), time.Since(began).Round(time.Millisecond))
}
