package waf

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"
)

var exclusionID = regexp.MustCompile(`"id:(\d+),`)

// Different exclusions get different ids (50,000 of them: the old range
// of 88,000 ids could not hold them apart), above every id CRS and its
// plugins use; the same one gets the same id.
func TestExclusion_IDsDoNotCollide(t *testing.T) {
	seen := map[int64]string{}
	for i := range 50_000 {
		ex := exclusion(942100+i%7, []string{fmt.Sprintf("ARGS:f%d", i/70)}, fmt.Sprintf("/p%d", i%10))
		m := exclusionID.FindStringSubmatch(ex)
		if m == nil {
			t.Fatalf("no id in %s", ex)
		}
		id, _ := strconv.ParseInt(m[1], 10, 64)
		if id <= 9_999_999 {
			t.Fatalf("id %d is in CRS's or its plugins' range: %s", id, ex)
		}
		if other, dup := seen[id]; dup {
			t.Fatalf("two exclusions share id %d:\n%s\n%s", id, other, ex)
		}
		seen[id] = ex
	}
	if a, b := exclusion(942100, []string{"ARGS:q", "ARGS:r"}, "/s"), exclusion(942100, []string{"ARGS:r", "ARGS:q", "ARGS:r"}, "/s"); a != b {
		t.Fatalf("the same exclusion twice:\n%s\n%s", a, b)
	}
}

var plainName = regexp.MustCompile(`^[A-Za-z0-9_.\-]*$`)

// Whatever an argument's name holds, its exclusion target is the name as
// it is only when that is plain, ends no action otherwise (no ',', quote,
// space or line break), and is then a regular expression that compiles,
// matches the name and no longer one.
func FuzzExclusionTarget(f *testing.F) {
	for _, s := range []string{"q", "a,b", `it's "x"`, "q;ARGS:x", "/x/", `a\ b`, "名前", "json.items.2.html", "json.0", "\xff"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		target := exclusionTarget("ARGS:" + name)
		if target == "ARGS:"+name {
			if !plainName.MatchString(name) {
				t.Fatalf("%q is written as it is", name)
			}
			return
		}
		if strings.ContainsAny(target, ",'\" \r\n") {
			t.Fatalf("%q: target %q ends the action or opens a string", name, target)
		}
		rx, ok := strings.CutPrefix(target, "ARGS:/")
		if !ok || !strings.HasSuffix(rx, "/") {
			t.Fatalf("%q: target %q is neither plain nor a regular expression", name, target)
		}
		re, err := regexp.Compile(strings.TrimSuffix(rx, "/"))
		if err != nil {
			t.Fatalf("%q: %q does not compile: %v", name, rx, err)
		}
		if utf8.ValidString(name) && !re.MatchString(name) {
			t.Fatalf("%q: %q does not match the name", name, rx)
		}
		if re.MatchString(name + "x") {
			t.Fatalf("%q: %q matches a longer name", name, rx)
		}
	})
}
