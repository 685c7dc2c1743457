// Package benign builds a corpus of legitimate HTTP requests in the shapes
// real applications send: browser page and asset loads, REST and GraphQL
// APIs with every method and body type, prose in many languages, OAuth
// flows, search boxes, SaaS webhooks and file uploads. It measures how much
// legitimate traffic a WAF policy blocks.
//
// The corpus is generated, not stored: templates written from the public
// shapes of browsers and APIs, filled from fixed lists by a seeded random
// source, so the same build yields the same requests byte for byte and the
// repository holds a few hundred lines rather than megabytes of requests.
package benign

import (
	"bytes"
	"math/rand/v2"
	"net/http"
	"slices"
	"strconv"
)

// Request is one legitimate request of the corpus.
type Request struct {
	// Shape labels what kind of traffic it is, e.g. "browser.page" or "api.ndjson".
	Shape  string
	Method string
	// Target is the request target in origin form: path and query.
	Target string
	Host   string
	Header http.Header
	Body   []byte
}

// HTTP returns r as a server-side request, as net/http's server hands it to
// a handler (RequestURI set, Content-Length kept in the header map).
func (r Request) HTTP() *http.Request {
	req, err := http.NewRequest(r.Method, "http://"+r.Host+r.Target, bytes.NewReader(r.Body))
	if err != nil {
		panic("benign: " + r.Shape + " " + r.Target + ": " + err.Error())
	}
	req.RequestURI = r.Target
	req.Header = r.Header.Clone()
	if len(r.Body) > 0 {
		req.Header.Set("Content-Length", strconv.Itoa(len(r.Body)))
	} else {
		req.Body, req.ContentLength = http.NoBody, 0
	}
	return req
}

// Seed is the random seed of Corpus.
const Seed = 19

// Corpus returns the whole corpus, the same on every call.
func Corpus() []Request {
	g := &gen{rnd: rand.New(rand.NewPCG(Seed, Seed*7919))}
	for _, build := range []func(){
		g.browserPages, g.browserAssets, g.restAPI, g.plusJSON, g.ndjson, g.textPlain,
		g.forms, g.multipartForms, g.graphQL, g.prose, g.codeSnippets, g.oauth,
		g.search, g.webhooks, g.uploads, g.configFetches,
	} {
		build()
	}
	return g.out
}

// Shapes lists the corpus's shapes in the order they are built.
func Shapes(c []Request) []string {
	var s []string
	for _, r := range c {
		if !slices.Contains(s, r.Shape) {
			s = append(s, r.Shape)
		}
	}
	return s
}

// gen accumulates the corpus from one random source.
type gen struct {
	rnd *rand.Rand
	out []Request
	n   int // requests built so far, to vary identifiers
}

func (g *gen) add(shape, method, host, target string, h http.Header, body []byte) {
	g.n++
	if h == nil {
		h = http.Header{}
	}
	g.out = append(g.out, Request{Shape: shape, Method: method, Target: target, Host: host, Header: h, Body: body})
}

// pick returns one element of list.
func pick[T any](g *gen, list []T) T { return list[g.rnd.IntN(len(list))] }

// hex returns n random hexadecimal digits.
func (g *gen) hex(n int) string {
	const digits = "0123456789abcdef"
	b := make([]byte, n)
	for i := range b {
		b[i] = digits[g.rnd.IntN(16)]
	}
	return string(b)
}

// alnum returns n random letters and digits, as in generated IDs.
func (g *gen) alnum(n int) string {
	const chars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	b := make([]byte, n)
	for i := range b {
		b[i] = chars[g.rnd.IntN(len(chars))]
	}
	return string(b)
}

// uuid returns a random version 4 UUID.
func (g *gen) uuid() string {
	h := g.hex(32)
	return h[:8] + "-" + h[8:12] + "-4" + h[13:16] + "-a" + h[17:20] + "-" + h[20:]
}

// num returns a decimal number in [lo, hi).
func (g *gen) num(lo, hi int) string { return strconv.Itoa(lo + g.rnd.IntN(hi-lo)) }

// ts is a Unix time in late 2026.
func (g *gen) ts() int64 { return 1796000000 + int64(g.rnd.IntN(3000000)) }
