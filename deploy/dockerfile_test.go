package deploy

import (
	"os"
	"path"
	"strings"
	"testing"

	"github.com/moby/buildkit/frontend/dockerfile/parser"
)

type stage struct {
	from, name string
	cmds       []*parser.Node // the instructions after FROM
}

// stages parses deploy/Dockerfile with BuildKit's own parser.
func stages(t *testing.T) []stage {
	t.Helper()
	f, err := os.Open("Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	res, err := parser.Parse(f)
	if err != nil {
		t.Fatalf("deploy/Dockerfile does not parse: %v", err)
	}
	for _, w := range res.Warnings {
		t.Errorf("parser warning: %s", w.Short)
	}
	var out []stage
	for _, n := range res.AST.Children {
		if strings.EqualFold(n.Value, "from") {
			s := stage{from: n.Next.Value}
			if a := n.Next.Next; a != nil && strings.EqualFold(a.Value, "as") && a.Next != nil {
				s.name = a.Next.Value
			}
			out = append(out, s)
			continue
		}
		if len(out) > 0 {
			out[len(out)-1].cmds = append(out[len(out)-1].cmds, n)
		}
	}
	return out
}

func args(n *parser.Node) []string {
	var a []string
	for x := n.Next; x != nil; x = x.Next {
		a = append(a, x.Value)
	}
	return a
}

func TestDockerfile_BuildStage(t *testing.T) {
	st := stages(t)
	if len(st) != 2 {
		t.Fatalf("%d stages, want a build stage and a final one", len(st))
	}
	if !strings.HasPrefix(st[0].from, "golang:") {
		t.Errorf("build stage FROM %s: want the official Go image", st[0].from)
	}
	var build string
	for _, n := range st[0].cmds {
		if strings.EqualFold(n.Value, "run") && strings.Contains(strings.Join(args(n), " "), "go build") {
			build = strings.Join(args(n), " ")
		}
	}
	for _, want := range []string{"CGO_ENABLED=0", "-trimpath", "-X main.version=${VERSION}", "./cmd/sekisho"} {
		if !strings.Contains(build, want) {
			t.Errorf("go build line %q lacks %q", build, want)
		}
	}
}

func TestDockerfile_FinalStage(t *testing.T) {
	st := stages(t)
	final := st[len(st)-1]
	if !strings.HasPrefix(final.from, "gcr.io/distroless/static") && final.from != "scratch" {
		t.Errorf("final stage FROM %s: want distroless static or scratch", final.from)
	}
	seen := map[string][]string{}
	labels := map[string]bool{}
	for _, n := range final.cmds {
		kw := strings.ToLower(n.Value)
		seen[kw] = args(n)
		if kw == "label" {
			for i, a := range args(n) {
				if i%3 == 0 { // key, value, "=" triples
					labels[a] = true
				}
			}
		}
		if kw == "copy" {
			for _, fl := range n.Flags {
				if from, ok := strings.CutPrefix(fl, "--from="); ok && from != st[0].name {
					t.Errorf("COPY --from=%s: no such stage", from)
				}
			}
		}
	}
	user := seen["user"]
	if len(user) != 1 {
		t.Fatal("final stage has no USER: the gateway would run as root")
	}
	if u, _, _ := strings.Cut(user[0], ":"); u == "0" || u == "root" || u == "" {
		t.Errorf("USER %s is root", user[0])
	}
	hc := seen["healthcheck"]
	if len(hc) < 2 || hc[0] != "CMD" || !strings.Contains(strings.Join(hc, " "), "/usr/local/bin/sekisho health -url http://127.0.0.1:9901/readyz") {
		t.Errorf("HEALTHCHECK %q: want the binary probing /readyz (exec form: distroless has no shell)", hc)
	}
	if ep := seen["entrypoint"]; len(ep) != 1 || ep[0] != "/usr/local/bin/sekisho" {
		t.Errorf("ENTRYPOINT %q", ep)
	}
	for _, l := range []string{"org.opencontainers.image.title", "org.opencontainers.image.source", "org.opencontainers.image.version", "org.opencontainers.image.revision"} {
		if !labels[l] {
			t.Errorf("no OCI label %s; labels %v", l, labels)
		}
	}
}

// The ignore file keeps the context small and keeps what the build reads.
func TestDockerfile_Ignore(t *testing.T) {
	data, err := os.ReadFile("Dockerfile.dockerignore")
	if err != nil {
		t.Fatal(err)
	}
	var patterns []string
	for _, l := range strings.Split(string(data), "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
			patterns = append(patterns, l)
		}
	}
	// Docker's rules, as far as this file uses them: a pattern matches a
	// path or any folder above it; "**/" matches at any depth; the last
	// matching pattern wins, "!" keeps.
	ignored := func(p string) bool {
		hit := false
		for _, pat := range patterns {
			neg := strings.HasPrefix(pat, "!")
			pat = strings.TrimPrefix(pat, "!")
			anyDepth := strings.HasPrefix(pat, "**/")
			pat = strings.TrimPrefix(pat, "**/")
			for q := p; q != "."; q = path.Dir(q) {
				name := q
				if anyDepth {
					name = path.Base(q)
				}
				if ok, _ := path.Match(pat, name); ok {
					hit = !neg
					break
				}
			}
		}
		return hit
	}
	for _, keep := range []string{"go.mod", "go.sum", "cmd/sekisho/main.go", "gateway/demo/demo.yaml", "rules/sekisho/base.conf", "waf/rx.go"} {
		if ignored(keep) {
			t.Errorf("%s is ignored, but the build needs it", keep)
		}
	}
	for _, drop := range []string{".git/HEAD", "e2e/harness_test.go", "waf/rx_test.go", "deploy/compose/secrets/redis_password"} {
		if !ignored(drop) {
			t.Errorf("%s goes into the build context", drop)
		}
	}
}
