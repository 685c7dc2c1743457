package gateway

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/sekisho/sekisho/balancer/sticktable"
	"github.com/sekisho/sekisho/gateway/config"
)

// rateLimiter counts a route's requests per key in a stick table and
// refuses those over the cap.
type rateLimiter struct {
	cfg        config.RateLimit
	table      sticktable.Config
	store      sticktable.Store
	kind, name string // src, header or cookie; the header or cookie name
	retryAfter string // seconds, for the 429
}

// newRateLimiter builds a limiter over a store that newStore makes for its table.
func newRateLimiter(c config.RateLimit, newStore func(sticktable.Config) (sticktable.Store, error)) (*rateLimiter, error) {
	l := &rateLimiter{cfg: c, kind: c.Key}
	l.kind, l.name, _ = strings.Cut(c.Key, ":")
	l.table = sticktable.Config{Name: "rate:" + c.Name, Type: sticktable.TypeString, Size: c.Size,
		Expire: 2 * c.Period, RatePeriod: c.Period, KeyLen: sticktable.ClientKeyLen}
	if l.kind == "src" {
		l.table.Type, l.table.KeyLen = sticktable.TypeIP, 0
	}
	// The rate is a sliding estimate over two periods: one period is the
	// least a refused client must wait, and the honest hint.
	l.retryAfter = strconv.FormatInt(int64((c.Period+time.Second-1)/time.Second), 10)
	store, err := newStore(l.table)
	if err != nil {
		return nil, err
	}
	l.store = store
	return l, nil
}

// allow counts r and tells whether it is within the cap. A request without
// the key is not counted; a store that fails lets the request through, as
// the limit protects the servers and must not take the gateway down with it.
func (l *rateLimiter) allow(ctx context.Context, r *http.Request, clientIP, ja4 string) bool {
	raw, ok := sticktable.ClientKey(l.kind, clientIP, ja4)
	if !ok {
		return true // plain HTTP: no fingerprint to count
	}
	switch l.kind {
	case "header":
		raw = r.Header.Get(l.name)
	case "cookie":
		c, err := r.Cookie(l.name)
		if err != nil {
			return true
		}
		raw = c.Value
	}
	key, err := l.table.Key(raw)
	if err != nil {
		return true
	}
	e, err := l.store.Hit(ctx, key)
	return err != nil || e.ReqRate <= int64(l.cfg.Requests)
}

// refuse answers a request over the cap: at once for deny, after holding
// it for tarpit (a bot that waits for answers slows down; the client's
// leaving ends the wait).
func (l *rateLimiter) refuse(w http.ResponseWriter, r *http.Request, requestID string) {
	if l.cfg.Action == "tarpit" {
		t := time.NewTimer(l.cfg.Tarpit)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			return
		}
	}
	w.Header().Set("Retry-After", l.retryAfter)
	writeErrorPage(w, r, http.StatusTooManyRequests, requestID)
}
