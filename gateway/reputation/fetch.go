package reputation

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"
)

// The defaults of a URLList's bounds.
const (
	DefaultMaxBytes = 64 << 20         // the largest public feeds are a few MiB
	DefaultTimeout  = 30 * time.Second // a feed slower than this is as good as down
)

// URLList is a list fetched from an HTTP(S) URL and fetched again on an
// interval. Set its fields, then call Load.
//
// Refetches are conditional (If-None-Match, If-Modified-Since) so that an
// unchanged feed costs a 304. Any failure (a transport error, a status other
// than 200 or 304, a body that is too large or not a list) keeps the last
// good set and is reported to OnError.
type URLList struct {
	URL       string        // http or https; errors leave out its query and credentials
	Interval  time.Duration // how often to refetch; 0 fetches only in Load
	Timeout   time.Duration // for one fetch, body included; 0 is DefaultTimeout
	MaxBytes  int64         // the largest body accepted; 0 is DefaultMaxBytes
	CachePath string        // if set, where the last good body is kept for a start without network
	Client    *http.Client  // nil is http.DefaultClient
	OnError   func(error)   // told about each failed fetch

	name     string // URL without query or credentials, for errors and logs
	cur      atomic.Pointer[PrefixSet]
	etag     string // validators of the body behind cur
	modified string
	ctx      context.Context
	stop     context.CancelFunc
	done     chan struct{}
	stopOnce sync.Once
}

// Load fetches the list and starts refetching it. If the fetch fails but
// CachePath holds a good copy, that is used and the failure goes to OnError;
// otherwise the error, naming the URL, is returned.
func (l *URLList) Load() error {
	if l.done != nil {
		return fmt.Errorf("%s: list already loaded", l.name)
	}
	u, err := url.Parse(l.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("reputation list URL %q: not an http or https URL", redact(l.URL))
	}
	l.name = redact(l.URL)
	l.ctx, l.stop = context.WithCancel(context.Background())
	set, err := l.fetch() // unconditional, so never the nil set of a 304
	if err != nil {
		if set, err = l.fallback(err); err != nil {
			l.stop()
			return err
		}
	}
	l.cur.Store(set)
	l.done = make(chan struct{})
	if l.Interval <= 0 {
		close(l.done)
		return nil
	}
	go every(l.ctx, l.Interval, l.done, l.refresh)
	return nil
}

// fallback reads the cache after the first fetch failed with err, and
// reports err if the cache serves.
func (l *URLList) fallback(err error) (*PrefixSet, error) {
	if l.CachePath == "" {
		return nil, err
	}
	f, cerr := os.Open(l.CachePath)
	if cerr != nil {
		return nil, fmt.Errorf("%w; no cached copy: %v", err, cerr)
	}
	defer f.Close()
	prefixes, cerr := ParseList(l.CachePath, f)
	if cerr != nil {
		return nil, fmt.Errorf("%w; cached copy unusable: %v", err, cerr)
	}
	l.report(fmt.Errorf("%w (using the cached copy %s)", err, l.CachePath))
	return NewPrefixSet(prefixes), nil
}

// Set is the current list: an atomic load, for the request path.
func (l *URLList) Set() *PrefixSet { return l.cur.Load() }

// Close stops refetching, and cancels a fetch under way.
func (l *URLList) Close() {
	l.stopOnce.Do(func() {
		if l.stop != nil {
			l.stop()
		}
	})
	if l.done != nil {
		<-l.done
	}
}

// refresh is one refetch: a new set replaces the current one, a 304 or a
// failure keeps it.
func (l *URLList) refresh() {
	set, err := l.fetch()
	switch {
	case err != nil && l.ctx.Err() == nil: // not a fetch cut short by Close
		l.report(fmt.Errorf("%w (keeping the previous %d prefixes)", err, l.Set().Len()))
	case set != nil:
		l.cur.Store(set)
	}
}

// fetch gets the list; a nil set and error mean the list has not changed.
func (l *URLList) fetch() (*PrefixSet, error) {
	ctx, cancel := context.WithTimeout(l.ctx, cmp.Or(l.Timeout, DefaultTimeout))
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, l.URL, nil)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", l.name, err)
	}
	if l.etag != "" {
		req.Header.Set("If-None-Match", l.etag)
	}
	if l.modified != "" {
		req.Header.Set("If-Modified-Since", l.modified)
	}
	resp, err := l.client().Do(req)
	if err != nil {
		var ue *url.Error // its message holds the whole URL, query and all
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("%s: %w", l.name, err)
	}
	defer func() {
		io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10)) // so the connection can serve the next fetch
		resp.Body.Close()
	}()
	switch {
	case resp.StatusCode == http.StatusNotModified && (l.etag != "" || l.modified != ""):
		return nil, nil
	case resp.StatusCode != http.StatusOK:
		return nil, fmt.Errorf("%s: status %s", l.name, resp.Status)
	}
	return l.accept(resp)
}

// accept reads and parses a 200 response, and remembers it as the last
// good copy. The validators are only taken from a good body: a corrupt one
// must not be answered with 304 and kept unnoticed.
func (l *URLList) accept(resp *http.Response) (*PrefixSet, error) {
	limit := cmp.Or(l.MaxBytes, DefaultMaxBytes)
	if resp.ContentLength > limit {
		return nil, fmt.Errorf("%s: body of %d bytes, more than the %d allowed", l.name, resp.ContentLength, limit)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, fmt.Errorf("%s: reading the body: %w", l.name, err)
	}
	if int64(len(body)) > limit {
		return nil, fmt.Errorf("%s: body of more than the %d bytes allowed", l.name, limit)
	}
	prefixes, err := ParseList(l.name, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	l.etag, l.modified = resp.Header.Get("ETag"), resp.Header.Get("Last-Modified")
	if err := l.writeCache(body); err != nil {
		l.report(fmt.Errorf("%s: caching the list: %w", l.name, err))
	}
	return NewPrefixSet(prefixes), nil
}

// writeCache replaces the cache file by rename, so that a crash leaves the
// old copy or the new one, never half of one.
func (l *URLList) writeCache(body []byte) error {
	if l.CachePath == "" {
		return nil
	}
	f, err := os.CreateTemp(filepath.Dir(l.CachePath), filepath.Base(l.CachePath)+".*.tmp")
	if err != nil {
		return err
	}
	_, err = f.Write(body)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), l.CachePath)
	}
	if err != nil {
		os.Remove(f.Name())
	}
	return err
}

func (l *URLList) client() *http.Client {
	if l.Client != nil {
		return l.Client
	}
	return http.DefaultClient
}

func (l *URLList) report(err error) {
	if l.OnError != nil {
		l.OnError(err)
	}
}

// redact drops a URL's query and credentials, where feeds put their API
// keys, so that errors and logs can name it.
func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	u.User, u.Fragment, u.RawFragment = nil, "", ""
	if u.RawQuery != "" || u.ForceQuery {
		u.RawQuery, u.ForceQuery = "", false
		return u.String() + "?..."
	}
	return u.String()
}
