package balancer

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"
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
	// Stick, when set, keeps clients on a server through a stick table.
	Stick *StickConfig `yaml:"stick"`
	// PassiveCheck, when set, rests servers that fail real requests.
	PassiveCheck *PassiveConfig `yaml:"passive_check"`
	// SlowStart is how long a server's weight takes to ramp up to its own
	// after it comes back (health or admin state), so a cold server is not
	// flooded; 0: at once.
	SlowStart time.Duration `yaml:"slow_start"`
	// QueueSize bounds the requests that wait when every server is at its
	// maxconn (default 1024); QueueTimeout bounds the wait (default 5s):
	// past either, 503.
	QueueSize    int           `yaml:"queue_size"`
	QueueTimeout time.Duration `yaml:"queue_timeout"`
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
	// MaxConn bounds the requests in flight on the server (0: no bound);
	// more wait in the backend's queue.
	MaxConn int `yaml:"maxconn"`
	// State is the administrative state at start: ready (default), drain or maint.
	State string `yaml:"state"`
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
	if c.PassiveCheck != nil {
		c.PassiveCheck.setDefaults()
	}
	if c.Stick != nil {
		c.Stick.setDefaults(c.Name)
	}
	if c.QueueSize == 0 {
		c.QueueSize = 1024
	}
	if c.QueueTimeout == 0 {
		c.QueueTimeout = 5 * time.Second
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
		if s.State == "" {
			s.State = "ready"
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
	if c.Stick != nil {
		errs = append(errs, c.Stick.validate()...)
	}
	if c.PassiveCheck != nil {
		if err := c.PassiveCheck.validate(); err != nil {
			errs = append(errs, err)
		}
	}
	if c.SlowStart < 0 || c.QueueSize < 0 || c.QueueTimeout < 0 {
		errs = append(errs, errors.New("slow_start, queue_size and queue_timeout must not be negative"))
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
		if s.MaxConn < 0 {
			errs = append(errs, fmt.Errorf("%s.maxconn: %d is negative", key, s.MaxConn))
		}
		if _, err := ParseState(s.State); s.State != "" && err != nil {
			errs = append(errs, fmt.Errorf("%s.state: %w", key, err))
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
