// Package clientip finds a request's real client address: the socket peer
// (or the source a trusted PROXY protocol header gave), unless that peer is
// a proxy the operator trusts, in which case the address that proxy
// reports in X-Forwarded-For, Forwarded (RFC 7239) or a named header. No
// header from an untrusted peer is ever believed.
package clientip

import (
	"fmt"
	"net/http"
	"net/netip"
	"strings"
)

// Source names the header a trusted proxy reports the client in.
type Source string

// The sources a Resolver reads; any other value names a header that holds
// one address (CF-Connecting-IP, True-Client-IP, X-Real-IP).
const (
	XForwardedFor Source = "x-forwarded-for"
	Forwarded     Source = "forwarded"
)

// Resolver applies one frontend's trust.
type Resolver struct {
	trusted []netip.Prefix
	source  Source
	header  string // canonical header name for a single-address source
}

// New builds a resolver that believes the proxies in trusted (CIDRs or
// single addresses) about the client, as told by source (default
// X-Forwarded-For).
func New(trusted []string, source string) (*Resolver, error) {
	r := &Resolver{source: Source(strings.ToLower(source))}
	if r.source == "" {
		r.source = XForwardedFor
	}
	if r.source != XForwardedFor && r.source != Forwarded {
		r.header = http.CanonicalHeaderKey(source)
	}
	for _, t := range trusted {
		p, err := ParsePrefix(t)
		if err != nil {
			return nil, err
		}
		r.trusted = append(r.trusted, p)
	}
	return r, nil
}

// ParsePrefix reads a CIDR, or a single address as a one-address prefix.
func ParsePrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return p, fmt.Errorf("%q is not a CIDR: %w", s, err)
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%q is not an address or CIDR", s)
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// Trusted tells whether a is one of the trusted proxies.
func (r *Resolver) Trusted(a netip.Addr) bool {
	a = a.Unmap()
	for _, p := range r.trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// Resolve returns the client's address for a request from peer with
// headers h. Walking a chain from the right, it skips the trusted proxies
// and stops at the first address that is not one: everything to its left
// was written by the client or by proxies no one vouches for. An entry
// that is not an address ends the walk at the last trusted hop.
func (r *Resolver) Resolve(peer netip.Addr, h http.Header) netip.Addr {
	peer = peer.Unmap()
	if len(r.trusted) == 0 || !r.Trusted(peer) {
		return peer
	}
	switch r.source {
	case XForwardedFor:
		return r.walk(peer, h.Values("X-Forwarded-For"), splitXFF)
	case Forwarded:
		return r.walk(peer, h.Values("Forwarded"), splitForwarded)
	}
	vs := h.Values(r.header)
	if len(vs) != 1 {
		return peer // absent, or repeated: not one proxy's word
	}
	if a, ok := parseAddr(vs[0]); ok {
		return a
	}
	return peer
}

// walk reads the hops in lines (each split into entries by split) from
// the right.
func (r *Resolver) walk(peer netip.Addr, lines []string, split func(string) []string) netip.Addr {
	var hops []string
	for _, l := range lines {
		hops = append(hops, split(l)...)
	}
	client := peer
	for i := len(hops) - 1; i >= 0; i-- {
		a, ok := parseAddr(hops[i])
		if !ok {
			return client
		}
		client = a
		if !r.Trusted(a) {
			return a
		}
	}
	return client // every hop trusted: the leftmost is the client
}

func splitXFF(line string) []string {
	return strings.Split(line, ",")
}

// splitForwarded returns the for= value of each element of a Forwarded
// header (RFC 7239, section 4); an element without one counts as unknown.
func splitForwarded(line string) []string {
	var out []string
	for _, elem := range strings.Split(line, ",") {
		v := "unknown"
		for _, pair := range strings.Split(elem, ";") {
			k, val, ok := strings.Cut(strings.TrimSpace(pair), "=")
			if ok && strings.EqualFold(k, "for") {
				v = strings.Trim(val, `"`)
			}
		}
		out = append(out, v)
	}
	return out
}

// parseAddr reads an address as proxies write it: bare, with a port
// (1.2.3.4:80, [2001:db8::1]:80), or bracketed.
func parseAddr(s string) (netip.Addr, bool) {
	s = strings.TrimSpace(s)
	if a, err := netip.ParseAddr(s); err == nil {
		return a.Unmap(), a.Zone() == ""
	}
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap(), ap.Addr().Zone() == ""
	}
	if strings.HasPrefix(s, "[") && strings.HasSuffix(s, "]") {
		if a, err := netip.ParseAddr(s[1 : len(s)-1]); err == nil && a.Zone() == "" {
			return a.Unmap(), true
		}
	}
	return netip.Addr{}, false
}
