package sticktable

import "testing"

func TestClientKey(t *testing.T) {
	const ja4 = "t13d1312h2_f57a46bbacb6_ab7e3b40a677"
	for _, c := range []struct {
		kind, addr, ja4, key string
		complete             bool
	}{
		{"src", "192.0.2.7", ja4, "192.0.2.7", true},
		{"src", "192.0.2.7", "", "192.0.2.7", true},
		{"ja4", "192.0.2.7", ja4, ja4, true},
		{"ja4", "192.0.2.7", "", "", false},
		{"src+ja4", "2001:db8::7", ja4, "2001:db8::7|" + ja4, true},
		{"src+ja4", "192.0.2.7", "", "192.0.2.7|", false},
	} {
		key, complete := ClientKey(c.kind, c.addr, c.ja4)
		if key != c.key || complete != c.complete {
			t.Errorf("ClientKey(%s, %s, %q) = %q, %v; want %q, %v", c.kind, c.addr, c.ja4, key, complete, c.key, c.complete)
		}
		if len(c.key) > ClientKeyLen {
			t.Errorf("%q is longer than ClientKeyLen", c.key)
		}
	}
	// The longest address and a JA4 fit.
	if key, _ := ClientKey("src+ja4", "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255", ja4); len(key) > ClientKeyLen {
		t.Errorf("%d bytes: ClientKeyLen too short", len(key))
	}
}
