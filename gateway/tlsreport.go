package gateway

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/sekisho/sekisho/certs"
	"github.com/sekisho/sekisho/gateway/accesslog"
)

// TLSReport is what a frontend's TLS listeners saw: the handshakes below
// its policy (which complete only in observe mode) by version, cipher and
// client IP, and the failed handshakes by reason.
type TLSReport struct {
	Below  []BelowPolicy
	Failed map[string]uint64
}

// BelowPolicy counts handshakes below the policy from one client IP with
// one version and cipher. Past maxBelowKeys distinct keys, new client IPs
// count as "other".
type BelowPolicy struct {
	Version, Cipher, ClientIP, Reason string
	Count                             uint64
}

const (
	maxBelowKeys  = 10000
	logsPerSecond = 10 // handshake log lines per frontend and second; the rest are counted
)

// tlsWatch counts and logs one frontend's handshakes.
type tlsWatch struct {
	frontend string
	policy   *certs.Policy
	metrics  *metrics
	log      zerolog.Logger

	mu     sync.Mutex
	below  map[BelowPolicy]uint64 // Count unused in the key
	failed map[string]uint64
	logs   logBudget
	usage  *tlsUsage
}

func newTLSWatch(frontend string, p *certs.Policy, m *metrics, log zerolog.Logger) *tlsWatch {
	return &tlsWatch{frontend: frontend, policy: p, metrics: m, log: log, below: map[BelowPolicy]uint64{}, failed: map[string]uint64{}, usage: newTLSUsage()}
}

// handshake counts a completed TCP handshake and records it when it is
// below the policy.
func (w *tlsWatch) handshake(st *tls.ConnectionState, remote net.Addr) {
	w.metrics.handshake(w.frontend, "tcp", st)
	w.usage.count(st, remote)
	reason := w.policy.Below(st)
	if reason == "" {
		return
	}
	ip, _ := splitHostPort(remote.String())
	k := BelowPolicy{Version: accesslog.TLSVersion(st.Version), Cipher: tls.CipherSuiteName(st.CipherSuite), Reason: reason, ClientIP: ip}
	w.metrics.below.WithLabelValues(w.frontend, k.Version, k.Cipher, reason).Inc()
	w.mu.Lock()
	if _, ok := w.below[k]; !ok && len(w.below) >= maxBelowKeys {
		k.ClientIP = "other"
	}
	w.below[k]++
	ok, suppressed := w.logs.spend()
	w.mu.Unlock()
	if ok {
		w.log.Warn().Str("tls_version", k.Version).Str("tls_cipher", k.Cipher).Str("client_ip", ip).
			Str("below", reason).Int("suppressed", suppressed).Msg("TLS handshake below the policy (accepted: observe mode)")
	}
}

// handshakeError records a failed handshake.
func (w *tlsWatch) handshakeError(err error, remote net.Addr) {
	reason := failureReason(err)
	w.metrics.failed.WithLabelValues(w.frontend, reason).Inc()
	w.mu.Lock()
	w.failed[reason]++
	ok, suppressed := w.logs.spend()
	w.mu.Unlock()
	if ok {
		ip, _ := splitHostPort(remote.String())
		w.log.Info().Str("client_ip", ip).Str("reason", reason).Err(err).Int("suppressed", suppressed).Msg("TLS handshake failed")
	}
}

// logBudget bounds log lines about what clients cause, so a flood of bad
// handshakes or headers cannot flood the log; its user holds a lock.
type logBudget struct {
	second     time.Time
	logged     int
	suppressed int
}

// spend spends one of the second's log lines; it returns how many lines
// were held back since the last one logged.
func (b *logBudget) spend() (bool, int) {
	now := time.Now()
	if now.Sub(b.second) >= time.Second {
		b.second, b.logged = now, 0
	}
	if b.logged >= logsPerSecond {
		b.suppressed++
		return false, 0
	}
	b.logged++
	n := b.suppressed
	b.suppressed = 0
	return true, n
}

func (w *tlsWatch) report() TLSReport {
	w.mu.Lock()
	defer w.mu.Unlock()
	r := TLSReport{Failed: map[string]uint64{}}
	for k, n := range w.below {
		k.Count = n
		r.Below = append(r.Below, k)
	}
	for k, n := range w.failed {
		r.Failed[k] = n
	}
	return r
}

// failureReason sorts a handshake error by what an operator would change.
// crypto/tls's errors are not typed, so their texts are matched.
func failureReason(err error) string {
	msg := err.Error()
	switch {
	case strings.Contains(msg, "unsupported versions") || strings.Contains(msg, "protocol version"):
		return "version"
	case strings.Contains(msg, "no cipher suite") || strings.Contains(msg, "no mutually supported") || strings.Contains(msg, "no ECDHE curve"):
		return "cipher"
	case strings.Contains(msg, "no certificate"):
		return "sni"
	case strings.Contains(msg, "does not look like a TLS handshake"):
		return "not_tls"
	case errors.Is(err, context.DeadlineExceeded) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed):
		return "client_gone"
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return "client_gone"
	}
	return "other"
}

// TLSReport returns what a frontend's TLS listeners saw so far.
func (g *Gateway) TLSReport(frontend string) TLSReport {
	if f := g.current().frontend(frontend); f != nil && f.watch != nil {
		return f.watch.report()
	}
	return TLSReport{Failed: map[string]uint64{}}
}
