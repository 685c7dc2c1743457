package balancer

import (
	"context"
	"net/http"
	"testing"
)

// A response that deletes the application cookie (Max-Age=0, Max-Age<0,
// Expires in the past without Max-Age, or an empty value) teaches the stick table nothing; one that sets it
// sticks the session to the server that answered.
func TestLearn_DeletedCookieNotLearnt(t *testing.T) {
	p := cookieStickPool(t)
	ctx := context.Background()
	stuck := func(value string) *Server {
		r, _ := http.NewRequest("GET", "/", nil)
		r.Header.Set("Cookie", "JSESSIONID="+value)
		return p.Stuck(ctx, p.StickKey("192.0.2.1", "", r))
	}
	h := http.Header{"Set-Cookie": {
		"JSESSIONID=live; Path=/; HttpOnly",
		"JSESSIONID=gone0; Path=/; Max-Age=0",
		"JSESSIONID=goneneg; Path=/; Max-Age=-1",
		"JSESSIONID=goneboth; Path=/; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT",
		"JSESSIONID=goneexpired; Path=/; Expires=Thu, 01 Jan 1970 00:00:00 GMT",
		"JSESSIONID=future; Path=/; Expires=Fri, 01 Jan 2100 00:00:00 GMT",
		"JSESSIONID=maxagewins; Path=/; Max-Age=3600; Expires=Thu, 01 Jan 1970 00:00:00 GMT",
		"JSESSIONID=; Path=/; Max-Age=0",
		"OTHER=notours; Path=/",
	}}
	if err := p.Learn(ctx, "", nil, p.Server("a"), h); err != nil {
		t.Fatal(err)
	}
	if s := stuck("live"); s != p.Server("a") {
		t.Fatalf("the session the response set is stuck to %v, want a", s)
	}
	for _, v := range []string{"future", "maxagewins"} { // Max-Age wins over Expires (RFC 6265, 5.3)
		if s := stuck(v); s != p.Server("a") {
			t.Errorf("%s, a cookie that lives on, is stuck to %v, want a", v, s)
		}
	}
	for _, v := range []string{"gone0", "goneneg", "goneboth", "goneexpired", "notours"} {
		if s := stuck(v); s != nil {
			t.Errorf("%s, deleted or not the application cookie, was learnt: stuck to %s", v, s.Name)
		}
	}
}

// cookieStickPool is servers a and b sticking on the JSESSIONID cookie, in
// a table of the pool's own.
func cookieStickPool(t *testing.T) *Pool {
	t.Helper()
	w := 1
	c := Config{Name: "app", Stick: &StickConfig{On: "cookie", Cookie: "JSESSIONID"}, Servers: []ServerConfig{
		{Name: "a", Address: "10.0.0.1:80", Weight: &w}, {Name: "b", Address: "10.0.0.2:80", Weight: &w},
	}}
	c.SetDefaults()
	p, err := New(c)
	if err != nil {
		t.Fatal(err)
	}
	return p
}
