package waf

import (
	"io/fs"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/sekisho/sekisho/rules"
)

// Every detection name rules_off knows is a tag of channels.conf or
// detections.conf, and every sekisho/ tag there is a name it knows.
func TestRulesOff_NamesAreTags(t *testing.T) {
	tags := map[string]bool{}
	for _, f := range []string{channelsFile, detectionsFile} {
		data, err := fs.ReadFile(rules.FS(), f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range regexp.MustCompile(`tag:'sekisho/([^']+)'`).FindAllStringSubmatch(string(data), -1) {
			tags[m[1]] = true
		}
	}
	for tag := range tags {
		if _, err := parseRuleOff(tag); err != nil {
			t.Errorf("tag sekisho/%s is not a name rules_off knows: %v", tag, err)
		}
	}
	for _, c := range detectionClasses {
		if !tags[c] {
			t.Errorf("rules_off knows %q, which no rule is tagged with", c)
		}
	}
}

func TestRulesOff_Parse(t *testing.T) {
	for _, c := range []struct {
		in, directive, semantic string
		bad                     bool
	}{
		{in: "942100", directive: "SecRuleRemoveById 942100"},
		{in: "942000-942999", directive: "SecRuleRemoveById 942000-942999"},
		{in: "sqli", directive: "SecRuleRemoveByTag sekisho/sqli"},
		{in: "xss.header", directive: "SecRuleRemoveByTag sekisho/xss.header"},
		{in: "semantic.shell", semantic: "shell"},
		{in: "semantic.nope", bad: true},
		{in: "sqli.cookie", bad: true},
		{in: "942999-942000", bad: true},
		{in: "attack-sqli", bad: true},
		{in: "0", bad: true},
	} {
		r, err := parseRuleOff(c.in)
		if (err != nil) != c.bad || r.directive != c.directive || r.semantic != c.semantic {
			t.Errorf("parseRuleOff(%q) = %+v, %v", c.in, r, err)
		}
	}
}

// rules_off turns a detection off by id, by name and by check, in the
// verdict a request gets; a name it does not know fails the policy.
func TestRulesOff_Engine(t *testing.T) {
	header := func() *http.Request {
		r := httptest.NewRequest("GET", "/", nil)
		r.Header.Set("X-Custom-Data", "' UNION SELECT password FROM users--")
		return r
	}
	prose := func() *http.Request { return httptest.NewRequest("GET", "/?q=ls+300+lexus", nil) }
	for _, c := range []struct {
		off     []string
		req     func() *http.Request
		blocked bool
	}{
		{nil, header, true},
		{[]string{"sqli.header"}, header, false},
		{[]string{"sqli"}, header, false},
		{[]string{"200138"}, header, false},
		{[]string{"xss.header"}, header, true},
		{nil, prose, false},
		{[]string{"semantic.shell"}, prose, true},
		{[]string{"semantic.shell", "932250"}, prose, false},
	} {
		e, err := New(Config{Name: "p", RulesOff: c.off}, rules.FS())
		if err != nil {
			t.Fatal(err)
		}
		if v := e.Check(c.req()); v.Blocked() != c.blocked {
			t.Errorf("rules_off %v: blocked = %v, want %v (rules %v)", c.off, v.Blocked(), c.blocked, v.Rules)
		}
	}
	_, err := New(Config{Name: "p", RulesOff: []string{"942100", "sqly"}}, rules.FS())
	if err == nil || !strings.Contains(err.Error(), `rules_off[1]: "sqly"`) {
		t.Errorf("an unknown name: %v", err)
	}
}
