package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// sekisho rules test finds the requests whose verdict a rules change
// changes, from JSON lines or raw requests.
func TestRulesTest_FindsChangedVerdicts(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, filepath.FromSlash(name))
		os.MkdirAll(filepath.Dir(p), 0o755)
		os.WriteFile(p, []byte(body), 0o644)
		return p
	}
	write("base/custom/none.conf", "# nothing yet\n")
	write("candidate/before-crs/blog.conf", `SecRule REQUEST_FILENAME "@streq /blog" "id:11001,phase:1,pass,t:none,nolog,ctl:ruleRemoveTargetByTag=attack-sqli;ARGS:comment"`+"\n")
	write("candidate/custom/internal.conf", `SecRule REQUEST_FILENAME "@beginsWith /internal/" "id:9000001,phase:1,deny,status:403,log,msg:'internal'"`+"\n")
	ua := `"User-Agent": "Mozilla/5.0 (X11; Linux x86_64) Chrome/131.0", "Accept": "text/html", "Host": "shop.example.com"`
	jsonl := write("requests.jsonl", strings.Join([]string{
		`{"method": "GET", "uri": "/search?q=shoes", "headers": {` + ua + `}}`,
		`{"method": "GET", "uri": "/blog?comment=1%27+OR+%271%27%3D%271%27+--", "headers": {` + ua + `}}`,
		`{"method": "GET", "uri": "/internal/metrics", "headers": {` + ua + `}}`,
	}, "\n")+"\n")
	hdr := "Host: shop.example.com\r\nUser-Agent: Mozilla/5.0 (X11; Linux x86_64) Chrome/131.0\r\nAccept: text/html\r\n"
	form := "comment=1%27+OR+%271%27%3D%271%27+--"
	raw := write("requests.http", "GET /search?q=shoes HTTP/1.1\r\n"+hdr+"\r\n"+
		"POST /blog HTTP/1.1\r\n"+hdr+"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: "+strconv.Itoa(len(form))+"\r\n\r\n"+form+"\r\n\r\n"+
		"GET /internal/metrics HTTP/1.1\r\n"+hdr+"\r\n")
	for _, file := range []string{jsonl, raw} {
		t.Run(filepath.Base(file), func(t *testing.T) {
			var out, errb bytes.Buffer
			code := run([]string{"rules", "test", "-rules", filepath.Join(dir, "candidate"), "-against", filepath.Join(dir, "base"), "-fail-on-diff", file}, &out, &errb)
			if code != 1 {
				t.Fatalf("exit %d, want 1 (differences); stderr %s", code, errb.String())
			}
			lines := strings.Split(strings.TrimSpace(out.String()), "\n")
			if len(lines) != 3 || !strings.HasPrefix(lines[0], "2\t") || !strings.HasPrefix(lines[1], "3\t") ||
				!strings.Contains(lines[0], "block [") || !strings.Contains(lines[0], "-> pass []") ||
				!strings.Contains(lines[1], "pass [] -> block [9000001]") || lines[2] != "2 of 3 requests change verdict" {
				t.Fatalf("output:\n%s\nstderr:\n%s", out.String(), errb.String())
			}
			out.Reset()
			if code := run([]string{"rules", "test", "-rules", filepath.Join(dir, "candidate"), file}, &out, &errb); code != 0 ||
				strings.Count(out.String(), "\n") != 3 || !strings.HasPrefix(out.String(), "1\tpass []\tGET /search?q=shoes") {
				t.Fatalf("exit %d, output:\n%s", code, out.String())
			}
		})
	}
	bad := write("bad.jsonl", `{"method": "GET", "uri": "no-slash"}`+"\n")
	var out, errb bytes.Buffer
	if code := run([]string{"rules", "test", "-rules", filepath.Join(dir, "base"), bad}, &out, &errb); code != 1 || !strings.Contains(errb.String(), "line 1") {
		t.Fatalf("a bad file: exit %d, %s", code, errb.String())
	}
}
