package sticktable

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"time"
)

// KeyType is what a table's keys are; it decides how Config.Key reads them.
type KeyType string

// The key types, as HAProxy's stick-table `type` names them.
const (
	// TypeString keys are byte strings of at most KeyLen bytes.
	TypeString KeyType = "string"
	// TypeIP keys are IPv4 and IPv6 addresses in one table, as HAProxy's
	// ipv6 type holds both.
	TypeIP KeyType = "ip"
	// TypeInteger keys are signed 64-bit integers.
	TypeInteger KeyType = "integer"
)

// Defaults, for what a table's configuration leaves out.
const (
	// DefaultSize suits a gateway's sessions without a noticeable footprint
	// (about 10 MB for string keys).
	DefaultSize = 100_000
	// DefaultExpire outlasts a typical web session's idle time.
	DefaultExpire = 30 * time.Minute
	// DefaultKeyLen is HAProxy's default `len` for string tables.
	DefaultKeyLen = 32
	// DefaultRatePeriod is the window of HAProxy's usual http_req_rate(10s).
	DefaultRatePeriod = 10 * time.Second
)

// Limits, which keep slot indices, key lengths and expiry arithmetic in
// range.
const (
	// MaxSize bounds Size: slot indices are 32 bits per shard.
	MaxSize = 1 << 30
	// MaxKeyLen bounds KeyLen, since every entry reserves KeyLen bytes.
	MaxKeyLen = 1024
	// MaxExpire bounds Expire, far below where nanosecond times overflow.
	MaxExpire = 365 * 24 * time.Hour
	// MinRatePeriod bounds RatePeriod below, as HAProxy's millisecond ticks do.
	MinRatePeriod = time.Millisecond
)

// Config describes one stick table.
type Config struct {
	// Name names the table; a shared store tells tables apart by it.
	Name string `yaml:"name"`
	// Type is the key type, string by default.
	Type KeyType `yaml:"type"`
	// Size bounds the entries; a new key beyond it evicts the least
	// recently used entry.
	Size int `yaml:"size"`
	// Expire is how long an entry lives without use.
	Expire time.Duration `yaml:"expire"`
	// KeyLen bounds string keys, in bytes: longer ones are truncated, as
	// HAProxy does. Only string tables take it.
	KeyLen int `yaml:"key_len"`
	// RatePeriod is the window ReqRate counts requests over.
	RatePeriod time.Duration `yaml:"rate_period"`
}

// SetDefaults fills the fields a user may leave out.
func (c *Config) SetDefaults() {
	if c.Type == "" {
		c.Type = TypeString
	}
	if c.Size == 0 {
		c.Size = DefaultSize
	}
	if c.Expire == 0 {
		c.Expire = DefaultExpire
	}
	if c.Type == TypeString && c.KeyLen == 0 {
		c.KeyLen = DefaultKeyLen
	}
	if c.RatePeriod == 0 {
		c.RatePeriod = DefaultRatePeriod
	}
}

// Validate reports every problem in the table, each as "key: message".
func (c *Config) Validate() error {
	var errs []error
	if c.Name == "" {
		errs = append(errs, errors.New("name: is required"))
	}
	switch c.Type {
	case TypeString:
		if c.KeyLen < 1 || c.KeyLen > MaxKeyLen {
			errs = append(errs, fmt.Errorf("key_len: %d is outside 1..%d", c.KeyLen, MaxKeyLen))
		}
	case TypeIP, TypeInteger:
		if c.KeyLen != 0 {
			errs = append(errs, errors.New("key_len: only string keys take a length (ip keys are 16 bytes, integer keys 8)"))
		}
	default:
		errs = append(errs, fmt.Errorf("type: %q is not string, ip or integer", c.Type))
	}
	if c.Size < 1 {
		errs = append(errs, errors.New("size: must be at least 1"))
	} else if c.Size > MaxSize {
		errs = append(errs, fmt.Errorf("size: must be at most %d", MaxSize))
	}
	if c.Expire <= 0 {
		errs = append(errs, errors.New("expire: must be positive"))
	} else if c.Expire > MaxExpire {
		errs = append(errs, fmt.Errorf("expire: must be at most %v", MaxExpire))
	}
	if c.RatePeriod < MinRatePeriod {
		errs = append(errs, fmt.Errorf("rate_period: must be at least %v", MinRatePeriod))
	}
	return errors.Join(errs...)
}

// Key turns a raw key (a cookie value, a client address, a number) into the
// table's key, so that one client is one key however it is spelt:
//   - ip: the 16-byte form, IPv4 mapped into IPv6, so 10.0.0.1 and
//     ::ffff:10.0.0.1 are one key (a zone is dropped);
//   - integer: the decimal int64 as 8 big-endian bytes;
//   - string: the first KeyLen bytes, as HAProxy truncates.
//
// An empty raw key is an error rather than a key, lest every client
// without, say, a session cookie share one entry.
func (c *Config) Key(raw string) (string, error) {
	if raw == "" {
		return "", errors.New("sticktable: empty key")
	}
	switch c.Type {
	case TypeIP:
		a, err := netip.ParseAddr(raw)
		if err != nil {
			return "", fmt.Errorf("sticktable: ip key: %w", err)
		}
		b := a.As16()
		return string(b[:]), nil
	case TypeInteger:
		v, err := strconv.ParseInt(raw, 10, 64)
		if err != nil {
			return "", fmt.Errorf("sticktable: integer key: %w", err)
		}
		var b [8]byte
		binary.BigEndian.PutUint64(b[:], uint64(v))
		return string(b[:]), nil
	case TypeString, "":
		if n := c.keyLen(); len(raw) > n {
			raw = raw[:n]
		}
		return raw, nil
	}
	return "", fmt.Errorf("sticktable: unknown key type %q", c.Type)
}

// Display is the inverse of Key: the form an operator reads and types
// (an IP address, a number, the string itself).
func (c *Config) Display(key string) string {
	switch {
	case c.Type == TypeIP && len(key) == 16:
		return netip.AddrFrom16([16]byte([]byte(key))).Unmap().String()
	case c.Type == TypeInteger && len(key) == 8:
		return strconv.FormatInt(int64(binary.BigEndian.Uint64([]byte(key))), 10)
	}
	return key
}

// keyLen is the bytes a key takes in the table; a zero KeyLen means the
// default, so Key agrees with a store built from a config without defaults.
func (c *Config) keyLen() int {
	switch c.Type {
	case TypeIP:
		return 16
	case TypeInteger:
		return 8
	}
	if c.KeyLen == 0 {
		return DefaultKeyLen
	}
	return c.KeyLen
}
