package sticktable

import (
	"strings"
	"testing"
	"time"
)

func TestKey_NormalizesPerType(t *testing.T) {
	v4 := "\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\xff\xff\x0a\x00\x00\x01"
	long := strings.Repeat("0123456789ABCDEF", 3) // 48 bytes
	for _, tc := range []struct {
		name   string
		typ    KeyType
		keyLen int
		raw    string
		want   string // ignored when wantErr
		errHas string
	}{
		{"string kept", TypeString, 4, "abcd", "abcd", ""},
		{"string shorter kept", TypeString, 4, "ab", "ab", ""},
		{"string truncated", TypeString, 4, "abcdef", "abcd", ""},
		{"string default len truncates at 32", TypeString, 0, long, long[:32], ""},
		{"untyped is string", "", 3, "abcdef", "abc", ""},
		{"string empty", TypeString, 4, "", "", "empty key"},
		{"ipv4", TypeIP, 0, "10.0.0.1", v4, ""},
		{"ipv4-mapped ipv6 is the ipv4 key", TypeIP, 0, "::ffff:10.0.0.1", v4, ""},
		{"ipv4-mapped ipv6 in hex", TypeIP, 0, "::ffff:a00:1", v4, ""},
		{"ipv6", TypeIP, 0, "2001:db8::1", "\x20\x01\x0d\xb8" + strings.Repeat("\x00", 11) + "\x01", ""},
		{"ipv6 zone dropped", TypeIP, 0, "fe80::1%eth0", "\xfe\x80" + strings.Repeat("\x00", 13) + "\x01", ""},
		{"ip out of range", TypeIP, 0, "10.0.0.256", "", "ip key"},
		{"ip with port", TypeIP, 0, "10.0.0.1:80", "", "ip key"},
		{"ip host name", TypeIP, 0, "example.com", "", "ip key"},
		{"ip empty", TypeIP, 0, "", "", "empty key"},
		{"integer", TypeInteger, 0, "42", "\x00\x00\x00\x00\x00\x00\x00\x2a", ""},
		{"integer with plus is the same", TypeInteger, 0, "+42", "\x00\x00\x00\x00\x00\x00\x00\x2a", ""},
		{"negative integer", TypeInteger, 0, "-1", "\xff\xff\xff\xff\xff\xff\xff\xff", ""},
		{"integer junk", TypeInteger, 0, "4x", "", "integer key"},
		{"integer space", TypeInteger, 0, " 4", "", "integer key"},
		{"integer overflow", TypeInteger, 0, "9223372036854775808", "", "out of range"},
		{"unknown type", "ipv4", 0, "10.0.0.1", "", "unknown key type"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := Config{Type: tc.typ, KeyLen: tc.keyLen}
			got, err := c.Key(tc.raw)
			if tc.errHas != "" {
				if err == nil || !strings.Contains(err.Error(), tc.errHas) {
					t.Fatalf("Key(%q) = %q, %v; want an error with %q", tc.raw, got, err, tc.errHas)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("Key(%q) = %q, %v; want %q", tc.raw, got, err, tc.want)
			}
		})
	}
}

func TestConfig_SetDefaults(t *testing.T) {
	for _, tc := range []struct {
		in, want Config
	}{
		{Config{Name: "s"}, Config{Name: "s", Type: TypeString, Size: 100000, Expire: 30 * time.Minute, KeyLen: 32, RatePeriod: 10 * time.Second}},
		// ip and integer keys have a fixed length: no key_len is filled in.
		{Config{Name: "i", Type: TypeIP}, Config{Name: "i", Type: TypeIP, Size: 100000, Expire: 30 * time.Minute, RatePeriod: 10 * time.Second}},
		// What is set stays.
		{Config{Name: "x", Type: TypeString, Size: 5, Expire: time.Second, KeyLen: 7, RatePeriod: time.Minute},
			Config{Name: "x", Type: TypeString, Size: 5, Expire: time.Second, KeyLen: 7, RatePeriod: time.Minute}},
	} {
		got := tc.in
		got.SetDefaults()
		if got != tc.want {
			t.Errorf("SetDefaults(%+v) = %+v, want %+v", tc.in, got, tc.want)
		}
		if err := got.Validate(); err != nil {
			t.Errorf("defaults of %+v do not validate: %v", tc.in, err)
		}
	}
}

func TestConfig_ValidateReportsEveryProblem(t *testing.T) {
	valid := func(edit func(*Config)) Config {
		c := Config{Name: "t"}
		c.SetDefaults()
		edit(&c)
		return c
	}
	for _, tc := range []struct {
		name string
		c    Config
		want []string
	}{
		{"valid", valid(func(*Config) {}), nil},
		{"empty", Config{}, []string{
			"name: is required",
			`type: "" is not string, ip or integer`,
			"size: must be at least 1",
			"expire: must be positive",
			"rate_period: must be at least 1ms",
		}},
		{"too big", valid(func(c *Config) {
			c.Size, c.Expire, c.KeyLen = MaxSize+1, MaxExpire+time.Second, MaxKeyLen+1
		}), []string{
			"key_len: 1025 is outside 1..1024",
			"size: must be at most 1073741824",
			"expire: must be at most 8760h0m0s",
		}},
		{"too small", valid(func(c *Config) {
			c.Size, c.Expire, c.KeyLen, c.RatePeriod = -1, -time.Second, -1, time.Microsecond
		}), []string{
			"key_len: -1 is outside 1..1024",
			"size: must be at least 1",
			"expire: must be positive",
			"rate_period: must be at least 1ms",
		}},
		{"key_len on ip", valid(func(c *Config) { c.Type, c.KeyLen = TypeIP, 16 }), []string{
			"key_len: only string keys take a length (ip keys are 16 bytes, integer keys 8)",
		}},
		{"unknown type", valid(func(c *Config) { c.Type = "ipv6" }), []string{
			`type: "ipv6" is not string, ip or integer`,
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.c.Validate()
			var got []string
			if err != nil {
				got = strings.Split(err.Error(), "\n")
			}
			if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Errorf("Validate() =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
		})
	}
}
