package main

import (
	"bytes"
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
  sekisho rules test -rules DIR [-against DIR] [-paranoia N] [-fail-on-diff] FILE

Replays the requests in FILE (raw HTTP/1.1 requests one after the other, or JSON
lines: {"method","uri","headers","body"}) through CRS with the rules folder DIR,
offline, and prints each request's verdict and matched rules. With -against, it
prints only the requests whose verdict differs between the two folders (the
first is the candidate); -fail-on-diff then exits 1 when there are any.
`

func cmdRules(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] != "test" {
		fmt.Fprint(stderr, rulesUsage)
		return 2
	}
	fs := flag.NewFlagSet("rules test", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := fs.String("rules", "", "the candidate rules folder")
	against := fs.String("against", "", "a second rules folder: print only the requests whose verdict differs")
	paranoia := fs.Int("paranoia", 1, "CRS paranoia level")
	failOnDiff := fs.Bool("fail-on-diff", false, "with -against, exit 1 when a verdict differs")
	if err := fs.Parse(args[1:]); err != nil {
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
		e, err := waf.New(waf.Config{Name: "test", RulesDir: d, ParanoiaLevel: *paranoia}, rules.FS())
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
	diffs := 0
	for i, r := range reqs {
		body, _ := io.ReadAll(r.Request.Body)
		va := check(a, r.Request, body)
		target := r.Request.Method + " " + r.Request.RequestURI
		if b == nil {
			fmt.Fprintf(stdout, "%d\t%s\t%s\n", i+1, describe(va), target)
			continue
		}
		vb := check(b, r.Request, body)
		if describe(va) != describe(vb) {
			diffs++
			fmt.Fprintf(stdout, "%d\t%s\t%s -> %s\n", i+1, target, describe(vb), describe(va))
		}
	}
	if b != nil {
		fmt.Fprintf(stdout, "%d of %d requests change verdict\n", diffs, len(reqs))
		if diffs > 0 && *failOnDiff {
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

// describe is a verdict as one word and its rules: "block [942100 949110]".
func describe(v *waf.Verdict) string {
	ids := make([]string, len(v.Rules))
	for i, id := range v.Rules {
		ids[i] = fmt.Sprint(id)
	}
	return fmt.Sprintf("%s [%s]", v.Action, strings.Join(ids, " "))
}
