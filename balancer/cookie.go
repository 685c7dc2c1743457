package balancer

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"

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

// cookieValues sets each server's persistence cookie value.
func (p *Pool) cookieValues(c *CookieConfig, configured []string) error {
	var key []byte
	if c.DynamicKeyFile != "" {
		b, err := os.ReadFile(c.DynamicKeyFile)
		if err != nil {
			return fmt.Errorf("cookie.dynamic_key_file: %w", err)
		}
		key = []byte(strings.TrimRight(string(b), "\r\n"))
	}
	for i, s := range p.servers {
		switch {
		case key != nil:
			v, err := DynamicCookie(key, s.Address)
			if err != nil {
				return fmt.Errorf("servers[%d]: %w", i, err)
			}
			s.cookie = v
		case configured[i] != "":
			s.cookie = configured[i]
		default:
			s.cookie = s.Name
		}
	}
	return nil
}

// Cookie returns the pool's persistence cookie settings, or nil.
func (p *Pool) Cookie() *CookieConfig { return p.cookie }

// ByCookie returns the usable server whose cookie value is v, or nil.
func (p *Pool) ByCookie(v string) *Server {
	for _, s := range p.servers {
		if s.cookie == v && s.cookie != "" && (s.usable() || State(s.state.Load()) == Drain && !s.down.Load()) {
			// A draining server keeps the sessions it has.
			return s
		}
	}
	return nil
}

// SetCookie is the Set-Cookie that sends the client's next requests to s.
func (p *Pool) SetCookie(s *Server) *http.Cookie {
	c := p.cookie
	hc := &http.Cookie{Name: c.Name, Value: s.cookie, Path: "/", HttpOnly: c.HTTPOnly, Secure: c.Secure}
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

// CookieValue is the server's persistence cookie value.
func (s *Server) CookieValue() string { return s.cookie }
