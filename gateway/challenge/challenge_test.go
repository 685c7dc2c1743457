package challenge

import (
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

var (
	t0     = time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	chrome = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36"
	alice  = Client{Addr: netip.MustParseAddr("198.51.100.7"), UserAgent: chrome}
)

func testKeys() *Keys { return NewKeys([]byte(strings.Repeat("k", 32)), 24, 64) }

// solve finds the answer to token, as the page's script does.
func solve(t *testing.T, token string, difficulty int) string {
	t.Helper()
	for n := 0; n < 1<<24; n++ {
		sum := sha256.Sum256([]byte(token + ":" + strconv.Itoa(n)))
		if leadingZeroBits(sum[:]) >= difficulty {
			return strconv.Itoa(n)
		}
	}
	t.Fatal("no answer")
	return ""
}

func TestClearance_BoundToClientAndTime(t *testing.T) {
	k := testKeys()
	c := k.newClearance(alice, ModePoW, t0.Add(time.Hour))
	tests := []struct {
		name   string
		k      *Keys
		c      Client
		at     time.Time
		cookie string
		ok     bool
	}{
		{"as issued", k, alice, t0, c, true},
		{"same /24, other address", k, Client{Addr: netip.MustParseAddr("198.51.100.200"), UserAgent: chrome}, t0, c, true},
		{"IPv4-mapped form of the same address", k, Client{Addr: netip.MustParseAddr("::ffff:198.51.100.7"), UserAgent: chrome}, t0, c, true},
		{"another /24", k, Client{Addr: netip.MustParseAddr("198.51.101.7"), UserAgent: chrome}, t0, c, false},
		{"another browser", k, Client{Addr: alice.Addr, UserAgent: "curl/8.5.0"}, t0, c, false},
		{"another fingerprint", k, Client{Addr: alice.Addr, UserAgent: chrome, JA4: "t13d1516h2_8daaf6152771_b186095e22b6"}, t0, c, false},
		{"expired", k, alice, t0.Add(time.Hour), c, false},
		{"another fleet's key", NewKeys([]byte(strings.Repeat("x", 32)), 24, 64), alice, t0, c, false},
		{"truncated", k, alice, t0, c[:len(c)-1], false},
		{"one bit flipped", k, alice, t0, flip(c), false},
		{"empty", k, alice, t0, "", false},
	}
	for _, tt := range tests {
		if _, ok := tt.k.checkClearance(tt.cookie, tt.c, tt.at); ok != tt.ok {
			t.Errorf("%s: accepted %v, want %v", tt.name, ok, tt.ok)
		}
	}
}

// flip changes one bit of the expiry in an encoded clearance or token.
func flip(s string) string {
	b, _ := base64.RawURLEncoding.DecodeString(s)
	b[5] ^= 1
	return base64.RawURLEncoding.EncodeToString(b)
}

func TestKeys_PreviousKeyStillVerifies(t *testing.T) {
	k := testKeys()
	c := k.newClearance(alice, ModeJS, t0.Add(time.Hour))
	k.Set(RandomKey())
	if _, ok := k.checkClearance(c, alice, t0); !ok {
		t.Error("a clearance made with the previous key is refused")
	}
	k.Set(RandomKey())
	if _, ok := k.checkClearance(c, alice, t0); ok {
		t.Error("a clearance made two keys ago is accepted")
	}
}

func TestToken_Solves(t *testing.T) {
	k := testKeys()
	s := k.newToken(alice, ModePoW, 12, t0)
	tok, err := k.parseToken(s, alice, t0.Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	n := solve(t, s, 12)
	if !tok.solves(n) {
		t.Errorf("answer %s refused", n)
	}
	// Not decimal counters of at most 12 digits: refused whatever their hash.
	for _, bad := range []string{"", "-1", "1e3", "0x10", "+7", "1234567890123"} {
		if tok.solves(bad) {
			t.Errorf("answer %q accepted", bad)
		}
	}
	if _, err := k.parseToken(s, alice, t0.Add(TokenTTL+time.Second)); err == nil {
		t.Error("a token past its TTL is accepted")
	}
	if _, err := k.parseToken(s, Client{Addr: netip.MustParseAddr("203.0.113.1"), UserAgent: chrome}, t0); err == nil {
		t.Error("a token is accepted from another network")
	}
}

func newIssuer() *Issuer {
	return &Issuer{Keys: testKeys(), Cookie: "sekisho_clearance", TTL: time.Hour, Now: func() time.Time { return t0 }}
}

var tokenAttr = regexp.MustCompile(`data-token="([^"]+)"`)

func TestIssuer_PowRoundTrip(t *testing.T) {
	is := newIssuer()
	rule := Rule{Mode: ModePoW, Difficulty: 10}
	r := httptest.NewRequest("GET", "/shop/cart?x=1", nil)
	w := httptest.NewRecorder()
	if o := is.Serve(w, r, alice, rule, true); o.Decision != "challenge" {
		t.Fatalf("outcome %+v", o)
	}
	if w.Code != http.StatusForbidden || !strings.Contains(w.Body.String(), "<noscript>") {
		t.Fatalf("page: %d %s", w.Code, w.Body)
	}
	// The CSP allows exactly the page's script.
	body := w.Body.String()
	script := body[strings.Index(body, "<script>")+len("<script>") : strings.Index(body, "</script>")]
	sum := sha256.Sum256([]byte(script))
	if csp := w.Header().Get("Content-Security-Policy"); !strings.Contains(csp, base64.StdEncoding.EncodeToString(sum[:])) {
		t.Errorf("CSP %q does not name the script's hash", csp)
	}
	m := tokenAttr.FindStringSubmatch(body)
	if m == nil {
		t.Fatal("no token in the page")
	}
	answer := url.Values{"t": {m[1]}, "n": {solve(t, m[1], 10)}, "r": {"/shop/cart?x=1"}}
	w = httptest.NewRecorder()
	o := is.Serve(w, httptest.NewRequest("GET", VerifyPath+"?"+answer.Encode(), nil), alice, rule, true)
	if o.Decision != "cleared" || w.Code != http.StatusSeeOther || w.Header().Get("Location") != "/shop/cart?x=1" {
		t.Fatalf("answer: %+v %d %v", o, w.Code, w.Header())
	}
	cookie := w.Result().Cookies()[0]
	if cookie.Name != "sekisho_clearance" || !cookie.HttpOnly || !cookie.Secure || cookie.SameSite != http.SameSiteLaxMode {
		t.Errorf("cookie %+v", cookie)
	}
	next := httptest.NewRequest("GET", "/shop/cart", nil)
	next.AddCookie(cookie)
	if !is.Cleared(next, alice, rule) {
		t.Error("the clearance does not clear its client")
	}
	if is.Cleared(next, Client{Addr: netip.MustParseAddr("192.0.2.99"), UserAgent: chrome}, rule) {
		t.Error("the clearance clears another network")
	}
	// A wrong answer gets a new challenge, not a clearance.
	answer.Set("n", "1")
	if tok, _ := is.Keys.parseToken(m[1], alice, t0); tok.solves("1") {
		t.Skip("1 happens to solve this token")
	}
	w = httptest.NewRecorder()
	if o := is.Serve(w, httptest.NewRequest("GET", VerifyPath+"?"+answer.Encode(), nil), alice, rule, true); o.Decision != "challenge" || len(w.Result().Cookies()) != 0 {
		t.Errorf("wrong answer: %+v, cookies %v", o, w.Result().Cookies())
	}
}

func TestIssuer_LevelsAndModes(t *testing.T) {
	is := newIssuer()
	withCookie := func(m Mode) *http.Request {
		r := httptest.NewRequest("GET", "/", nil)
		r.AddCookie(&http.Cookie{Name: is.Cookie, Value: is.Keys.newClearance(alice, m, t0.Add(time.Hour))})
		return r
	}
	if !is.Cleared(withCookie(ModePoW), alice, Rule{Mode: ModeJS}) {
		t.Error("a pow clearance does not satisfy js")
	}
	if is.Cleared(withCookie(ModeCookie), alice, Rule{Mode: ModePoW}) {
		t.Error("a cookie clearance satisfies pow")
	}
	if !is.Cleared(withCookie(ModeCookie), alice, Rule{Mode: ModeStatus}) {
		t.Error("a clearance does not satisfy a 429 route")
	}
	w := httptest.NewRecorder()
	if o := is.Serve(w, httptest.NewRequest("GET", "/api/v1/items", nil), alice, Rule{Mode: ModeStatus}, false); o.Decision != "refused" || w.Code != 429 {
		t.Errorf("429 route: %+v %d", o, w.Code)
	}
	// A js token cannot answer a pow rule, nor a lighter pow one a harder one.
	js := is.Keys.newToken(alice, ModeJS, jsDifficulty, t0)
	q := url.Values{"t": {js}, "n": {solve(t, js, jsDifficulty)}, "r": {"/"}}
	w = httptest.NewRecorder()
	if o := is.Serve(w, httptest.NewRequest("GET", VerifyPath+"?"+q.Encode(), nil), alice, Rule{Mode: ModePoW}, false); o.Decision == "cleared" {
		t.Error("a js answer cleared a pow rule")
	}
}

func TestIssuer_CookieMode(t *testing.T) {
	is := newIssuer()
	rule := Rule{Mode: ModeCookie}
	w := httptest.NewRecorder()
	is.Serve(w, httptest.NewRequest("GET", "/page?a=1", nil), alice, rule, false)
	if w.Code != http.StatusFound || w.Header().Get("Location") != "/page?a=1" {
		t.Fatalf("first step: %d %v", w.Code, w.Header())
	}
	back := httptest.NewRequest("GET", "/page?a=1", nil)
	back.AddCookie(w.Result().Cookies()[0])
	w = httptest.NewRecorder()
	if o := is.Serve(w, back, alice, rule, false); o.Decision != "cleared" || w.Code != http.StatusFound {
		t.Fatalf("second step: %+v %d", o, w.Code)
	}
	var clearance *http.Cookie
	for _, c := range w.Result().Cookies() {
		if c.Name == is.Cookie {
			clearance = c
		}
	}
	r := httptest.NewRequest("GET", "/page", nil)
	r.AddCookie(clearance)
	if !is.Cleared(r, alice, rule) {
		t.Error("the cookie check's clearance does not clear")
	}
}

func TestReturnTo(t *testing.T) {
	for in, want := range map[string]string{
		"/a/b?c=d":             "/a/b?c=d",
		"":                     "/",
		"//evil.example/x":     "/",
		"/\\evil.example":      "/",
		"https://evil.example": "/",
		"javascript:alert(1)":  "/",
		"/a\r\nSet-Cookie: x":  "/",
		"relative":             "/",
	} {
		if got := returnTo(in); got != want {
			t.Errorf("returnTo(%q) = %q, want %q", in, got, want)
		}
	}
}

func FuzzClearance(f *testing.F) {
	k := testKeys()
	f.Add(k.newClearance(alice, ModePoW, t0.Add(time.Hour)))
	f.Add(k.newToken(alice, ModePoW, 16, t0))
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		genuine := s == k.newClearance(alice, ModePoW, t0.Add(time.Hour)) // deterministic: no nonce
		if _, ok := k.checkClearance(s, alice, t0); ok && !genuine {
			t.Errorf("forged clearance %q accepted", s)
		}
		if tok, err := k.parseToken(s, alice, t0); err == nil {
			tok.solves(s)
		}
	})
}

func FuzzReturnTo(f *testing.F) {
	for _, s := range []string{"/", "//x", "/\\x", "/a?b", "\x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := returnTo(s)
		if got[0] != '/' || strings.HasPrefix(got, "//") || strings.HasPrefix(got, "/\\") || strings.ContainsAny(got, "\r\n") {
			t.Errorf("returnTo(%q) = %q", s, got)
		}
	})
}

func BenchmarkCleared(b *testing.B) {
	is := newIssuer()
	r := httptest.NewRequest("GET", "/", nil)
	r.AddCookie(&http.Cookie{Name: is.Cookie, Value: is.Keys.newClearance(alice, ModePoW, t0.Add(time.Hour))})
	for b.Loop() {
		if !is.Cleared(r, alice, Rule{Mode: ModePoW}) {
			b.Fatal("not cleared")
		}
	}
}
