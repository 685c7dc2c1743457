package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"

	"github.com/sekisho/sekisho/rules"
	"github.com/sekisho/sekisho/waf"
)

const rulesUsage = `usage:
  sekisho rules test -rules DIR [-against DIR] [-paranoia N] [-semantic-checks=false] [-fail-on-diff] [-fail-on-rules-diff] FILE

Replays the requests in FILE through CRS and sekisho's rules with the rules
folder DIR, offline, as a policy with these settings decides, and prints each
request's verdict and matched rules, and the CRS matches that a semantic
check rejected (they did not score):

  N<TAB>ACTION [RULE IDS]( unconfirmed [RULE ID CHECK, ...])<TAB>METHOD URI

With -against, it prints only the requests that the candidate DIR treats
differently from the second folder, each as

  N<TAB>verdict|rules<TAB>METHOD URI<TAB>OLD -> NEW

"verdict" when the action changes (pass to block, block to pass), "rules" when
only the list of matched rules does, and counts the two apart. -fail-on-diff
exits 1 when a verdict changes; -fail-on-rules-diff also when only rules do.

FILE holds either
  - raw HTTP/1.1 requests one after the other (bodies framed by Content-Length);
    or
  - JSON lines, one request per line:
      {"method": "POST", "uri": "/path?query",
       "headers": {"Content-Type": "application/json", "Cookie": ["a=1", "b=2"]},
       "body": "{\"q\": 1}"}
    method defaults to GET; a header's value is a string or a list of strings;
    "Host" (a header, or "host") sets the host. sekisho's audit log (audit_log:) is such a file, but
    it records no bodies: a line whose headers announce a body (Content-Length
    not 0, Transfer-Encoding) and that holds none is replayed without it, with
    a warning on stderr and "(no body)" after it, as its verdict may differ.
`

func cmdRules(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] != "test" {
		fmt.Fprint(stderr, rulesUsage)
		return 2
	}
	fs := flag.NewFlagSet("rules test", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, rulesUsage+"\nflags:\n")
		fs.PrintDefaults()
	}
	dir := fs.String("rules", "", "the candidate rules folder")
	against := fs.String("against", "", "a second rules folder: print only the requests treated differently")
	paranoia := fs.Int("paranoia", 1, "CRS paranoia level")
	semantic := fs.Bool("semantic-checks", true, "confirm CRS's word-based matches with sekisho's semantic checks (a policy's semantic_checks)")
	failOnDiff := fs.Bool("fail-on-diff", false, "with -against, exit 1 when a verdict (the action) changes")
	failOnRules := fs.Bool("fail-on-rules-diff", false, "with -against, exit 1 also when only the matched rules change")
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() != 1 {
		fmt.Fprint(stderr, rulesUsage)
		return 2
	}
	f, err := os.Open(fs.Arg(0))
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	defer f.Close()
	reqs, err := waf.ReadRequests(f)
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", fs.Arg(0), err)
		return 1
	}
	engine := func(d string) (*waf.Engine, bool) {
		e, err := waf.New(waf.Config{Name: "test", RulesDir: d, ParanoiaLevel: *paranoia, SemanticChecks: semantic}, rules.FS())
		if err != nil {
			fmt.Fprintln(stderr, err)
			return nil, false
		}
		return e, true
	}
	a, ok := engine(*dir)
	if !ok {
		return 1
	}
	var b *waf.Engine
	if *against != "" {
		if b, ok = engine(*against); !ok {
			return 1
		}
	}
	verdicts, ruleLists, bodiless := 0, 0, 0
	for i, r := range reqs {
		note := ""
		if r.MissingBody != "" {
			bodiless++
			note = "\t(no body)"
			fmt.Fprintf(stderr, "%s:%d: warning: %s but no body: replayed without it, its verdict may differ\n", fs.Arg(0), r.Line, r.MissingBody)
		}
		body, _ := io.ReadAll(r.Request.Body)
		va := check(a, r.Request, body)
		target := r.Request.Method + " " + r.Request.RequestURI
		if b == nil {
			fmt.Fprintf(stdout, "%d\t%s\t%s%s\n", i+1, describe(va), target, note)
			continue
		}
		vb := check(b, r.Request, body)
		kind := ""
		switch {
		case va.Action != vb.Action:
			verdicts++
			kind = "verdict"
		case describe(va) != describe(vb):
			ruleLists++
			kind = "rules"
		default:
			continue
		}
		fmt.Fprintf(stdout, "%d\t%s\t%s\t%s -> %s%s\n", i+1, kind, target, describe(vb), describe(va), note)
	}
	if bodiless > 0 {
		fmt.Fprintf(stderr, "warning: %d of %d requests replayed without the body they announce\n", bodiless, len(reqs))
	}
	if b != nil {
		fmt.Fprintf(stdout, "%d of %d requests change verdict; %d more change only their matched rules\n", verdicts, len(reqs), ruleLists)
		if *failOnDiff && verdicts > 0 || *failOnRules && verdicts+ruleLists > 0 {
			return 1
		}
	}
	return 0
}

// check runs a fresh copy of the request (its body re-read from body).
func check(e *waf.Engine, r0 *http.Request, body []byte) *waf.Verdict {
	r := r0.Clone(r0.Context())
	r.Body = io.NopCloser(bytes.NewReader(body))
	return e.Check(r)
}

// describe is a verdict as one word and its rules: "block [942100 949110]",
// "pass [] unconfirmed [932250 shell]".
func describe(v *waf.Verdict) string {
	ids := make([]string, len(v.Rules))
	for i, id := range v.Rules {
		ids[i] = fmt.Sprint(id)
	}
	out := fmt.Sprintf("%s [%s]", v.Action, strings.Join(ids, " "))
	if len(v.Unconfirmed) > 0 {
		us := make([]string, len(v.Unconfirmed))
		for i, u := range v.Unconfirmed {
			us[i] = fmt.Sprintf("%d %s", u.RuleID, u.Check)
		}
		out += " unconfirmed [" + strings.Join(us, ", ") + "]"
	}
	return out
}
