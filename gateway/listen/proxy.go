package listen

import (
	"errors"
	"net"
	"net/netip"
	"time"

	"github.com/pires/go-proxyproto"
	"github.com/pires/go-proxyproto/tlvparse"
)

// Proxy is a listener's PROXY protocol policy (v1 and v2 are both read).
type Proxy struct {
	// Trusted are the peers that may send a header: a load balancer's
	// subnets. From any other peer a header is never believed: the
	// connection is closed.
	Trusted []netip.Prefix
	// Require closes connections from trusted peers that send no header;
	// without it, they are taken with their socket address.
	Require bool
	// HeaderTimeout bounds the wait for the header.
	HeaderTimeout time.Duration
}

// policy is what go-proxyproto must do with a connection from peer.
func (p *Proxy) policy(peer net.Addr) proxyproto.Policy {
	ap, err := netip.ParseAddrPort(peer.String())
	if err == nil {
		a := ap.Addr().Unmap()
		for _, t := range p.Trusted {
			if t.Contains(a) {
				if p.Require {
					return proxyproto.REQUIRE
				}
				return proxyproto.USE
			}
		}
	}
	return proxyproto.REJECT
}

// readProxy reads the PROXY header of a new connection, if its peer may
// send one. A header that is malformed (its TLVs included), too long, late,
// missing where required, or sent by an untrusted peer is an error: the
// caller closes the connection. A v2 LOCAL header (a load balancer's own health check,
// as AWS's NLB sends) leaves the socket address in place.
func (p *Proxy) readProxy(raw net.Conn) (net.Conn, *proxyproto.Header, error) {
	pc := proxyproto.NewConn(raw, proxyproto.WithPolicy(p.policy(raw.RemoteAddr())), proxyproto.SetReadHeaderTimeout(p.HeaderTimeout), proxyproto.ValidateHeader(checkTLVs))
	// A zero-length read parses the header and reports its error, and
	// reads nothing of what follows.
	if _, err := pc.Read(nil); err != nil {
		if errors.Is(err, proxyproto.ErrSuperfluousProxyHeader) {
			err = errors.New("PROXY header from an untrusted peer")
		}
		return nil, nil, err
	}
	return pc, pc.ProxyHeader(), nil
}

// VPCEndpointID is the AWS VPC endpoint the connection came through
// (PrivateLink), from the PROXY v2 header's TLV; "" when there is none.
func (c *Conn) VPCEndpointID() string {
	if c.proxy == nil {
		return ""
	}
	tlvs, err := c.proxy.TLVs()
	if err != nil {
		return ""
	}
	return tlvparse.FindAWSVPCEndpointID(tlvs)
}

// ProxyPeer is the socket peer (the load balancer) of a connection whose
// PROXY header named its client, or nil when the peer is the client.
func (c *Conn) ProxyPeer() net.Addr { return c.proxyPeer }
