package waf

import (
	"net/http/httptest"
	"strconv"
	"testing"

	"github.com/sekisho/sekisho/rules"
)

// The clean set holds short values, never more than cleanMax of them.
func TestCRSOp_CleanIsBounded(t *testing.T) {
	var c clean
	long := string(make([]byte, cleanValueMax+1))
	c.add(long)
	if c.has(long) {
		t.Error("a value over cleanValueMax was kept")
	}
	for i := range cleanMax + 10 {
		c.add("v" + strconv.Itoa(i))
		if n := len(c.values); n > cleanMax {
			t.Fatalf("%d values kept, at most %d", n, cleanMax)
		}
	}
	if !c.has("v" + strconv.Itoa(cleanMax+9)) {
		t.Error("the latest value is not kept")
	}
}

// A header value is judged the same each time it comes back: a clean one
// passes again, an attack is blocked every time (matches are not kept).
func TestCRSOp_RepeatedHeaders(t *testing.T) {
	e, err := New(Config{Name: "default"}, rules.FS())
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		value   string
		blocked bool
	}{
		{"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36", false},
		{"' UNION SELECT password FROM users--", true},
	} {
		for i := range 3 {
			r := httptest.NewRequest("GET", "/", nil)
			r.Header.Set("X-Client-Note", c.value)
			if v := e.Check(r); v.Blocked() != c.blocked {
				t.Errorf("%q, time %d: blocked = %v, want %v", c.value, i+1, v.Blocked(), c.blocked)
			}
		}
	}
}
