package deploy

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/sekisho/sekisho/e2e/debpkg"
)

// unit reads deploy/systemd/sekisho.service into section -> key -> values.
func unit(t *testing.T) map[string]map[string][]string {
	t.Helper()
	f, err := os.Open("systemd/sekisho.service")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string]map[string][]string{}
	section := ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, ";"):
		case strings.HasPrefix(line, "["):
			section = strings.Trim(line, "[]")
			out[section] = map[string][]string{}
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok || section == "" {
				t.Fatalf("not a unit line: %q", line)
			}
			out[section][k] = append(out[section][k], v)
		}
	}
	return out
}

func TestSystemd_UnitKeys(t *testing.T) {
	svc := unit(t)["Service"]
	for k, want := range map[string]string{
		"Type":                  "notify",
		"ExecReload":            "/bin/kill -HUP $MAINPID",
		"DynamicUser":           "yes",
		"ProtectSystem":         "strict",
		"ProtectHome":           "yes",
		"NoNewPrivileges":       "yes",
		"CapabilityBoundingSet": "CAP_NET_BIND_SERVICE",
		"AmbientCapabilities":   "CAP_NET_BIND_SERVICE",
		"ExecStart":             "/usr/local/bin/sekisho run -c /etc/sekisho/sekisho.yaml",
	} {
		if got := svc[k]; !slices.Equal(got, []string{want}) {
			t.Errorf("[Service] %s = %q, want exactly %q", k, got, want)
		}
	}
	if _, ok := svc["MemoryDenyWriteExecute"]; ok {
		t.Error("MemoryDenyWriteExecute breaks the RE2 WebAssembly compiler (wazero)")
	}
	if !slices.Contains(unit(t)["Install"]["WantedBy"], "multi-user.target") {
		t.Error("[Install] WantedBy=multi-user.target missing: systemctl enable would do nothing")
	}
}

// systemd-analyze verify reads the unit as systemd would: unknown keys,
// bad values, a missing executable. The binary is built, so ExecStart
// points at a real sekisho.
func TestSystemd_AnalyzeVerify(t *testing.T) {
	analyze := systemdAnalyze(t)
	dir := t.TempDir()
	bin := filepath.Join(dir, "sekisho")
	if out, err := exec.Command("go", "build", "-o", bin, "../cmd/sekisho").CombinedOutput(); err != nil {
		t.Fatalf("building sekisho: %v\n%s", err, out)
	}
	data, err := os.ReadFile("systemd/sekisho.service")
	if err != nil {
		t.Fatal(err)
	}
	text := strings.ReplaceAll(string(data), "/usr/local/bin/sekisho", bin)
	u := filepath.Join(dir, "sekisho.service")
	os.WriteFile(u, []byte(text), 0o644)
	out, err := exec.Command(analyze, "verify", u).CombinedOutput()
	if err != nil || len(strings.TrimSpace(string(out))) > 0 {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
	// And it does catch a mistake, so its silence above means something.
	bad := filepath.Join(dir, "bad.service")
	os.WriteFile(bad, []byte(strings.Replace(text, "ProtectSystem=strict", "ProtectSystem=strickt", 1)), 0o644)
	if out, _ := exec.Command(analyze, "verify", bad).CombinedOutput(); !strings.Contains(string(out), "strickt") {
		t.Fatalf("systemd-analyze verify passed a bad value silently: %s", out)
	}
}

// systemdAnalyze finds systemd-analyze, installing Debian's systemd
// package when it is missing; the test fails with how to get it otherwise.
func systemdAnalyze(t *testing.T) string {
	t.Helper()
	return debpkg.Need(t, "systemd-analyze", "systemd")
}
