package balancer

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/cespare/xxhash/v2"
)

// CookieConfig is persistence by a cookie the gateway inserts (HAProxy's
// `cookie NAME insert`): the client's next requests go to the same server.
type CookieConfig struct {
	Name string `yaml:"name"`
	// Indirect removes the cookie from requests before they reach a server.
	Indirect bool `yaml:"indirect"`
	// NoCache marks responses that set the cookie "Cache-Control: private",
	// so a shared cache does not hand one client's server to others.
	NoCache  bool   `yaml:"nocache"`
	HTTPOnly bool   `yaml:"httponly"`
	Secure   bool   `yaml:"secure"`
	SameSite string `yaml:"samesite"` // Lax, Strict or None
	// DynamicKeyFile holds HAProxy's dynamic-cookie-key: each server's
	// value is then XXH64(key, IP, port) as HAProxy computes it, the same
	// on every replica, and sessions survive a move from HAProxy. Without
	// it, a server's value is its `cookie` setting, or its name.
	DynamicKeyFile string `yaml:"dynamic_key_file"`
	// MaxIdle and MaxLife, as HAProxy's: a cookie not seen for MaxIdle, or
	// issued more than MaxLife ago, is ignored and replaced. The value then
	// carries the two dates: "server|last|first".
	MaxIdle time.Duration `yaml:"maxidle"`
	MaxLife time.Duration `yaml:"maxlife"`
	// SignKeyFile, when set, signs the value with an HMAC-SHA256 of the
	// server and the dates under this key ("server|last|first|mac"): a
	// client can neither pick a server nor stretch its dates. Every replica
	// needs the same key.
	SignKeyFile string `yaml:"sign_key_file"`
}

func (c *CookieConfig) validate() []error {
	var errs []error
	if c.Name == "" || strings.ContainsAny(c.Name, " ;,=\t\r\n\"") {
		errs = append(errs, fmt.Errorf("cookie.name: %q is not a cookie name", c.Name))
	}
	switch c.SameSite {
	case "", "Lax", "Strict", "None":
	default:
		errs = append(errs, fmt.Errorf("cookie.samesite: %q is not Lax, Strict or None", c.SameSite))
	}
	if c.SameSite == "None" && !c.Secure {
		errs = append(errs, errors.New("cookie.samesite: None needs secure: true (browsers refuse it otherwise)"))
	}
	if c.MaxIdle < 0 || c.MaxLife < 0 {
		errs = append(errs, errors.New("cookie: maxidle and maxlife must not be negative"))
	}
	return errs
}

// DynamicCookie is HAProxy's dynamic cookie value for a server: the XXH64
// (seed 0) of the key, the IP address in network byte order (4 bytes for
// IPv4, 16 for IPv6) and the port as a 32-bit big-endian integer, as 16
// lowercase hex digits.
func DynamicCookie(key []byte, address string) (string, error) {
	host, port, err := net.SplitHostPort(address)
	if err != nil {
		return "", err
	}
	ip := net.ParseIP(host)
	if ip == nil {
		return "", fmt.Errorf("dynamic cookies need an IP address, not %q", host)
	}
	if v4 := ip.To4(); v4 != nil {
		ip = v4
	}
	p, err := strconv.Atoi(port)
	if err != nil {
		return "", err
	}
	buf := append(append([]byte(nil), key...), ip...)
	buf = binary.BigEndian.AppendUint32(buf, uint32(p))
	return fmt.Sprintf("%016x", xxhash.Sum64(buf)), nil
}

// cookieCodec writes and reads a pool's persistence cookie values.
type cookieCodec struct {
	CookieConfig
	signKey []byte // nil: unsigned
	dated   bool   // values carry the dates
}

// cookieValues sets each server's persistence cookie value and returns the
// pool's codec.
func (p *Pool) cookieValues(c *CookieConfig, configured []string) (*cookieCodec, error) {
	codec := &cookieCodec{CookieConfig: *c}
	var key []byte
	if c.DynamicKeyFile != "" {
		b, err := readKey(c.DynamicKeyFile)
		if err != nil {
			return nil, fmt.Errorf("cookie.dynamic_key_file: %w", err)
		}
		key = b
	}
	if c.SignKeyFile != "" {
		b, err := readKey(c.SignKeyFile)
		if err != nil {
			return nil, fmt.Errorf("cookie.sign_key_file: %w", err)
		}
		if len(b) < 16 {
			return nil, fmt.Errorf("cookie.sign_key_file: %s holds %d bytes; a signing key needs at least 16", c.SignKeyFile, len(b))
		}
		codec.signKey = b
	}
	codec.dated = c.MaxIdle > 0 || c.MaxLife > 0 || codec.signKey != nil
	for i, s := range p.servers {
		switch {
		case key != nil:
			v, err := DynamicCookie(key, s.Address)
			if err != nil {
				return nil, fmt.Errorf("servers[%d]: %w", i, err)
			}
			s.cookie = v
		case configured[i] != "":
			s.cookie = configured[i]
		default:
			s.cookie = s.Name
		}
		if strings.ContainsAny(s.cookie, "|;, \t\"\\") {
			return nil, fmt.Errorf("servers[%d].cookie: %q may not hold | ; , a space or a quote", i, s.cookie)
		}
	}
	return codec, nil
}

// readKey reads a secret from a file, without its line end.
func readKey(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return []byte(strings.TrimRight(string(b), "\r\n")), nil
}

// Cookie returns the pool's persistence cookie settings, or nil.
func (p *Pool) Cookie() *CookieConfig {
	if p.cookie == nil {
		return nil
	}
	return &p.cookie.CookieConfig
}

// Session is what a client's persistence cookie says.
type Session struct {
	// Server is the server the cookie names; nil when the cookie is
	// unknown, expired or forged. Take decides whether it may still serve.
	Server *Server
	// First is when the session's cookie was first issued (dated cookies).
	First time.Time
	// Fresh means the cookie needs no refresh: it stays as the client has it.
	Fresh bool
}

// ReadCookie reads a persistence cookie's value as the client sent it.
func (p *Pool) ReadCookie(v string, now time.Time) Session {
	c := p.cookie
	name, last, first := v, time.Time{}, time.Time{}
	if c.dated {
		parts := strings.Split(v, "|")
		if len(parts) != 3+btoi(c.signKey != nil) {
			return Session{}
		}
		if c.signKey != nil && !hmac.Equal([]byte(parts[3]), []byte(c.mac(parts[0], parts[1], parts[2]))) {
			return Session{}
		}
		l, err1 := strconv.ParseInt(parts[1], 36, 64)
		f, err2 := strconv.ParseInt(parts[2], 36, 64)
		if err1 != nil || err2 != nil {
			return Session{}
		}
		name, last, first = parts[0], time.Unix(l, 0), time.Unix(f, 0)
		if c.MaxIdle > 0 && now.Sub(last) > c.MaxIdle || c.MaxLife > 0 && now.Sub(first) > c.MaxLife {
			return Session{} // expired: ignored, and replaced by the response
		}
	}
	for _, s := range p.servers {
		if s.cookie == name {
			// The idle date is rewritten once a quarter of maxidle has passed,
			// not on every response.
			fresh := c.MaxIdle == 0 || now.Sub(last) < c.MaxIdle/4
			return Session{Server: s, First: first, Fresh: fresh}
		}
	}
	return Session{}
}

// SetCookie is the Set-Cookie that sends the client's next requests to s;
// first is when the session began (zero: now).
func (p *Pool) SetCookie(s *Server, first, now time.Time) *http.Cookie {
	c := p.cookie
	v := s.cookie
	if c.dated {
		if first.IsZero() {
			first = now
		}
		l, f := strconv.FormatInt(now.Unix(), 36), strconv.FormatInt(first.Unix(), 36)
		v += "|" + l + "|" + f
		if c.signKey != nil {
			v += "|" + c.mac(s.cookie, l, f)
		}
	}
	hc := &http.Cookie{Name: c.Name, Value: v, Path: "/", HttpOnly: c.HTTPOnly, Secure: c.Secure}
	switch c.SameSite {
	case "Lax":
		hc.SameSite = http.SameSiteLaxMode
	case "Strict":
		hc.SameSite = http.SameSiteStrictMode
	case "None":
		hc.SameSite = http.SameSiteNoneMode
	}
	return hc
}

// mac is the signature of a dated value: 128 bits of HMAC-SHA256, base64url.
func (c *cookieCodec) mac(server, last, first string) string {
	m := hmac.New(sha256.New, c.signKey)
	m.Write([]byte(server + "|" + last + "|" + first))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil)[:16])
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// CookieValue is the server's persistence cookie value.
func (s *Server) CookieValue() string { return s.cookie }
