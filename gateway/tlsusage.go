package gateway

import (
	"crypto/tls"
	"net"
	"sync"
	"time"

	"github.com/axiomhq/hyperloglog"

	"github.com/sekisho/sekisho/gateway/accesslog"
)

// TLSUsage answers the source documents' questions about who still uses
// which TLS: completed handshakes by version and by version and cipher,
// and how many distinct client IPs used each version, counted in
// HyperLogLog sketches (a few KiB each, ~1 % error) over fixed windows:
// the current one so far and the one before.
type TLSUsage struct {
	Window    string                       `json:"window"`
	Versions  map[string]uint64            `json:"handshakes_by_version"`
	Ciphers   map[string]map[string]uint64 `json:"handshakes_by_version_and_cipher"`
	Distinct  map[string]uint64            `json:"distinct_client_ips_this_window"`
	Previous  map[string]uint64            `json:"distinct_client_ips_previous_window"`
	WindowEnd time.Time                    `json:"window_ends"`
}

// tlsUsageWindow is the distinct-client window.
const tlsUsageWindow = time.Hour

// tlsUsage counts one frontend's handshakes (TCP and QUIC).
type tlsUsage struct {
	mu       sync.Mutex
	versions map[string]uint64
	ciphers  map[string]map[string]uint64
	cur      map[string]*hyperloglog.Sketch
	prev     map[string]uint64
	end      time.Time
}

func newTLSUsage() *tlsUsage {
	return &tlsUsage{versions: map[string]uint64{}, ciphers: map[string]map[string]uint64{},
		cur: map[string]*hyperloglog.Sketch{}, prev: map[string]uint64{}, end: time.Now().Add(tlsUsageWindow)}
}

// count records a completed handshake from remote.
func (u *tlsUsage) count(st *tls.ConnectionState, remote net.Addr) {
	v, c := accesslog.TLSVersion(st.Version), tls.CipherSuiteName(st.CipherSuite)
	ip, _ := splitHostPort(remote.String())
	now := time.Now()
	u.mu.Lock()
	defer u.mu.Unlock()
	u.roll(now)
	u.versions[v]++
	if u.ciphers[v] == nil {
		u.ciphers[v] = map[string]uint64{}
	}
	u.ciphers[v][c]++
	sk := u.cur[v]
	if sk == nil {
		sk = hyperloglog.New14()
		u.cur[v] = sk
	}
	sk.Insert([]byte(ip))
}

// roll starts a new window when the current one has ended. u.mu is held.
func (u *tlsUsage) roll(now time.Time) {
	if now.Before(u.end) {
		return
	}
	u.prev = map[string]uint64{}
	if now.Sub(u.end) < tlsUsageWindow { // the window that just ended, else none
		for v, sk := range u.cur {
			u.prev[v] = sk.Estimate()
		}
	}
	u.cur = map[string]*hyperloglog.Sketch{}
	u.end = now.Add(tlsUsageWindow)
}

func (u *tlsUsage) report() TLSUsage {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.roll(time.Now())
	r := TLSUsage{Window: tlsUsageWindow.String(), WindowEnd: u.end, Versions: map[string]uint64{},
		Ciphers: map[string]map[string]uint64{}, Distinct: map[string]uint64{}, Previous: map[string]uint64{}}
	for v, n := range u.versions {
		r.Versions[v] = n
	}
	for v, m := range u.ciphers {
		r.Ciphers[v] = map[string]uint64{}
		for c, n := range m {
			r.Ciphers[v][c] = n
		}
	}
	for v, sk := range u.cur {
		r.Distinct[v] = sk.Estimate()
	}
	for v, n := range u.prev {
		r.Previous[v] = n
	}
	return r
}

// TLSUsage returns a frontend's TLS usage report.
func (g *Gateway) TLSUsage(frontend string) (TLSUsage, bool) {
	if f := g.current().frontend(frontend); f != nil && f.watch != nil {
		return f.watch.usage.report(), true
	}
	return TLSUsage{}, false
}
