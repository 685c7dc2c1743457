// Package demo is what `sekisho demo` needs besides the gateway: an
// embedded configuration and small upstream servers on loopback that say
// who answered, so balancing and blocking can be seen with curl alone.
package demo

import (
	"bytes"
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync/atomic"
	"text/template"
	"time"
)

//go:embed demo.yaml
var configTemplate string

// Config renders the demo configuration for the given addresses.
func Config(httpAddr, httpsAddr string, upstreams []string) []byte {
	t := template.Must(template.New("demo").Funcs(template.FuncMap{"inc": func(i int) int { return i + 1 }}).Parse(configTemplate))
	var b bytes.Buffer
	if err := t.Execute(&b, struct {
		HTTP, HTTPS string
		Upstreams   []string
	}{httpAddr, httpsAddr, upstreams}); err != nil {
		panic(err) // the template is ours and fixed
	}
	return b.Bytes()
}

// Upstreams are the running demo servers.
type Upstreams struct {
	Addrs []string
	srvs  []*http.Server
}

// StartUpstreams starts n demo servers on 127.0.0.1 (free ports). Each
// answers with JSON naming itself and echoing the request it received.
func StartUpstreams(n int) (*Upstreams, error) {
	u := &Upstreams{}
	for i := 1; i <= n; i++ {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			u.Close()
			return nil, err
		}
		name := fmt.Sprintf("app%d", i)
		srv := &http.Server{Handler: Handler(name, ""), ReadHeaderTimeout: 10 * time.Second}
		go func() {
			if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				panic(err)
			}
		}()
		u.Addrs = append(u.Addrs, ln.Addr().String())
		u.srvs = append(u.srvs, srv)
	}
	return u, nil
}

// Close stops the servers.
func (u *Upstreams) Close() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	for _, s := range u.srvs {
		s.Shutdown(ctx)
	}
}

// Handler answers as demo server name: JSON naming it and echoing the
// request. With sessionCookie set, a request without that cookie gets one
// (as Tomcat hands out JSESSIONID), so stickiness can be watched.
func Handler(name, sessionCookie string) http.Handler {
	var issued atomic.Int64
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if sessionCookie != "" {
			if _, err := r.Cookie(sessionCookie); err != nil {
				http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: fmt.Sprintf("%s-%d-%d", name, time.Now().UnixNano(), issued.Add(1)), Path: "/", HttpOnly: true})
			}
		}
		body, _ := io.ReadAll(io.LimitReader(r.Body, 4096))
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{
			"server":  name,
			"method":  r.Method,
			"uri":     r.RequestURI,
			"headers": map[string]string{"X-Forwarded-For": r.Header.Get("X-Forwarded-For"), "X-Forwarded-Proto": r.Header.Get("X-Forwarded-Proto"), "X-Request-Id": r.Header.Get("X-Request-Id")},
			"body":    string(body),
		})
	})
}
