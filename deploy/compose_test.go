package deploy

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"

	"github.com/sekisho/sekisho/gateway/config"
)

// repo is the repository's top, where docker-compose.yml lives.
var repo, _ = filepath.Abs("..")

// loadCompose loads docker-compose.yml as `docker compose config` does,
// from the repository alone: no .env, no environment, so the defaults
// must be enough for a fresh clone.
func loadCompose(t *testing.T, profiles ...string) *types.Project {
	t.Helper()
	opts, err := cli.NewProjectOptions([]string{filepath.Join(repo, "docker-compose.yml")},
		cli.WithWorkingDirectory(repo), cli.WithName("sekisho"), cli.WithEnv(nil), cli.WithProfiles(profiles))
	if err != nil {
		t.Fatal(err)
	}
	p, err := opts.LoadProject(context.Background())
	if err != nil {
		t.Fatalf("docker-compose.yml does not load (docker compose config would fail): %v", err)
	}
	return p
}

func service(t *testing.T, p *types.Project, name string) types.ServiceConfig {
	t.Helper()
	s, err := p.GetService(name)
	if err != nil {
		t.Fatalf("service %s: %v", name, err)
	}
	return s
}

func TestCompose_Services(t *testing.T) {
	p := loadCompose(t)
	want := []string{"app1", "app2", "gw-az-a", "gw-az-b", "lb", "redis"}
	got := p.ServiceNames()
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Fatalf("services without a profile: %v, want %v", got, want)
	}
	withACME := loadCompose(t, "acme").ServiceNames()
	if !slices.Contains(withACME, "pebble") {
		t.Fatalf("--profile acme does not add pebble: %v", withACME)
	}
	if img := service(t, loadCompose(t, "acme"), "pebble").Image; !strings.HasPrefix(img, "ghcr.io/letsencrypt/pebble:") {
		t.Fatalf("pebble image %q", img)
	}
	if img := service(t, p, "redis").Image; !strings.HasPrefix(img, "redis:") {
		t.Fatalf("redis image %q is not the official one", img)
	}
	for _, name := range []string{"lb", "gw-az-a", "gw-az-b", "app1", "app2"} {
		s := service(t, p, name)
		if s.Build == nil || s.Build.Dockerfile != "deploy/Dockerfile" || s.Build.Context != repo {
			t.Errorf("%s: build %+v, want deploy/Dockerfile with the repository as context", name, s.Build)
		}
		if !s.ReadOnly || !slices.Equal(s.CapDrop, []string{"ALL"}) {
			t.Errorf("%s: read_only %v, cap_drop %v: want a read-only root and every capability dropped", name, s.ReadOnly, s.CapDrop)
		}
		for _, c := range s.CapAdd {
			if c != "NET_BIND_SERVICE" {
				t.Errorf("%s: cap_add %s: only NET_BIND_SERVICE is needed", name, c)
			}
		}
		if s.User != "" {
			t.Errorf("%s: user %q overrides the image's non-root user", name, s.User)
		}
	}
}

// The public ports go to the L4 front (TCP) and one replica (UDP); the
// admin ports are on the host's loopback only.
func TestCompose_Ports(t *testing.T) {
	p := loadCompose(t, "acme")
	type pub struct{ svc, hostIP, published, proto string }
	var got []pub
	for _, s := range p.Services {
		for _, port := range s.Ports {
			got = append(got, pub{s.Name, port.HostIP, port.Published, port.Protocol})
			if port.Target == 9901 && port.HostIP != "127.0.0.1" {
				t.Errorf("%s publishes the admin port on %q: bind it to 127.0.0.1", s.Name, port.HostIP)
			}
			if port.Target != 9901 && port.HostIP == "127.0.0.1" {
				t.Errorf("%s: traffic port %d on loopback only", s.Name, port.Target)
			}
		}
	}
	for _, w := range []pub{{"lb", "", "80", "tcp"}, {"lb", "", "443", "tcp"}, {"gw-az-a", "", "443", "udp"},
		{"gw-az-a", "127.0.0.1", "9901", "tcp"}, {"gw-az-b", "127.0.0.1", "9902", "tcp"}} {
		if !slices.Contains(got, w) {
			t.Errorf("missing published port %+v; have %+v", w, got)
		}
	}
	if len(got) != 5 {
		t.Errorf("published ports %+v: want exactly the five above", got)
	}
}

func TestCompose_HealthchecksAndOrder(t *testing.T) {
	p := loadCompose(t)
	for _, s := range p.Services {
		hc := s.HealthCheck
		if hc == nil || hc.Disable || len(hc.Test) < 2 {
			t.Errorf("%s: no healthcheck", s.Name)
			continue
		}
		cmd := strings.Join(hc.Test, " ")
		switch s.Name {
		case "redis":
			if !strings.Contains(cmd, "redis-cli ping") {
				t.Errorf("redis healthcheck %q", cmd)
			}
		case "app1", "app2":
			if !strings.Contains(cmd, "sekisho health -url http://127.0.0.1:8080/") {
				t.Errorf("%s healthcheck %q", s.Name, cmd)
			}
		default:
			if !strings.Contains(cmd, "sekisho health -url http://127.0.0.1:9901/readyz") {
				t.Errorf("%s healthcheck %q: want the admin listener's /readyz", s.Name, cmd)
			}
		}
	}
	needs := map[string][]string{"gw-az-a": {"redis", "app1", "app2"}, "gw-az-b": {"redis", "app1", "app2"}, "lb": {"gw-az-a", "gw-az-b"}}
	for svc, deps := range needs {
		s := service(t, p, svc)
		for _, d := range deps {
			if dep, ok := s.DependsOn[d]; !ok || dep.Condition != types.ServiceConditionHealthy {
				t.Errorf("%s must wait for %s to be healthy (depends_on condition: service_healthy), has %+v", svc, d, s.DependsOn[d])
			}
		}
	}
}

func mount(s types.ServiceConfig, target string) *types.ServiceVolumeConfig {
	for i, v := range s.Volumes {
		if v.Target == target {
			return &s.Volumes[i]
		}
	}
	return nil
}

// The replicas mount their config and the rules folder read-only from the
// repository, the files exist, the configs are valid sekisho configs, and
// they agree with the compose file: the PROXY header is trusted from the
// lb's address, and the lb sends to the replicas' binds.
func TestCompose_MountsAndConfigs(t *testing.T) {
	p := loadCompose(t)
	lbIP := service(t, p, "lb").Networks["sekisho"].Ipv4Address
	if lbIP == "" {
		t.Fatal("lb has no fixed address on the sekisho network: the replicas could not name whom to trust")
	}
	for _, name := range []string{"gw-az-a", "gw-az-b"} {
		s := service(t, p, name)
		for target, src := range map[string]string{
			"/etc/sekisho/sekisho.yaml": "deploy/compose/sekisho.yaml",
			"/etc/sekisho/rules":        "deploy/compose/rules",
		} {
			m := mount(s, target)
			if m == nil || !m.ReadOnly || m.Source != filepath.Join(repo, src) {
				t.Fatalf("%s: mount of %s is %+v, want %s read-only", name, target, m, src)
			}
		}
		secrets := map[string]bool{}
		for _, sc := range s.Secrets {
			secrets[sc.Source] = true
		}
		if !secrets["redis_password"] || !secrets["admin_token"] {
			t.Errorf("%s: secrets %v, want redis_password and admin_token", name, s.Secrets)
		}
	}
	for name, sec := range p.Secrets {
		if _, err := os.Stat(sec.File); err != nil {
			t.Errorf("secret %s: %v (a fresh clone must have the example file)", name, err)
		}
	}

	replica := hostView(t, p, "gw-az-a", "compose/sekisho.yaml")
	acme := hostView(t, p, "gw-az-a", "compose/sekisho-acme.yaml")
	lb := hostView(t, p, "lb", "compose/lb.yaml")
	for _, c := range []*config.Config{replica, acme} {
		for _, b := range c.Frontends[0].Bind {
			if b.ProxyProtocol == nil || !slices.Equal(b.ProxyProtocol.Trusted, []string{lbIP}) || b.ProxyProtocol.Mode != "require" {
				t.Errorf("bind %s: proxy_protocol %+v, want required from the lb (%s) only", b.Address, b.ProxyProtocol, lbIP)
			}
		}
		if c.WAF.Policies[0].RulesDir != filepath.Join(repo, "deploy/compose/rules") ||
			c.Redis.PasswordFile != filepath.Join(repo, "deploy/compose/secrets/redis_password.example") ||
			c.Admin.TokenFile != filepath.Join(repo, "deploy/compose/secrets/admin_token.example") {
			t.Errorf("config does not use the mounted rules and secrets: %+v %+v %+v", c.WAF.Policies[0], c.Redis, c.Admin)
		}
	}
	binds := map[string]bool{}
	for _, b := range replica.Frontends[0].Bind {
		_, port, _ := strings.Cut(b.Address, ":")
		binds[port] = true
	}
	for _, be := range lb.Backends {
		for _, srv := range be.Servers {
			host, port, _ := strings.Cut(srv.Address, ":")
			if _, err := p.GetService(host); err != nil || !binds[port] {
				t.Errorf("lb server %s: no replica service %q listening on %s", srv.Address, host, port)
			}
		}
	}
	if lb.Frontends[0].SendProxy != "v2" || lb.Frontends[1].SendProxy != "v2" {
		t.Errorf("lb frontends must send PROXY v2")
	}
}

// hostView loads a config file the way the service sees it, with each
// path inside the container (mounts, /run/secrets) replaced by the file on
// the host that compose puts there, so the config is validated against the
// very files the stack mounts.
func hostView(t *testing.T, p *types.Project, svc, path string) *config.Config {
	t.Helper()
	s := service(t, p, svc)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var pairs []string
	for _, v := range s.Volumes {
		if v.Type == types.VolumeTypeBind {
			pairs = append(pairs, v.Target, v.Source)
		}
	}
	for _, sc := range s.Secrets {
		pairs = append(pairs, "/run/secrets/"+sc.Source, p.Secrets[sc.Source].File)
	}
	c, err := config.Parse(path, []byte(strings.NewReplacer(pairs...).Replace(string(data))))
	if err != nil {
		t.Fatalf("%s is not a valid sekisho config for %s:\n%v", path, svc, err)
	}
	return c
}
