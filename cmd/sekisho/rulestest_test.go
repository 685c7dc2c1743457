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
			if len(lines) != 3 || !strings.HasPrefix(lines[0], "2\tverdict\t") || !strings.HasPrefix(lines[1], "3\tverdict\t") ||
				!strings.Contains(lines[0], "block [") || !strings.Contains(lines[0], "-> pass []") ||
				!strings.Contains(lines[1], "pass [] -> block [9000001]") || lines[2] != "2 of 3 requests change verdict; 0 more change only their matched rules" {
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

// -against tells a changed verdict from a changed list of matched rules
// and counts them apart; -fail-on-diff fails on verdicts only, unless
// -fail-on-rules-diff says rules too.
func TestRulesTest_VerdictsApartFromRules(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "base", "custom"), 0o755)
	os.MkdirAll(filepath.Join(dir, "candidate", "custom"), 0o755)
	os.WriteFile(filepath.Join(dir, "base", "custom", "none.conf"), []byte("# nothing\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "candidate", "custom", "seen.conf"), []byte(`SecRule ARGS:q "@streq shoes" "id:9000002,phase:1,pass,log,msg:'seen'"`+"\n"), 0o644)
	ua := `"User-Agent": "Mozilla/5.0 (X11; Linux x86_64) Chrome/131.0", "Accept": "text/html", "Host": "shop.example.com"`
	file := filepath.Join(dir, "requests.jsonl")
	os.WriteFile(file, []byte(`{"uri": "/search?q=shoes", "headers": {`+ua+`}}`+"\n"+`{"uri": "/search?q=hats", "headers": {`+ua+`}}`+"\n"), 0o644)
	for _, tc := range []struct {
		flag string
		code int
	}{{"-fail-on-diff", 0}, {"-fail-on-rules-diff", 1}} {
		var out, errb bytes.Buffer
		code := run([]string{"rules", "test", "-rules", filepath.Join(dir, "candidate"), "-against", filepath.Join(dir, "base"), tc.flag, file}, &out, &errb)
		want := "1\trules\tGET /search?q=shoes\tpass [] -> pass [9000002]\n0 of 2 requests change verdict; 1 more change only their matched rules\n"
		if code != tc.code || out.String() != want {
			t.Errorf("%s: exit %d, want %d; output:\n%s\nwant:\n%s\nstderr: %s", tc.flag, code, tc.code, out.String(), want, errb.String())
		}
	}
}

// A line of an audit log announces a body it does not hold: the request
// is replayed with a warning that names the line, and marked.
func TestRulesTest_WarnsOfAMissingBody(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "rules", "custom"), 0o755)
	os.WriteFile(filepath.Join(dir, "rules", "custom", "none.conf"), []byte("# nothing\n"), 0o644)
	file := filepath.Join(dir, "audit.log")
	os.WriteFile(file, []byte(`{"time":"2026-12-07T18:00:00Z","method":"GET","host":"shop.example.com","uri":"/search?q=shoes","headers":{"User-Agent":["Mozilla/5.0 (X11; Linux x86_64) Chrome/131.0"],"Accept":["text/html"]}}`+"\n"+
		`{"time":"2026-12-07T18:00:01Z","method":"POST","host":"shop.example.com","uri":"/blog","headers":{"User-Agent":["Mozilla/5.0 (X11; Linux x86_64) Chrome/131.0"],"Accept":["text/html"],"Content-Type":["application/x-www-form-urlencoded"],"Content-Length":["38"]},"action":"block"}`+"\n"), 0o644)
	var out, errb bytes.Buffer
	if code := run([]string{"rules", "test", "-rules", filepath.Join(dir, "rules"), file}, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	if !strings.Contains(errb.String(), file+":2: warning: Content-Length: 38 but no body") || strings.Contains(errb.String(), ":1: warning") ||
		!strings.Contains(errb.String(), "1 of 2 requests replayed without the body") {
		t.Errorf("stderr:\n%s", errb.String())
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 2 || strings.HasSuffix(lines[0], "(no body)") || !strings.HasSuffix(lines[1], "POST /blog\t(no body)") {
		t.Errorf("output:\n%s", out.String())
	}
}

// -h says what the input file holds.
func TestRulesTest_HelpShowsTheInputFormat(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run([]string{"rules", "test", "-h"}, &out, &errb); code != 0 {
		t.Fatalf("exit %d", code)
	}
	for _, want := range []string{"raw HTTP/1.1 requests", "JSON lines", `"method"`, `"uri"`, `"headers"`, `"body"`, "audit log", "-fail-on-rules-diff"} {
		if !strings.Contains(errb.String(), want) {
			t.Errorf("-h does not say %q:\n%s", want, errb.String())
		}
	}
}

// The verdict is the gateway's: semantic checks included, and the matches
// they reject named; -semantic-checks=false gives stock CRS's.
func TestRulesTest_SemanticChecks(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "rules", "custom"), 0o755)
	os.WriteFile(filepath.Join(dir, "rules", "custom", "none.conf"), []byte("# nothing\n"), 0o644)
	file := filepath.Join(dir, "r.jsonl")
	os.WriteFile(file, []byte(`{"uri": "/search?q=ls+300+lexus", "headers": {"User-Agent": "Mozilla/5.0", "Accept": "text/html", "Host": "shop.example.com"}}`+"\n"), 0o644)
	for _, c := range []struct {
		flag, want string
	}{
		{"-semantic-checks=true", "1\tpass [] unconfirmed [932250 shell]\tGET /search?q=ls+300+lexus\n"},
		{"-semantic-checks=false", "1\tblock [932250 949110]\tGET /search?q=ls+300+lexus\n"},
	} {
		var out, errb bytes.Buffer
		if code := run([]string{"rules", "test", "-rules", filepath.Join(dir, "rules"), c.flag, file}, &out, &errb); code != 0 || out.String() != c.want {
			t.Errorf("%s: exit %d, output %q, want %q (stderr %s)", c.flag, code, out.String(), c.want, errb.String())
		}
	}
}
