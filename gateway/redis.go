package gateway

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sekisho/sekisho/gateway/config"
)

// newRedisClient builds the one Redis client the replica shares its state
// through. Connection trouble is not an error here: the stores fall back to
// local tables and the client reconnects by itself. An offline client
// (Options.Offline) refuses every dial.
func newRedisClient(c config.Redis, offline bool) (redis.UniversalClient, error) {
	password, err := secret(c.PasswordFile, config.RedisPasswordEnv)
	if err != nil {
		return nil, fmt.Errorf("redis.password_file: %w", err)
	}
	sentinelPassword, err := secret(c.SentinelPasswordFile, "")
	if err != nil {
		return nil, fmt.Errorf("redis.sentinel_password_file: %w", err)
	}
	var tlsConfig *tls.Config
	if c.TLS != nil {
		if tlsConfig, err = redisTLS(*c.TLS); err != nil {
			return nil, err
		}
	}
	// Calls are bounded by the stores' contexts (Timeout); dialing is
	// bounded too, so a dead address costs a request no more than that.
	dial := max(c.Timeout, 200*time.Millisecond)
	var dialer func(context.Context, string, string) (net.Conn, error) // nil: go-redis dials
	if offline {
		dialer = func(context.Context, string, string) (net.Conn, error) {
			return nil, errors.New("redis: not dialed (offline: sekisho validate)")
		}
	}
	switch {
	case c.Cluster:
		return redis.NewClusterClient(&redis.ClusterOptions{
			Addrs: c.Addresses, Username: c.Username, Password: password, TLSConfig: tlsConfig,
			DialTimeout: dial, ContextTimeoutEnabled: true, MaxRetries: 1, Dialer: dialer,
		}), nil
	case c.MasterName != "":
		return redis.NewFailoverClient(&redis.FailoverOptions{
			MasterName: c.MasterName, SentinelAddrs: c.Addresses, SentinelPassword: sentinelPassword,
			Username: c.Username, Password: password, DB: c.DB, TLSConfig: tlsConfig,
			DialTimeout: dial, ContextTimeoutEnabled: true, MaxRetries: 1, Dialer: dialer,
		}), nil
	}
	return redis.NewClient(&redis.Options{
		Addr: c.Addresses[0], Username: c.Username, Password: password, DB: c.DB, TLSConfig: tlsConfig,
		DialTimeout: dial, ContextTimeoutEnabled: true, MaxRetries: 1, Dialer: dialer,
	}), nil
}

// secret reads a secret from a file, or else from the environment variable
// env; "" when neither is set.
func secret(file, env string) (string, error) {
	if file == "" {
		if env == "" {
			return "", nil
		}
		return os.Getenv(env), nil
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return "", err
	}
	return strings.TrimRight(string(b), "\r\n"), nil
}

func redisTLS(c config.RedisTLS) (*tls.Config, error) {
	t := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: c.ServerName}
	if c.CAFile != "" {
		pem, err := os.ReadFile(c.CAFile)
		if err != nil {
			return nil, fmt.Errorf("redis.tls.ca_file: %w", err)
		}
		t.RootCAs = x509.NewCertPool()
		if !t.RootCAs.AppendCertsFromPEM(pem) {
			return nil, errors.New("redis.tls.ca_file: no PEM certificate in " + c.CAFile)
		}
	}
	if c.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("redis.tls.cert_file: %w", err)
		}
		t.Certificates = []tls.Certificate{cert}
	}
	return t, nil
}
