package balancer

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The vectors were computed apart from this code, with xxhsum -H1 (Debian's
// xxhash) over key || address bytes || big-endian 32-bit port, as HAProxy's
// srv_set_dyncookie does.
func TestDynamicCookie_MatchesHAProxy(t *testing.T) {
	for _, tc := range []struct{ key, addr, want string }{
		{"secret-key-42", "10.0.1.10:8080", "414c27695d4b5754"},
		{"secret-key-42", "[2001:db8::10]:443", "fda3e0244f3e193a"},
		{"", "192.168.0.1:80", "49203b97e2ba4958"},
	} {
		got, err := DynamicCookie([]byte(tc.key), tc.addr)
		if err != nil || got != tc.want {
			t.Errorf("DynamicCookie(%q, %s) = %s, %v; want %s", tc.key, tc.addr, got, err, tc.want)
		}
	}
	if _, err := DynamicCookie([]byte("k"), "app.internal:80"); err == nil {
		t.Error("a host name was accepted: HAProxy hashes the IP")
	}
}

func cookiePool(t *testing.T, c CookieConfig) *Pool {
	t.Helper()
	w := 1
	c.Name = "SRV"
	p, err := New(Config{Name: "app", Cookie: &c, Servers: []ServerConfig{
		{Name: "a", Address: "10.0.0.1:80", Weight: &w}, {Name: "b", Address: "10.0.0.2:80", Weight: &w},
	}})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// A dated cookie names its server until it has been idle for maxidle or
// lived for maxlife; its idle date is rewritten once a quarter of maxidle
// has passed, keeping the first date.
func TestCookie_MaxIdleAndMaxLife(t *testing.T) {
	p := cookiePool(t, CookieConfig{MaxIdle: time.Hour, MaxLife: 8 * time.Hour})
	b := p.Server("b")
	t0 := time.Unix(1_800_000_000, 0)
	v := p.SetCookie(b, time.Time{}, t0).Value
	if !strings.HasPrefix(v, "b|") {
		t.Fatalf("value %q", v)
	}
	for _, tc := range []struct {
		at          time.Duration
		server      *Server
		fresh       bool
		description string
	}{
		{time.Minute, b, true, "just issued"},
		{20 * time.Minute, b, false, "idle date due for a refresh"},
		{59 * time.Minute, b, false, "nearly idle too long"},
		{61 * time.Minute, nil, false, "idle past maxidle"},
	} {
		got := p.ReadCookie(v, t0.Add(tc.at))
		if got.Server != tc.server || got.Fresh != tc.fresh {
			t.Errorf("%s: %+v", tc.description, got)
		}
	}
	// Refreshed every 50 minutes, the session still ends at maxlife.
	first := t0
	for at := time.Duration(0); at < 9*time.Hour; at += 50 * time.Minute {
		s := p.ReadCookie(v, t0.Add(at))
		if at > 8*time.Hour {
			if s.Server != nil {
				t.Fatalf("session alive at %s, past maxlife", at)
			}
			break
		}
		if s.Server != b || !s.First.Equal(first) {
			t.Fatalf("at %s: %+v", at, s)
		}
		v = p.SetCookie(b, s.First, t0.Add(at)).Value
	}
	if p.ReadCookie("b", t0).Server != nil {
		t.Error("an undated value accepted where dates are required")
	}
}

// A signed cookie cannot be forged: another server's name, a moved date
// or a value signed under another key are all ignored.
func TestCookie_SignedCannotBeForged(t *testing.T) {
	dir := t.TempDir()
	key := filepath.Join(dir, "key")
	os.WriteFile(key, []byte("0123456789abcdef-signing-key\n"), 0o600)
	p := cookiePool(t, CookieConfig{SignKeyFile: key})
	now := time.Unix(1_800_000_000, 0)
	v := p.SetCookie(p.Server("a"), time.Time{}, now).Value
	if s := p.ReadCookie(v, now); s.Server != p.Server("a") || !s.Fresh {
		t.Fatalf("own signed value read as %+v", s)
	}
	parts := strings.Split(v, "|")
	if len(parts) != 4 {
		t.Fatalf("signed value %q", v)
	}
	forged := []string{
		"b|" + parts[1] + "|" + parts[2] + "|" + parts[3],
		parts[0] + "|" + parts[1] + "|0|" + parts[3],
		parts[0] + "|" + parts[1] + "|" + parts[2] + "|" + strings.Repeat("A", len(parts[3])),
		parts[0] + "|" + parts[1] + "|" + parts[2],
		"a",
	}
	other := filepath.Join(dir, "other")
	os.WriteFile(other, []byte("another-key-of-16-bytes"), 0o600)
	forged = append(forged, cookiePool(t, CookieConfig{SignKeyFile: other}).SetCookie(p.Server("b"), time.Time{}, now).Value)
	for _, f := range forged {
		if s := p.ReadCookie(f, now); s.Server != nil {
			t.Errorf("forged %q read as server %s", f, s.Server.Name)
		}
	}
	os.WriteFile(key, []byte("short"), 0o600)
	w := 1
	if _, err := New(Config{Name: "app", Cookie: &CookieConfig{Name: "SRV", SignKeyFile: key}, Servers: []ServerConfig{{Address: "10.0.0.1:80", Weight: &w}}}); err == nil || !strings.Contains(err.Error(), "cookie.sign_key_file") {
		t.Errorf("a 5-byte signing key: %v", err)
	}
}
