package forward

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"

	"github.com/sekisho/sekisho/gateway/proxyhdr"
)

// ClientOut says how a backend's servers learn the client's address.
type ClientOut struct {
	// Mode is xff (X-Forwarded-For/-Proto/-Host/-Port, the default),
	// proxy_v1 or proxy_v2 (a PROXY header on each connection, which then
	// carries only that client's requests), or none.
	Mode string `yaml:"mode"`
	// Forwarded also sends RFC 7239's Forwarded header (xff mode).
	Forwarded bool `yaml:"forwarded"`
	// XRealIP also sends X-Real-IP, as nginx's real_ip module reads it (xff mode).
	XRealIP bool `yaml:"x_real_ip"`
	// TLVs are what a proxy_v2 header adds: alpn, authority (the TLS SNI,
	// else the Host), ssl (TLS version and cipher) and unique_id (the
	// request ID of the connection's first request).
	TLVs []string `yaml:"tlvs"`
}

// Validate reports every problem, each as "key: message".
func (c *ClientOut) Validate() []error {
	var errs []error
	switch c.Mode {
	case "", "xff", "proxy_v1", "proxy_v2", "none":
	default:
		errs = append(errs, fmt.Errorf("mode: %q is not xff, proxy_v1, proxy_v2 or none", c.Mode))
	}
	if (c.Forwarded || c.XRealIP) && c.Mode != "" && c.Mode != "xff" {
		errs = append(errs, fmt.Errorf("forwarded, x_real_ip: headers go with mode xff, not %s", c.Mode))
	}
	for i, t := range c.TLVs {
		switch t {
		case "alpn", "authority", "ssl", "unique_id":
		default:
			errs = append(errs, fmt.Errorf("tlvs[%d]: %q is not alpn, authority, ssl or unique_id", i, t))
		}
	}
	if len(c.TLVs) > 0 && c.Mode != "proxy_v2" {
		errs = append(errs, fmt.Errorf("tlvs: only proxy_v2 carries TLVs"))
	}
	return errs
}

// proxied tells whether connections carry a PROXY header, and so belong
// to one client.
func (c *ClientOut) proxied() bool { return c.Mode == "proxy_v1" || c.Mode == "proxy_v2" }

// setHeaders writes the xff-mode headers; ReverseProxy has already removed
// every incoming Forwarded and X-Forwarded-* header.
func (c *ClientOut) setHeaders(h http.Header, in *http.Request, x *Exchange) {
	h.Del("X-Real-Ip") // a client's own claim, never passed on
	if c.Mode != "" && c.Mode != "xff" {
		return
	}
	if x.ClientIP != "" {
		xff := x.ClientIP
		if x.PeerIP != "" {
			// The chain as the gateway believes it: the client, then the
			// trusted proxy that reported it.
			xff += ", " + x.PeerIP
		}
		h["X-Forwarded-For"] = []string{xff}
	}
	h["X-Forwarded-Host"] = []string{in.Host}
	if x.Proto != "" {
		h["X-Forwarded-Proto"] = []string{x.Proto}
	}
	if x.LocalAddr.IsValid() {
		h["X-Forwarded-Port"] = []string{strconv.Itoa(int(x.LocalAddr.Port()))}
	}
	if c.XRealIP && x.ClientIP != "" {
		h["X-Real-Ip"] = []string{x.ClientIP}
	}
	if c.Forwarded && x.ClientIP != "" {
		h["Forwarded"] = []string{forwardedValue(x, in.Host)}
	}
}

// forwardedValue is an RFC 7239 element for the request.
func forwardedValue(x *Exchange, host string) string {
	node := x.ClientIP
	if strings.Contains(node, ":") {
		node = `"[` + node + `]"`
	}
	v := "for=" + node
	if x.Proto != "" {
		v += ";proto=" + x.Proto
	}
	if host != "" && !strings.ContainsAny(host, `";,`) {
		v += `;host="` + host + `"`
	}
	return v
}

// proxyHeader is the PROXY header that opens a connection for x's client.
func (c *ClientOut) proxyHeader(x *Exchange) ([]byte, error) {
	src, err := netip.ParseAddr(x.ClientIP)
	if err != nil {
		return nil, fmt.Errorf("PROXY header: client address %q: %w", x.ClientIP, err)
	}
	client := net.TCPAddrFromAddrPort(netip.AddrPortFrom(src.Unmap(), uint16(x.ClientPort)))
	var local net.Addr = &net.TCPAddr{IP: net.IPv4zero}
	if x.LocalAddr.IsValid() {
		local = net.TCPAddrFromAddrPort(x.LocalAddr)
	}
	version := byte(1)
	var want proxyhdr.TLVs
	if c.Mode == "proxy_v2" {
		version = 2
		for _, t := range c.TLVs {
			switch t {
			case "alpn":
				want.ALPN = true
			case "authority":
				want.Authority, want.Host = true, x.Host
			case "ssl":
				want.SSL = true
			case "unique_id":
				want.UniqueID = x.RequestID
			}
		}
	}
	return proxyhdr.Header(version, client, local, x.TLS, want)
}
