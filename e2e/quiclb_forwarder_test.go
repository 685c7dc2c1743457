package e2e

import (
	"bytes"
	"hash/fnv"
	"net"
	"strconv"
	"sync"
	"testing"
)

// quicLB stands in for AWS's Network Load Balancer in front of QUIC
// replicas, on loopback: it takes datagrams on one UDP address and sends
// each to a replica, and the replica's answers back. byCID routes a
// packet by the server ID in its destination connection ID (QUIC-LB's
// plaintext layout, octets 1 to 8, as NLB's QUIC listeners do), and
// falls back, as NLB does for an Initial whose connection ID the client
// chose, to a hash of the client's address; without byCID, every packet
// goes by that hash, as a UDP listener's 5-tuple hashing does.
//
// Each client address gets its own socket toward a replica, so a replica
// sees a client that moved as a new address, as it would behind NLB.
type quicLB struct {
	t        testing.TB
	pc       *net.UDPConn
	replicas []*net.UDPAddr
	ids      [][8]byte // the server ID each replica was registered with
	byCID    bool

	mu      sync.Mutex
	flows   map[string]*net.UDPConn // "client|replica"
	packets []lbPacket
}

// lbPacket is a datagram the forwarder passed on, and its connection IDs.
type lbPacket struct {
	client   string
	replica  int
	toClient bool
	long     bool
	dcid     []byte
	scid     []byte // long headers only
}

// cidLen is the length of the replicas' connection IDs, which a short
// header does not say: the load balancer is told, as NLB is.
const cidLen = 20

func startQUICLB(t testing.TB, replicas []string, ids [][8]byte, byCID bool) *quicLB {
	t.Helper()
	pc, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	lb := &quicLB{t: t, pc: pc, ids: ids, byCID: byCID, flows: map[string]*net.UDPConn{}}
	for _, r := range replicas {
		a, err := net.ResolveUDPAddr("udp", r)
		if err != nil {
			t.Fatal(err)
		}
		lb.replicas = append(lb.replicas, a)
	}
	t.Cleanup(lb.close)
	go lb.serve()
	return lb
}

// Addr is the load balancer's listener.
func (lb *quicLB) Addr() string { return lb.pc.LocalAddr().String() }

func (lb *quicLB) close() {
	lb.pc.Close()
	lb.mu.Lock()
	defer lb.mu.Unlock()
	for _, c := range lb.flows {
		c.Close()
	}
}

// hashReplica is the replica the client's address hashes to.
func (lb *quicLB) hashReplica(client string) int {
	h := fnv.New32a()
	h.Write([]byte(client))
	return int(h.Sum32() % uint32(len(lb.replicas)))
}

func (lb *quicLB) serve() {
	buf := make([]byte, 65536)
	for {
		n, client, err := lb.pc.ReadFromUDP(buf)
		if err != nil {
			return
		}
		p := parseQUIC(buf[:n])
		p.client = client.String()
		p.replica = lb.route(p)
		lb.record(p)
		up := lb.flow(client, p.replica)
		if up != nil {
			up.Write(buf[:n])
		}
	}
}

// route picks the replica: by the server ID in the destination
// connection ID when it is one a replica was registered with.
func (lb *quicLB) route(p lbPacket) int {
	if lb.byCID && len(p.dcid) >= 9 && p.dcid[0]>>5 == 0 {
		for i, id := range lb.ids {
			if bytes.Equal(p.dcid[1:9], id[:]) {
				return i
			}
		}
	}
	return lb.hashReplica(p.client)
}

// flow is the socket toward replica for this client address, made at its
// first packet with a reader that sends the replica's answers back.
func (lb *quicLB) flow(client *net.UDPAddr, replica int) *net.UDPConn {
	key := client.String() + "|" + strconv.Itoa(replica)
	lb.mu.Lock()
	defer lb.mu.Unlock()
	if c := lb.flows[key]; c != nil {
		return c
	}
	c, err := net.DialUDP("udp", nil, lb.replicas[replica])
	if err != nil {
		lb.t.Errorf("load balancer: %v", err)
		return nil
	}
	lb.flows[key] = c
	go func() {
		buf := make([]byte, 65536)
		for {
			n, err := c.Read(buf)
			if err != nil {
				return
			}
			p := parseQUIC(buf[:n])
			p.client, p.replica, p.toClient = client.String(), replica, true
			lb.record(p)
			lb.pc.WriteToUDP(buf[:n], client)
		}
	}()
	return c
}

func (lb *quicLB) record(p lbPacket) {
	lb.mu.Lock()
	defer lb.mu.Unlock()
	lb.packets = append(lb.packets, p)
}

// Packets returns what the load balancer passed on so far.
func (lb *quicLB) Packets() []lbPacket {
	lb.mu.Lock()
	defer lb.mu.Unlock()
	return append([]lbPacket(nil), lb.packets...)
}

// parseQUIC reads the connection IDs of a datagram's first QUIC packet
// (RFC 9000, 17.2 and 17.3). A long header says its IDs' lengths; a short
// one carries only the destination ID, of the length the load balancer
// knows. Version negotiation and what does not parse yield no IDs.
func parseQUIC(b []byte) lbPacket {
	var p lbPacket
	if len(b) < 1 {
		return p
	}
	if b[0]&0x80 == 0 { // short header
		if len(b) >= 1+cidLen {
			p.dcid = append([]byte(nil), b[1:1+cidLen]...)
		}
		return p
	}
	p.long = true
	if len(b) < 6 || b[1]|b[2]|b[3]|b[4] == 0 {
		return p
	}
	rest := b[5:]
	take := func() []byte {
		if len(rest) < 1 || len(rest) < 1+int(rest[0]) {
			return nil
		}
		id := append([]byte(nil), rest[1:1+int(rest[0])]...)
		rest = rest[1+int(rest[0]):]
		return id
	}
	p.dcid = take()
	p.scid = take()
	return p
}
