package balancer

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A signed persistence cookie is read only with its whole MAC: an empty,
// truncated or over-long one, or one in another case, names no server.
func TestCookie_SignedNeedsTheWholeMAC(t *testing.T) {
	key := filepath.Join(t.TempDir(), "key")
	if err := os.WriteFile(key, []byte("0123456789abcdef-signing-key\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	p := cookiePool(t, CookieConfig{SignKeyFile: key})
	now := time.Unix(1_800_000_000, 0)
	v := p.SetCookie(p.Server("a"), time.Time{}, now).Value
	i := strings.LastIndexByte(v, '|')
	dated, mac := v[:i+1], v[i+1:]
	if s := p.ReadCookie(dated+mac, now); s.Server != p.Server("a") {
		t.Fatalf("own signed value %q read as %+v", v, s)
	}
	for name, bad := range map[string]string{
		"empty MAC":      dated,
		"one character":  dated + mac[:1],
		"truncated MAC":  dated + mac[:len(mac)-1],
		"half the MAC":   dated + mac[:len(mac)/2],
		"MAC and more":   dated + mac + "A",
		"upper-case MAC": dated + strings.ToUpper(mac),
		"MAC twice":      dated + mac + "|" + mac,
	} {
		if bad == v {
			continue // upper-casing left it unchanged
		}
		if s := p.ReadCookie(bad, now); s.Server != nil {
			t.Errorf("%s: %q read as server %s", name, bad, s.Server.Name)
		}
	}
}
