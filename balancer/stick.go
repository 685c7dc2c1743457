package balancer

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/sekisho/sekisho/balancer/sticktable"
)

// StickConfig keeps clients on a server through a stick table, as
// HAProxy's `stick on src` or `stick on req.cook(X)` with `stick
// store-response res.cook(X)` do.
type StickConfig struct {
	// On is "src" (the client IP), "cookie" (an application cookie such
	// as JSESSIONID: learnt from the servers' Set-Cookie, looked up in the
	// requests' Cookie, whatever the client's address), "ja4" (the client's
	// TLS fingerprint) or "src+ja4" (both: one client behind a shared address).
	On string `yaml:"on"`
	// Cookie names the application cookie for on: cookie.
	Cookie string `yaml:"cookie"`
	// Table sizes the table: size, expire (refreshed on use), key_len,
	// rate_period. Its name is the backend's, its key type follows On.
	Table sticktable.Config `yaml:"table"`
}

func (c *StickConfig) setDefaults(backend string) {
	if c.Table.Name == "" {
		c.Table.Name = backend
	}
	if c.Table.Type == "" && c.On == "src" {
		c.Table.Type = sticktable.TypeIP
	}
	if c.Table.KeyLen == 0 && (c.On == "ja4" || c.On == "src+ja4") {
		c.Table.KeyLen = sticktable.ClientKeyLen
	}
	c.Table.SetDefaults()
}

func (c *StickConfig) validate() []error {
	var errs []error
	switch c.On {
	case "src", "ja4", "src+ja4":
		if c.Cookie != "" {
			errs = append(errs, errors.New("stick.cookie: only for on: cookie"))
		}
	case "cookie":
		if c.Cookie == "" || strings.ContainsAny(c.Cookie, " ;,=\t\r\n\"") {
			errs = append(errs, fmt.Errorf("stick.cookie: %q is not a cookie name", c.Cookie))
		}
	default:
		errs = append(errs, fmt.Errorf("stick.on: %q is not src, cookie, ja4 or src+ja4", c.On))
	}
	if err := c.Table.Validate(); err != nil {
		list := []error{err}
		if j, ok := err.(interface{ Unwrap() []error }); ok {
			list = j.Unwrap()
		}
		for _, e := range list {
			errs = append(errs, fmt.Errorf("stick.table.%w", e))
		}
	}
	return errs
}

// stick is a pool's stick table and how it is keyed.
type stick struct {
	cfg   StickConfig
	store sticktable.Store
}

// UseStickStore replaces the pool's stick table store (an in-memory one by
// default), for a store shared by several replicas; call it before serving.
func (p *Pool) UseStickStore(s sticktable.Store) { p.stick.store = s }

// StickStore returns the pool's stick table store, or nil without one.
func (p *Pool) StickStore() sticktable.Store {
	if p.stick == nil {
		return nil
	}
	return p.stick.store
}

// StickTable returns the pool's stick table settings, or nil without one.
func (p *Pool) StickTable() *StickConfig {
	if p.stick == nil {
		return nil
	}
	return &p.stick.cfg
}

// StickKey is the request's key in the pool's stick table: its client IP,
// the value of its application cookie, its TLS fingerprint (ja4, "" over
// plain HTTP) or both; "" when it has none.
func (p *Pool) StickKey(clientIP, ja4 string, r *http.Request) string {
	st := p.stick
	if st == nil {
		return ""
	}
	raw, ok := sticktable.ClientKey(st.cfg.On, clientIP, ja4)
	if st.cfg.On == "cookie" {
		c, err := r.Cookie(st.cfg.Cookie)
		if err != nil {
			return ""
		}
		raw, ok = c.Value, true
	}
	if !ok {
		return "" // no fingerprint to stick on
	}
	key, err := st.cfg.Table.Key(raw)
	if err != nil {
		return ""
	}
	return key
}

// Stuck returns the server the table keeps key on (refreshing the entry),
// or nil. A store that fails is a miss: the policy picks, and Learn tries
// again after the response.
func (p *Pool) Stuck(ctx context.Context, key string) *Server {
	if key == "" {
		return nil
	}
	e, ok, err := p.stick.store.Lookup(ctx, key)
	if err != nil || !ok {
		return nil
	}
	return p.byName[e.Server]
}

// Learn records what a response teaches the table: the server s that
// answered now holds the request's key (when it was another, or none),
// and with on: cookie, every value of the application cookie that the
// response sets. Each is a swap from what the request was routed by: a
// table that holds another server than that keeps it, as the request's
// lookup may have failed (a shared table timing out is a miss here, not
// an absence) or another replica may have stored it meanwhile, and the
// key's later requests go there. The first store error is returned, for
// the log.
func (p *Pool) Learn(ctx context.Context, key string, was, s *Server, h http.Header) error {
	st := p.stick
	if st == nil || s == nil {
		return nil
	}
	var errs []error
	if key != "" && was != s {
		old := ""
		if was != nil {
			old = was.Name
		}
		_, err := st.store.Swap(ctx, key, old, s.Name)
		errs = append(errs, err)
	}
	if st.cfg.On == "cookie" {
		prefix := st.cfg.Cookie + "="
		for _, line := range h["Set-Cookie"] {
			if !strings.HasPrefix(strings.TrimLeft(line, " "), prefix) {
				continue
			}
			c, err := http.ParseSetCookie(line)
			if err != nil || c.Value == "" || deleted(c) {
				continue // a deleted session teaches nothing
			}
			if k, err := st.cfg.Table.Key(c.Value); err == nil && k != key {
				_, err := st.store.Swap(ctx, k, "", s.Name)
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// deleted says whether a Set-Cookie removes its cookie: Max-Age 0 or less,
// or, without Max-Age (which wins when both are set, RFC 6265 5.3), an
// Expires in the past, as frameworks that predate Max-Age delete cookies.
func deleted(c *http.Cookie) bool {
	return c.MaxAge < 0 || c.MaxAge == 0 && !c.Expires.IsZero() && !c.Expires.After(time.Now())
}
