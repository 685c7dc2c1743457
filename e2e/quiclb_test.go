package e2e

import (
	"bytes"
	"context"
	cryptotls "crypto/tls"
	"encoding/hex"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"
	"github.com/sekisho/sekisho/e2e/freeport"
)

// quicReplica is one sekisho replica serving HTTP/3 with a server ID.
const quicReplica = `
frontends:
  - name: web
    bind:
      - address: {{or .Addr "127.0.0.1:0"}}
        tls: true
    tls:
      self_signed: [localhost]
    http3: true
    default_backend: app
backends:
  - name: app
    servers:
      - {name: s, address: "{{.App}}"}
log:
  access: {{.AccessLog}}
{{if .ServerID}}quic_server_id: "{{.ServerID}}"{{end}}
{{if .Admin}}admin: {address: "{{.Admin}}"}{{end}}
`

var serverIDs = [2]string{"0xa1b2c3d4e5f65890", "0x0123456789abcdef"}

func mustID(t testing.TB, s string) [8]byte {
	var id [8]byte
	b, err := hex.DecodeString(strings.TrimPrefix(s, "0x"))
	if err != nil || len(b) != 8 {
		t.Fatalf("server ID %q", s)
	}
	copy(id[:], b)
	return id
}

// twoReplicas starts replica 0 with its server ID from the environment
// (one image for every replica) and replica 1 with it in its config, each
// in front of its own backend, behind a stand-in load balancer.
func twoReplicas(t *testing.T, byCID bool) (*quicLB, [2]*Backend) {
	apps := [2]*Backend{StartBackend(t, "app-0"), StartBackend(t, "app-1")}
	r0 := StartGateway(t, quicReplica, ConfigData{"App": apps[0].Addr, "Env": []string{"SEKISHO_QUIC_SERVER_ID=" + serverIDs[0]}})
	r1 := StartGateway(t, quicReplica, ConfigData{"App": apps[1].Addr, "ServerID": serverIDs[1]})
	lb := startQUICLB(t, []string{r0.Addrs["web"], r1.Addrs["web"]}, [][8]byte{mustID(t, serverIDs[0]), mustID(t, serverIDs[1])}, byCID)
	return lb, apps
}

// rebindingConn is a client's UDP socket behind a NAT that rebinds:
// Rebind moves it to a new local port, which the QUIC stack above it
// does not know of, as a NAT's new mapping.
type rebindingConn struct {
	mu     sync.Mutex
	cur    *net.UDPConn
	closed bool
}

func newRebindingConn(t testing.TB) *rebindingConn {
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	return &rebindingConn{cur: c}
}

func (r *rebindingConn) conn() *net.UDPConn {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.cur
}

func (r *rebindingConn) ReadFrom(p []byte) (int, net.Addr, error) {
	for {
		c := r.conn()
		n, a, err := c.ReadFrom(p)
		r.mu.Lock()
		moved := err != nil && !r.closed && r.cur != c
		r.mu.Unlock()
		if !moved {
			return n, a, err
		}
	}
}

func (r *rebindingConn) WriteTo(p []byte, a net.Addr) (int, error) { return r.conn().WriteTo(p, a) }
func (r *rebindingConn) LocalAddr() net.Addr                       { return r.conn().LocalAddr() }
func (r *rebindingConn) SetDeadline(t time.Time) error             { return r.conn().SetDeadline(t) }
func (r *rebindingConn) SetReadDeadline(t time.Time) error         { return r.conn().SetReadDeadline(t) }
func (r *rebindingConn) SetWriteDeadline(t time.Time) error        { return r.conn().SetWriteDeadline(t) }

func (r *rebindingConn) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.closed = true
	return r.cur.Close()
}

// Rebind moves to a new local port for which accept holds (at most 500
// tries), and closes the old one.
func (r *rebindingConn) Rebind(t testing.TB, accept func(addr string) bool) string {
	t.Helper()
	for range 500 {
		c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			t.Fatal(err)
		}
		if !accept(c.LocalAddr().String()) {
			c.Close()
			continue
		}
		r.mu.Lock()
		old := r.cur
		r.cur = c
		r.mu.Unlock()
		old.Close()
		return c.LocalAddr().String()
	}
	t.Fatal("no local port to rebind to")
	return ""
}

// h3Client is an HTTP/3 client over one QUIC transport on conn, which
// counts the connections it dials and keeps the last.
type h3Client struct {
	*http.Client
	tr    *quic.Transport
	dials atomic.Int32
	last  atomic.Pointer[quic.Conn]
}

func newH3Client(t testing.TB, conn net.PacketConn, timeout time.Duration) *h3Client {
	c := &h3Client{tr: &quic.Transport{Conn: conn}}
	h3 := &http3.Transport{
		TLSClientConfig: &cryptotls.Config{InsecureSkipVerify: true, ServerName: "localhost"},
		Dial: func(ctx context.Context, addr string, tlsConf *cryptotls.Config, qc *quic.Config) (*quic.Conn, error) {
			udp, err := net.ResolveUDPAddr("udp", addr)
			if err != nil {
				return nil, err
			}
			qconn, err := c.tr.DialEarly(ctx, udp, tlsConf, qc)
			if err == nil {
				c.dials.Add(1)
				c.last.Store(qconn)
			}
			return qconn, err
		},
	}
	c.Client = &http.Client{Transport: h3, Timeout: timeout}
	t.Cleanup(func() { h3.Close(); c.tr.Close() })
	return c
}

func (c *h3Client) get(url string) (string, error) {
	resp, err := c.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		return "", errors.New(resp.Status)
	}
	return string(b), err
}

// replicaOf is the replica whose backend answered.
func replicaOf(t *testing.T, body string) int {
	t.Helper()
	switch body {
	case "ok app-0":
		return 0
	case "ok app-1":
		return 1
	}
	t.Fatalf("answer %q is from no replica's backend", body)
	return -1
}

// checkCIDs fails unless every connection ID replica r issued and the
// clients used (all but the one each client chose for its first Initial)
// carries r's server ID in octets 1 to 8 behind a first octet of config 0.
func checkCIDs(t *testing.T, packets []lbPacket, r int) {
	t.Helper()
	want := mustID(t, serverIDs[r])
	chosen := map[string][]byte{} // by client address
	seen := 0
	for _, p := range packets {
		var c []byte
		switch {
		case p.toClient && p.long:
			c = p.scid
		case p.toClient:
			continue // a short header carries the client's ID only
		case p.long && chosen[p.client] == nil:
			chosen[p.client] = p.dcid // the first Initial's, which the client chose
			continue
		case bytes.Equal(p.dcid, chosen[p.client]):
			continue
		default:
			c = p.dcid
		}
		seen++
		if len(c) != cidLen || c[0]>>5 != 0 || !bytes.Equal(c[1:9], want[:]) {
			t.Errorf("connection ID %x (packet to client %v, client %s) does not carry server ID %s", c, p.toClient, p.client, serverIDs[r])
		}
	}
	if seen == 0 {
		t.Error("no server-issued connection ID was seen")
	}
}

// Behind a load balancer that routes by the server ID in the connection
// ID, a client whose address changes mid-connection (its NAT rebinds to
// a new port; later it moves to a new socket itself) keeps its
// connection: the same connection answers from the same replica. Every
// connection ID the replica issued, including those the client moved to,
// carries its server ID.
func TestQUICLB_ConnectionSurvivesAddressChange(t *testing.T) {
	lb, apps := twoReplicas(t, true)
	rc := newRebindingConn(t)
	c := newH3Client(t, rc, 10*time.Second)
	url := "https://" + lb.Addr()

	body, err := c.get(url + "/before")
	if err != nil {
		t.Fatalf("first request: %v", err)
	}
	r := replicaOf(t, body)
	first := rc.LocalAddr().String()
	// A new port that a 4-tuple hash sends to the other replica: only
	// the connection ID can keep the client where its connection is.
	moved := rc.Rebind(t, func(a string) bool { return lb.hashReplica(a) != r })
	t.Logf("replica %d served %s; the NAT rebound it to %s", r, first, moved)
	if body, err := c.get(url + "/after-rebinding"); err != nil || replicaOf(t, body) != r {
		t.Fatalf("after rebinding: %q, %v; want replica %d's answer", body, err, r)
	}

	// The client moves itself (active migration, RFC 9000 9.2): a new
	// socket and a connection ID it has not used, from the replica's
	// NEW_CONNECTION_ID frames.
	sock, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	newTr := &quic.Transport{Conn: sock}
	defer newTr.Close()
	path, err := c.last.Load().AddPath(newTr)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := path.Probe(ctx); err != nil {
		t.Fatalf("probing the new path: %v", err)
	}
	if err := path.Switch(); err != nil {
		t.Fatal(err)
	}
	if body, err := c.get(url + "/after-migration"); err != nil || replicaOf(t, body) != r {
		t.Fatalf("after migration: %q, %v; want replica %d's answer", body, err, r)
	}

	if n := c.dials.Load(); n != 1 {
		t.Errorf("%d QUIC connections dialled, want the one kept throughout", n)
	}
	packets := lb.Packets()
	for _, p := range packets {
		if !p.toClient && p.replica != r {
			t.Errorf("a packet from %s (connection ID %x) went to replica %d", p.client, p.dcid, p.replica)
		}
	}
	checkCIDs(t, packets, r)
	migrated := map[string]bool{}
	for _, p := range packets {
		if !p.toClient && p.client == sock.LocalAddr().String() {
			migrated[string(p.dcid)] = true
		}
	}
	for _, p := range packets {
		if !p.toClient && p.client == first && migrated[string(p.dcid)] {
			t.Errorf("the migrated path reused connection ID %x", p.dcid)
		}
	}
	if len(migrated) == 0 {
		t.Error("no packet came from the migrated socket")
	}
	var paths []string
	for _, q := range apps[r].Requests() {
		paths = append(paths, q.RequestURI)
	}
	if got := strings.Join(paths, " "); got != "/before /after-rebinding /after-migration" {
		t.Errorf("replica %d's backend got %q", r, got)
	}
	if n := len(apps[1-r].Requests()); n != 0 {
		t.Errorf("the other replica's backend got %d requests", n)
	}
}

// For contrast, a load balancer that hashes the client's address (a UDP
// listener) sends the rebound client to the other replica, which knows
// nothing of its connection: the request fails.
func TestQUICLB_HashingLosesTheConnection(t *testing.T) {
	lb, apps := twoReplicas(t, false)
	rc := newRebindingConn(t)
	c := newH3Client(t, rc, 3*time.Second)
	url := "https://" + lb.Addr()
	body, err := c.get(url + "/before")
	if err != nil {
		t.Fatalf("first request: %v", err)
	}
	r := replicaOf(t, body)
	rc.Rebind(t, func(a string) bool { return lb.hashReplica(a) != r })
	if body, err := c.get(url + "/after-rebinding"); err == nil {
		t.Fatalf("after rebinding: %q, want the connection lost", body)
	}
	for i, app := range apps {
		for _, q := range app.Requests() {
			if q.RequestURI != "/before" {
				t.Errorf("replica %d's backend got %s", i, q.RequestURI)
			}
		}
	}
}

// A reload keeps the server ID and the QUIC socket, even when the config
// names another ID (the load balancer still routes by the registered
// one): the connection open across it goes on, and new connections carry
// the same ID. A restarted replica issues IDs with the same server ID, so
// the load balancer routes its new connections to it.
func TestQUICLB_ServerIDOutlivesReloadAndRestart(t *testing.T) {
	app := StartBackend(t, "app-0")
	data := ConfigData{"App": app.Addr, "Addr": freeport.Addr(t), "Admin": freeport.Addr(t), "Listeners": 1, "Env": []string{"SEKISHO_QUIC_SERVER_ID=" + serverIDs[0]}}
	g := StartGateway(t, quicReplica, data)
	lb := startQUICLB(t, []string{g.Addrs["web"]}, [][8]byte{mustID(t, serverIDs[0])}, true)
	url := "https://" + lb.Addr()
	c := newH3Client(t, newRebindingConn(t), 10*time.Second)
	if _, err := c.get(url + "/before-reload"); err != nil {
		t.Fatal(err)
	}

	cfg, _ := os.ReadFile(g.Config)
	os.WriteFile(g.Config, append(cfg, []byte("quic_server_id: \""+serverIDs[1]+"\"\n")...), 0o600)
	g.Signal(syscall.SIGHUP)
	waitLog(t, g, "config reloaded")
	if !strings.Contains(g.Stderr(), "quic_server_id: the change applies at the next restart") {
		t.Errorf("no warning that the new server ID waits for a restart:\n%s", g.Stderr())
	}
	if _, err := c.get(url + "/after-reload"); err != nil {
		t.Fatalf("the connection open across the reload: %v", err)
	}
	if n := c.dials.Load(); n != 1 {
		t.Errorf("%d connections dialled, want the one kept across the reload", n)
	}
	fresh := newH3Client(t, newRebindingConn(t), 10*time.Second)
	if _, err := fresh.get(url + "/new-after-reload"); err != nil {
		t.Fatal(err)
	}
	checkCIDs(t, lb.Packets(), 0)
	// The stats page says which ID to register the target under: the one
	// in use, not the one the reloaded config names.
	resp, err := http.Get(g.AdminURL() + "/stats")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(page), "QUIC server ID "+serverIDs[0]) {
		t.Errorf("stats page %d does not name QUIC server ID %s", resp.StatusCode, serverIDs[0])
	}

	g.Kill()
	g = StartGateway(t, quicReplica, data) // the same address and environment
	before := len(lb.Packets())
	again := newH3Client(t, newRebindingConn(t), 10*time.Second)
	if _, err := again.get(url + "/after-restart"); err != nil {
		t.Fatalf("after the restart: %v", err)
	}
	checkCIDs(t, lb.Packets()[before:], 0)
	if n := len(app.Requests()); n != 4 {
		t.Errorf("the backend got %d requests, want 4", n)
	}
}

// waitLog waits (at most 10 s) for a log line with msg.
func waitLog(t *testing.T, g *Gateway, msg string) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if strings.Contains(g.Stderr(), `"message":"`+msg+`"`) {
			return
		}
	}
	t.Fatalf("no %q in the log:\n%s", msg, g.Stderr())
}
