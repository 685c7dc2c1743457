package balancer

import (
	"errors"
	"fmt"
	"net"
	"strconv"
)

// Config describes one backend: a named pool of servers and how to choose among them.
type Config struct {
	Name    string         `yaml:"name"`
	Balance string         `yaml:"balance"`
	Servers []ServerConfig `yaml:"servers"`
	// HealthCheck, when set, checks each server actively.
	HealthCheck *HealthConfig `yaml:"health_check"`
	// Cookie, when set, keeps a client on one server with an inserted cookie.
	Cookie *CookieConfig `yaml:"cookie"`
}

// ServerConfig is one server of a backend.
type ServerConfig struct {
	Name    string `yaml:"name"`
	Address string `yaml:"address"`
	// Weight is the server's share of traffic, 0 to 256 (0 takes no new requests).
	// A missing weight means 1.
	Weight *int `yaml:"weight"`
	// Backup servers take requests only when no other server is usable.
	Backup bool `yaml:"backup"`
	// Cookie is the server's persistence cookie value (default its name;
	// ignored with a dynamic cookie key).
	Cookie string `yaml:"cookie"`
}

// MaxWeight is the largest accepted server weight (HAProxy's limit).
const MaxWeight = 256

// SetDefaults fills the fields a user may leave out.
func (c *Config) SetDefaults() {
	if c.Balance == "" {
		c.Balance = "roundrobin"
	}
	if c.HealthCheck != nil {
		c.HealthCheck.SetDefaults()
	}
	for i := range c.Servers {
		s := &c.Servers[i]
		if s.Name == "" {
			s.Name = "s" + strconv.Itoa(i+1)
		}
		if s.Weight == nil {
			w := 1
			s.Weight = &w
		}
	}
}

// Validate reports every problem in the backend, each as "key.path: message"
// relative to the backend.
func (c *Config) Validate() error {
	var errs []error
	if c.Name == "" {
		errs = append(errs, errors.New("name: is required"))
	}
	known := false
	for _, a := range Algorithms {
		known = known || a == c.Balance
	}
	if !known {
		errs = append(errs, fmt.Errorf("balance: unknown algorithm %q (want one of %v)", c.Balance, Algorithms))
	}
	if len(c.Servers) == 0 {
		errs = append(errs, errors.New("servers: at least one server is required"))
	}
	if c.HealthCheck != nil {
		if err := c.HealthCheck.Validate(); err != nil {
			errs = append(errs, err)
		}
	}
	if c.Cookie != nil {
		errs = append(errs, c.Cookie.validate()...)
	}
	names := map[string]bool{}
	for i, s := range c.Servers {
		key := fmt.Sprintf("servers[%d]", i)
		if names[s.Name] {
			errs = append(errs, fmt.Errorf("%s.name: duplicate server name %q", key, s.Name))
		}
		names[s.Name] = true
		if err := checkAddress(s.Address); err != nil {
			errs = append(errs, fmt.Errorf("%s.address: %w", key, err))
		}
		if s.Weight != nil && (*s.Weight < 0 || *s.Weight > MaxWeight) {
			errs = append(errs, fmt.Errorf("%s.weight: %d is outside 0..%d", key, *s.Weight, MaxWeight))
		}
	}
	return errors.Join(errs...)
}

func checkAddress(addr string) error {
	if addr == "" {
		return errors.New("is required (host:port)")
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%q is not host:port", addr)
	}
	if host == "" {
		return fmt.Errorf("%q has no host", addr)
	}
	if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
		return fmt.Errorf("%q has an invalid port", addr)
	}
	return nil
}
