package console

import (
	"context"
	"strings"
	"testing"
	"time"
)

func TestRing_BoundedNewestFirstFiltered(t *testing.T) {
	r := NewRing(3)
	t0 := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	for i, c := range []string{"a", "b", "c", "d"} {
		r.Add(Event{ID: c, ClientIP: c, Time: t0.Add(time.Duration(i) * time.Minute), Path: "/" + c,
			Matches: []Match{{RuleID: 941100 + i, Message: "XSS " + c}}})
	}
	ids := func(f Filter, limit int) string {
		es, _ := r.List(context.Background(), f, limit)
		var out []string
		for _, e := range es {
			out = append(out, e.ID)
		}
		return strings.Join(out, ",")
	}
	for _, tt := range []struct {
		f     Filter
		limit int
		want  string
	}{
		{Filter{}, 10, "d,c,b"},
		{Filter{}, 2, "d,c"},
		{Filter{Client: "c"}, 10, "c"},
		{Filter{Path: "/b"}, 10, "b"},
		{Filter{Rule: "941103"}, 10, "d"},
		{Filter{Rule: "xss c"}, 10, "c"},
		{Filter{Since: t0.Add(150 * time.Second)}, 10, "d"},
		{Filter{RequestID: "a"}, 10, ""},
	} {
		if got := ids(tt.f, tt.limit); got != tt.want {
			t.Errorf("%+v: %q, want %q", tt.f, got, tt.want)
		}
	}
}

// A client's text cannot end a comment line of the exclusions file and
// start a directive of its own.
func TestExclusions_ClientTextStaysInComments(t *testing.T) {
	e := Event{ID: "x\nSecRuleEngine Off", Method: "GET", Host: "h", Path: "/a\r\nSecRuleEngine Off",
		Matches: []Match{{RuleID: 1, Message: "m\nSecRuleEngine Off", Variable: "ARGS:a", Exclusion: "SecRule REQUEST_FILENAME \"@streq /a\" \"id:1,phase:1,pass,nolog\""}}}
	for _, line := range strings.Split(e.Exclusions(), "\n") {
		if strings.HasPrefix(line, "SecRuleEngine") {
			t.Errorf("a client's text became a directive: %q", line)
		}
	}
}
