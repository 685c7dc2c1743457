package waf

import (
	"slices"
	"strings"
	"testing"
)

func TestFlattenNDJSON(t *testing.T) {
	cases := []struct {
		name    string
		body    string
		depth   int
		args    int
		want    [][2]string
		trunc   bool
		wantErr string
	}{
		{"two lines share keys", "{\"a\":1}\n{\"a\":\"x\",\"b\":null}\n", 10, 0,
			[][2]string{{"json.a", "1"}, {"json.a", "x"}, {"json.b", ""}}, false, ""},
		{"nested and arrays with their length", `{"o":{"l":[true,{"k":"v"}]}}`, 10, 0,
			[][2]string{{"json.o.l.0", "true"}, {"json.o.l.1.k", "v"}, {"json.o.l", "2"}}, false, ""},
		{"CRLF and blank lines", "{\"a\":1}\r\n\r\n\n{\"b\":2}", 10, 0, [][2]string{{"json.a", "1"}, {"json.b", "2"}}, false, ""},
		{"a scalar line", "\"text\"\n42", 10, 0, [][2]string{{"json", "text"}, {"json", "42"}}, false, ""},
		{"argument limit", `{"a":1,"b":2,"c":3}`, 10, 2, [][2]string{{"json.a", "1"}, {"json.b", "2"}}, true, ""},
		{"invalid line is an error", "{\"a\":1}\n{oops}\n", 10, 0, [][2]string{{"json.a", "1"}}, false, "line 2: invalid JSON"},
		{"too deep", `[[[[1]]]]`, 3, 0, nil, false, "line 1: JSON nested deeper than 3"},
		{"brackets in strings do not count", `{"a":"[[[[[["}`, 2, 0, [][2]string{{"json.a", "[[[[[["}}, false, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, trunc, err := flattenNDJSON([]byte(tc.body), tc.depth, tc.args)
			if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || err.Error() != tc.wantErr) {
				t.Fatalf("err = %v, want %q", err, tc.wantErr)
			}
			if !slices.Equal(got, tc.want) || trunc != tc.trunc {
				t.Fatalf("got %q truncated %v, want %q %v", got, trunc, tc.want, tc.trunc)
			}
		})
	}
}

// FuzzFlattenNDJSON: any body flattens without a panic or a stack overflow
// (nesting is checked before gjson recurses), within its argument and byte bounds.
func FuzzFlattenNDJSON(f *testing.F) {
	for _, s := range []string{"{\"a\":1}\n{\"b\":[1,2,{\"c\":null}]}", "[[[[[[[[[[1]]]]]]]]]]", "\"x\"\n\n{", `{"a":"\"}\\"}`, strings.Repeat("[", 5000)} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		out, _, _ := flattenNDJSON(body, 16, 100)
		if len(out) > 100 {
			t.Fatalf("%d values past the limit of 100", len(out))
		}
		n := 0
		for _, kv := range out {
			n += len(kv[0]) + len(kv[1])
		}
		if n > max(len(body)*flattenFactor, flattenFloor) {
			t.Fatalf("%d flattened bytes for a %d-byte body", n, len(body))
		}
	})
}
