package waf

import (
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/sekisho/sekisho/rules"
)

func TestIsText(t *testing.T) {
	for _, c := range []struct {
		v    string
		want bool
	}{
		{"# Meeting notes\n\n1. Select vendor for Q1\n2. Review the union contract", true},
		{"**TODO**\n- [x] write tests\n- [ ] update docs\n- [ ] ship it", true},
		{"' UNION SELECT password FROM users WHERE name = 'admin' AND 1=1 --", false}, // one line, however long
		{"Something The Title. After something\ncat /etc/passwd;", false},             // two lines
		{"overlay(password\nplacing\n''\nfrom 1 for 0)::int", true},                   // the match spans lines: spansLines
		{"a\nb\nc\nd", false},
	} {
		if got := isText(c.v); got != c.want {
			t.Errorf("isText(%q) = %v, want %v", c.v, got, c.want)
		}
	}
}

func TestSemanticChecks(t *testing.T) {
	text := func(line string) string {
		return "Hi team,\nhere is what I tried today:\n" + line + "\nThanks for any help!"
	}
	at := func(v, m string) [2]int {
		i := strings.Index(v, m)
		return [2]int{i, i + len(m)}
	}
	for _, c := range []struct {
		name  string
		check func(string, [2]int) bool
		v, m  string // m: the match, "" when its place is unknown
		want  bool
	}{
		{"sql: words in notes", confirmSQL, text("1. Select vendor for Q1"), "\n1. Select vendor", false},
		{"sql: injection in a line", confirmSQL, text("x' UNION SELECT password FROM users--"), "UNION SELECT", true},
		{"sql: injection, place unknown", confirmSQL, text("x' UNION SELECT password FROM users--"), "", true},
		{"sql: across lines", confirmSQL, "overlay(password\nplacing\n''\nfrom 1 for 0)::int", "overlay(password\nplacing\n''\nfrom", true},
		{"sql: payload, neither text nor prose", confirmSQL, "1; Select vendor", "1; Select vendor", true},
		{"sql: words in prose", confirmSQL, "union was a great select", "union was a great select", false},
		{"sql: UNION SELECT in prose", confirmSQL, "union all select name from users", "union all select name from", true},
		{"sqlvalue: an e-mail address", confirmSQLValue, "john+or@var.es", "", false},
		{"sqlvalue: not one", confirmSQLValue, "john' or 1=1--@var.es", "", true},
		{"shell: prose", confirmShell, "ls 300 lexus", "ls ", false},
		{"shell: a path is not prose", confirmShell, "cat /etc/passwd now", "cat ", true},
		{"script: prose", confirmScript, "JavaScript: Basics of JavaScript Language", "JavaScript:", false},
		{"shell: script line", confirmShell, text("curl -fsSL https://example.com/install.sh -o install.sh"), "\ncurl ", false},
		{"shell: after a separator", confirmShell, text("ok; cat /etc/passwd"), "; cat ", true},
		{"shell: substitution", confirmShell, text("echo $(id)"), "$(id", true},
		{"shell: at the start", confirmShell, "cat /etc/hosts\nand more words here\nand here too", "cat ", true},
		{"shell: place unknown, no separator", confirmShell, text("sh install.sh --prefix /usr"), "", false},
		{"shell: place unknown, separator", confirmShell, text("a | sh"), "", true},
		{"script: code sample", confirmScript, text("const res = await fetch('/api/v1/orders');"), "fetch(", false},
		{"script: markup", confirmScript, text("<img src=x onerror=alert(1)>"), "alert(", true},
		{"script: string break-out", confirmScript, text("x';alert(1)//"), "alert(", true},
		{"script: javascript URL", confirmScript, text("see javascript:alert(1)"), "alert(", true},
		{"file: data document", confirmFile, "deploy/package.json", "", false},
		{"file: hidden folder", confirmFile, ".docker/config.json", "", true},
		{"file: traversal", confirmFile, "../../package.json", "", true},
		{"file: not data", confirmFile, "/etc/passwd", "", true},
		{"file: server config", confirmFile, "web.config", "", true},
		{"shell: a data document path", confirmShell, "deploy/docker-compose.yml", "deploy/docker-", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			span := [2]int{-1, -1}
			if c.m != "" {
				if span = at(c.v, c.m); span[0] < 0 {
					t.Fatalf("%q not in %q", c.m, c.v)
				}
			}
			if got := c.check(c.v, span); got != c.want {
				t.Errorf("check = %v, want %v", got, c.want)
			}
		})
	}
}

// Through the engine, with the default policy and with semantic_checks
// off: text that CRS blocks for its words passes (and the verdict lists the
// rejected matches), the same text with an attack in it is blocked.
func TestSemantic_Engine(t *testing.T) {
	on, err := New(Config{Name: "default"}, rules.FS())
	if err != nil {
		t.Fatal(err)
	}
	no := false
	off, err := New(Config{Name: "stock", SemanticChecks: &no}, rules.FS())
	if err != nil {
		t.Fatal(err)
	}
	note := func(s string) *http.Request {
		r := httptest.NewRequest("POST", "/api/tickets/1/comments", strings.NewReader(`{"body":`+strconv.Quote(s)+`}`))
		r.Header.Set("Content-Type", "application/json")
		return r
	}
	upload := func(name string) *http.Request {
		r := httptest.NewRequest("POST", "/import", strings.NewReader("--B\r\nContent-Disposition: form-data; name=\"file\"; filename=\""+name+"\"\r\nContent-Type: application/octet-stream\r\n\r\n{}\r\n--B--\r\n"))
		r.Header.Set("Content-Type", "multipart/form-data; boundary=B")
		return r
	}
	notes := "# Meeting notes\n\n1. Select vendor for Q1\n2. Review the union contract\n3. Drop the legacy API by March"
	script := "#!/bin/sh\nset -e\ncurl -fsSL https://example.com/install.sh -o install.sh\nsh install.sh --prefix /usr/local\n"
	code := "This is what I run:\n\n```javascript\nconst res = await fetch('/api/v1/orders?limit=10');\nconsole.log(res.status);\n```\n\nand it fails."
	for _, c := range []struct {
		name       string
		req        func() *http.Request
		stockBlock bool // stock CRS blocks it
		block      bool
		rule       int // a rule the verdict names: Unconfirmed when !block
	}{
		{"notes", func() *http.Request { return note(notes) }, true, false, 942360},
		{"shell script", func() *http.Request { return note(script) }, true, false, 0},
		{"code sample", func() *http.Request { return note(code) }, true, false, 941390},
		{"config upload", func() *http.Request { return upload("docker-compose.yml") }, true, false, 932180},
		{"spa config", func() *http.Request { return httptest.NewRequest("GET", "/assets/config.json", nil) }, true, false, 930130},
		{"sqli in notes", func() *http.Request { return note(notes + "\nx' UNION SELECT password FROM users--") }, true, true, 942100},
		{"shell in notes", func() *http.Request { return note(notes + "\nthen run: ok; cat /etc/shadow") }, true, true, 0},
		{"xss in code", func() *http.Request { return note(code + "\n<img src=x onerror=alert(1)>") }, true, true, 0},
		{"htaccess upload", func() *http.Request { return upload(".htaccess") }, true, true, 932180},
		{"env file", func() *http.Request { return httptest.NewRequest("GET", "/.env", nil) }, true, true, 930130},
	} {
		t.Run(c.name, func(t *testing.T) {
			if v := off.Check(c.req()); v.Blocked() != c.stockBlock {
				t.Fatalf("semantic_checks off: blocked = %v, want %v (rules %v)", v.Blocked(), c.stockBlock, v.Rules)
			}
			v := on.Check(c.req())
			if v.Blocked() != c.block {
				t.Fatalf("blocked = %v, want %v (rules %v, unconfirmed %v)", v.Blocked(), c.block, v.Rules, v.Unconfirmed)
			}
			if c.rule == 0 {
				return
			}
			if c.block && !slices.Contains(v.Rules, c.rule) {
				t.Errorf("rule %d not in %v", c.rule, v.Rules)
			}
			if !c.block && !slices.ContainsFunc(v.Unconfirmed, func(u Unconfirmed) bool { return u.RuleID == c.rule }) {
				t.Errorf("rule %d not in unconfirmed %v", c.rule, v.Unconfirmed)
			}
		})
	}
}

func TestIsProse(t *testing.T) {
	for _, c := range []struct {
		v    string
		want bool
	}{
		{"zsh is the best!", true},
		{"D'or 1st parfume", true},
		{"If you’re looking for a personal recommendation (and more).", true},
		{"ls foo", false},                    // two words
		{"6 As\" from", false},               // a quote closes a string
		{"1 or 1=1", false},                  // an operator
		{"cat /etc/passwd now", false},       // a path
		{"ok; id now", false},                // a separator
		{"alert(1) is fun", false},           // a call
		{"line one\nline two\nthree", false}, // text, not prose
	} {
		if got := isProse(c.v); got != c.want {
			t.Errorf("isProse(%q) = %v, want %v", c.v, got, c.want)
		}
	}
}

// Every check answers for any value and any match place within it, without
// a panic, and prose and text are never both: a value is one line or more.
func FuzzSemanticChecks(f *testing.F) {
	for _, s := range []string{"ls 300 lexus", "# notes\n1. Select vendor\n2. Review the union", "john+or@var.es", "deploy/x.json", "a\nb\nc", "\xff\xfe", "x' or 1=1--"} {
		f.Add(s, 0, len(s))
	}
	f.Fuzz(func(t *testing.T, v string, a, b int) {
		span := [2]int{-1, -1}
		if 0 <= a && a <= b && b <= len(v) {
			span = [2]int{a, b}
		}
		for name, check := range semanticChecks {
			func() {
				defer func() {
					if r := recover(); r != nil {
						t.Fatalf("%s(%q, %v) panicked: %v", name, v, span, r)
					}
				}()
				check(v, span)
			}()
		}
		if isProse(v) && isText(v) {
			t.Errorf("%q is prose and text", v)
		}
	})
}
