package admin

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestHealth(t *testing.T) {
	for _, c := range []struct {
		path   string
		ready  bool
		why    []string
		status int
		body   string
	}{
		{"/healthz", false, []string{"shutting down"}, 200, "ok\n"}, // the process runs
		{"/readyz", true, nil, 200, "ready\n"},
		{"/readyz", false, []string{"shutting down", "backend app: no usable server"}, 503, "not ready: shutting down; backend app: no usable server\n"},
	} {
		rec := httptest.NewRecorder()
		Health(func() (bool, []string) { return c.ready, c.why })(rec, httptest.NewRequest("GET", c.path, nil))
		if rec.Code != c.status || rec.Body.String() != c.body || rec.Header().Get("Cache-Control") != "no-store" {
			t.Errorf("%s (ready %v): %d %q, cache %q; want %d %q", c.path, c.ready, rec.Code, rec.Body, rec.Header().Get("Cache-Control"), c.status, c.body)
		}
	}
}

// The token is asked for as a bearer token or a Basic password (which
// browsers prompt for); without a token, nothing is asked.
func TestAuthenticate(t *testing.T) {
	ok := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("in")) })
	for _, c := range []struct {
		token, authorization string
		status               int
	}{
		{"", "", 200},
		{"s3cret", "", 401},
		{"s3cret", "Bearer s3cret", 200},
		{"s3cret", "Bearer s3cre", 401},
		{"s3cret", "Bearer s3cretX", 401},
		{"s3cret", "bearer s3cret", 200},
		{"s3cret", "Bearer", 401},
		{"s3cret", "Basic " + basic("admin", "s3cret"), 200},
		{"s3cret", "Basic " + basic("s3cret", "wrong"), 401},
	} {
		rec := httptest.NewRecorder()
		r := httptest.NewRequest("GET", "/stats", nil)
		if c.authorization != "" {
			r.Header.Set("Authorization", c.authorization)
		}
		(&Server{token: c.token}).authenticate(ok).ServeHTTP(rec, r)
		if rec.Code != c.status {
			t.Errorf("token %q, Authorization %q: %d, want %d", c.token, c.authorization, rec.Code, c.status)
		}
		if c.status == 401 && !strings.HasPrefix(rec.Header().Get("WWW-Authenticate"), "Basic ") {
			t.Errorf("a 401 without a Basic challenge: browsers would not ask for the token")
		}
	}
}

func basic(user, password string) string {
	r := httptest.NewRequest("GET", "/", nil)
	r.SetBasicAuth(user, password)
	return strings.TrimPrefix(r.Header.Get("Authorization"), "Basic ")
}
