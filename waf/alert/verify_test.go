package alert

import (
	"strconv"
	"strings"
	"testing"
	"time"
)

// Verify accepts only a whole, matching MAC whose time is within the
// tolerance on either side of now: an empty or truncated v1, a MAC of
// another body or secret, a signature from the future past the tolerance
// are all refused.
func TestVerify_RefusesEveryBadSignature(t *testing.T) {
	secret, body := []byte("whsec"), []byte(`{"type":"waf.block"}`)
	now := time.Unix(1_800_000_000, 0)
	const tolerance = 5 * time.Minute
	good := sign(secret, now, body)
	v1 := good[strings.Index(good, "v1=")+3:]
	ts := strconv.FormatInt(now.Unix(), 10)
	cases := []struct {
		name, header string
		ok           bool
	}{
		{"good", good, true},
		{"good among others", "t=" + ts + ",v1=00ff,v1=" + v1, true},
		{"4 minutes old", sign(secret, now.Add(-4*time.Minute), body), true},
		{"4 minutes ahead", sign(secret, now.Add(4*time.Minute), body), true},
		{"empty v1", "t=" + ts + ",v1=", false},
		{"no v1", "t=" + ts, false},
		{"one byte of the MAC", "t=" + ts + ",v1=" + v1[:2], false},
		{"truncated MAC", "t=" + ts + ",v1=" + v1[:len(v1)-2], false},
		{"MAC with a byte more", "t=" + ts + ",v1=" + v1 + "00", false},
		{"other secret", sign([]byte("other"), now, body), false},
		{"other body", sign(secret, now, []byte(`{"type":"redis.up"}`)), false},
		{"other time, same MAC", "t=" + strconv.FormatInt(now.Unix()+1, 10) + ",v1=" + v1, false},
		{"6 minutes old", sign(secret, now.Add(-6*time.Minute), body), false},
		{"6 minutes ahead", sign(secret, now.Add(6*time.Minute), body), false},
		{"a day ahead", sign(secret, now.Add(24*time.Hour), body), false},
		{"no time", "v1=" + v1, false},
		{"empty", "", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := Verify(secret, tc.header, body, tolerance, now)
			if (err == nil) != tc.ok {
				t.Fatalf("Verify(%q) = %v, want ok=%v", tc.header, err, tc.ok)
			}
		})
	}
}
