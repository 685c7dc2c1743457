package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"

	"github.com/sekisho/sekisho/e2e/freeport"
)

// process is a program of the topology (a sekisho replica, the L4 front, a
// demo application), its output kept for the test and for failures.
type process struct {
	name string
	cmd  *exec.Cmd
	out  syncBuffer
}

func startProcess(t *testing.T, name string, args ...string) *process {
	t.Helper()
	p := &process{name: name, cmd: exec.Command(binary, args...)}
	p.cmd.Stdout, p.cmd.Stderr = &p.out, &p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		p.cmd.Process.Kill()
		p.cmd.Wait()
		if t.Failed() {
			t.Logf("--- %s output:\n%s", name, p.out.String())
		}
	})
	return p
}

// waitReady polls url until it answers 200 (at most 20 s).
func waitReady(t *testing.T, p *process, url string) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %s not ready within 20s (%v)\n%s", p.name, url, err, p.out.String())
		}
	}
}

// composeProject loads the repository's docker-compose.yml, as the
// deploy package's tests do, for what the topology needs from it.
func composeProject(t *testing.T) *types.Project {
	t.Helper()
	root, _ := filepath.Abs("..")
	opts, err := cli.NewProjectOptions([]string{filepath.Join(root, "docker-compose.yml")},
		cli.WithWorkingDirectory(root), cli.WithName("sekisho"), cli.WithEnv(nil))
	if err != nil {
		t.Fatal(err)
	}
	p, err := opts.LoadProject(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// localConfig writes the config a compose service mounts at target, with
// the compose world mapped onto loopback: container paths (mounts,
// secrets) become the host files compose would mount, and service
// host:port pairs the test's addresses.
func localConfig(t *testing.T, p *types.Project, svc, target string, addrs map[string]string) string {
	t.Helper()
	s, err := p.GetService(svc)
	if err != nil {
		t.Fatal(err)
	}
	var src string
	pairs := []string{}
	for _, v := range s.Volumes {
		if v.Target == target {
			src = v.Source
		}
		pairs = append(pairs, v.Target, v.Source)
	}
	for _, sc := range s.Secrets {
		pairs = append(pairs, "/run/secrets/"+sc.Source, p.Secrets[sc.Source].File)
	}
	for from, to := range addrs {
		pairs = append(pairs, from, to)
	}
	if src == "" {
		t.Fatalf("%s mounts nothing at %s", svc, target)
	}
	data, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), svc+".yaml")
	os.WriteFile(out, []byte(strings.NewReplacer(pairs...).Replace(string(data))), 0o600)
	return out
}

// The docker-compose.yml topology, run as processes on loopback from the
// same config files the stack mounts: the L4 front (sekisho, mode: tcp,
// PROXY v2) -> two replicas sharing a real Redis -> two demo applications.
func TestComposeTopology_TwoReplicasOneRedis(t *testing.T) {
	p := composeProject(t)
	lbIP := p.Services["lb"].Networks["sekisho"].Ipv4Address

	// Redis with the password of the secret file the stack mounts.
	pw, err := os.ReadFile(p.Secrets["redis_password"].File)
	if err != nil {
		t.Fatal(err)
	}
	redis := StartRedis(t, "--requirepass", strings.TrimSpace(string(pw)))

	// The applications, with the arguments compose gives them.
	addrs := map[string]string{"redis:6379": redis.Addr, lbIP: "127.0.0.1"}
	for _, app := range []string{"app1", "app2"} {
		addr := freeport.Addr(t)
		args := append([]string(nil), p.Services[app].Command...)
		for i := range args {
			if args[i] == ":8080" {
				args[i] = addr
			}
		}
		proc := startProcess(t, app, args...)
		waitReady(t, proc, "http://"+addr+"/healthz")
		addrs[app+":8080"] = addr
	}

	// The replicas: one config file, each with its own ports.
	type replica struct {
		proc             *process
		http, tls, admin string
	}
	reps := map[string]*replica{}
	for _, name := range []string{"gw-az-a", "gw-az-b"} {
		r := &replica{http: freeport.Addr(t), tls: freeport.Addr(t), admin: freeport.Addr(t)}
		cfg := localConfig(t, p, name, "/etc/sekisho/sekisho.yaml", map[string]string{
			"0.0.0.0:80": r.http, "0.0.0.0:443": r.tls, "0.0.0.0:9901": r.admin,
			"app1:8080": addrs["app1:8080"], "app2:8080": addrs["app2:8080"], "redis:6379": redis.Addr, lbIP: "127.0.0.1",
		})
		r.proc = startProcess(t, name, "run", "-c", cfg)
		reps[name] = r
	}
	for name, r := range reps {
		waitReady(t, r.proc, "http://"+r.admin+"/readyz")
		// The container's HEALTHCHECK command, against the real gateway.
		if out, err := exec.Command(binary, "health", "-url", "http://"+r.admin+"/readyz").CombinedOutput(); err != nil {
			t.Fatalf("%s: sekisho health: %v %s", name, err, out)
		}
	}

	lbHTTP, lbTLS, lbAdmin := freeport.Addr(t), freeport.Addr(t), freeport.Addr(t)
	lbCfg := localConfig(t, p, "lb", "/etc/sekisho/lb.yaml", map[string]string{
		"0.0.0.0:80": lbHTTP, "0.0.0.0:443": lbTLS, "127.0.0.1:9901": lbAdmin,
		"gw-az-a:80": reps["gw-az-a"].http, "gw-az-a:443": reps["gw-az-a"].tls,
		"gw-az-b:80": reps["gw-az-b"].http, "gw-az-b:443": reps["gw-az-b"].tls,
	})
	lb := startProcess(t, "lb", "run", "-c", lbCfg)
	waitReady(t, lb, "http://"+lbAdmin+"/readyz")

	// New connections each time, so the front spreads them over the replicas.
	client := H1Client()
	client.Transport.(*http.Transport).DisableKeepAlives = true
	get := func(url, cookie string) (int, string, string) {
		t.Helper()
		req, _ := http.NewRequest("GET", url, nil)
		req.Host = "localhost"
		if cookie != "" {
			req.Header.Set("Cookie", "JSESSIONID="+cookie)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("GET %s: %v", url, err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		var echo struct{ Server string }
		json.Unmarshal(body, &echo)
		set := ""
		for _, c := range resp.Cookies() {
			if c.Name == "JSESSIONID" {
				set = c.Value
			}
		}
		return resp.StatusCode, echo.Server, set
	}

	// Plain and TLS through the front: both replicas, both apps.
	apps := map[string]int{}
	for i := range 8 {
		for _, base := range []string{"http://" + lbHTTP, "https://" + lbTLS} {
			code, server, _ := get(fmt.Sprintf("%s/products?page=%d", base, i), "")
			if code != 200 {
				t.Fatalf("GET %s/products: %d", base, code)
			}
			apps[server]++
		}
	}
	if apps["app1"] == 0 || apps["app2"] == 0 {
		t.Fatalf("requests reached %v: want both applications", apps)
	}
	for name, r := range reps {
		if n := strings.Count(r.proc.out.String(), `"path":"/products"`); n < 4 {
			t.Fatalf("%s logged %d of the 16 requests: the front does not spread over both replicas", name, n)
		}
		// The client's address came in the front's PROXY header.
		if !strings.Contains(r.proc.out.String(), `"client_ip":"127.0.0.1"`) {
			t.Fatalf("%s: no client_ip in its access log", name)
		}
	}

	// Attacks are blocked, by CRS and by the mounted rules folder.
	if code, _, _ := get("https://"+lbTLS+"/search?q=%27%20OR%201%3D1--", ""); code != 403 {
		t.Fatalf("SQL injection: %d, want 403", code)
	}
	if code, _, _ := get("http://"+lbHTTP+"/internal/report", ""); code != 403 {
		t.Fatalf("/internal/ (deploy/compose/rules/custom/10-site.conf): %d, want 403", code)
	}

	// A session learnt through one replica keeps its application through
	// both: the stick table is in Redis.
	code, first, session := get("http://"+lbHTTP+"/cart", "")
	if code != 200 || session == "" {
		t.Fatalf("first request: %d, session %q", code, session)
	}
	for i := range 6 {
		code, server, _ := get(fmt.Sprintf("http://%s/cart?step=%d", lbHTTP, i), session)
		if code != 200 || server != first {
			t.Fatalf("request %d of session %s: %d from %s, want %s", i, session, code, server, first)
		}
	}
	for name, r := range reps {
		if !strings.Contains(r.proc.out.String(), `"path":"/cart"`) {
			t.Fatalf("%s served none of the session's requests: stickiness was not tested across replicas", name)
		}
	}
	if keys, err := redis.CLI("--scan", "--pattern", "sekisho:*"); err != nil || strings.TrimSpace(keys) == "" {
		t.Fatalf("no sekisho keys in Redis (%v): %s", err, keys)
	}
}
