package benign

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// jwt returns an HS256 JSON Web Token of claims, signed for real.
func (g *gen) jwt(claims map[string]any) string {
	enc := base64.RawURLEncoding
	hdr := enc.EncodeToString([]byte(`{"alg":"HS256","typ":"JWT","kid":"` + g.hex(8) + `"}`))
	body, _ := json.Marshal(claims)
	signing := hdr + "." + enc.EncodeToString(body)
	m := hmac.New(sha256.New, []byte(g.alnum(32)))
	m.Write([]byte(signing))
	return signing + "." + enc.EncodeToString(m.Sum(nil))
}

// bearer is an access token as an identity provider issues it.
func (g *gen) bearer() string {
	t := g.ts()
	return "Bearer " + g.jwt(map[string]any{
		"iss": "https://login.example.com/", "sub": "auth0|" + g.hex(24), "aud": []string{"https://api.example.com", "https://login.example.com/userinfo"},
		"iat": t, "exp": t + 86400, "scope": "openid profile email read:orders write:orders", "azp": g.alnum(32),
		"https://example.com/roles": []string{"customer"},
	})
}

var oauthClients = []struct{ id, redirect string }{
	{"web-portal", "https://portal.example.io/auth/callback"},
	{"0oa1b2c3d4EXAMPLE697", "https://app.example.net/login/oauth2/code/okta"},
	{"mobile-ios", "com.example.app:/oauth2redirect"},
	{"spa-dashboard", "http://localhost:3000/callback"},
	{"a1b2c3d4-5678-90ab-cdef-1234567890ab", "https://shop.example.com/.auth/login/aad/callback"},
}

func (g *gen) oauth() {
	for i := range 70 {
		c := pick(g, oauthClients)
		b := pick(g, browsers)
		switch i % 5 {
		case 0, 1: // the authorization request, a browser redirect
			v := url.Values{
				"response_type": {"code"}, "client_id": {c.id}, "redirect_uri": {c.redirect},
				"scope": {pick(g, []string{"openid profile email", "openid offline_access https://graph.example.com/User.Read", "read:user user:email", "openid email groups"})},
				"state": {g.alnum(43)}, "nonce": {g.alnum(22)}, "code_challenge": {g.b64url(32)}, "code_challenge_method": {"S256"},
			}
			if i%2 == 0 {
				v.Set("prompt", "select_account")
				v.Set("response_mode", "query")
			}
			h := g.headers(b, "login.example.com", "document", "navigate", "cross-site", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8")
			g.add("oauth.authorize", "GET", "login.example.com", "/oauth2/v1/authorize?"+v.Encode(), h, nil)
		case 2: // the callback with the code
			u, _ := url.Parse(c.redirect)
			host := u.Host
			if host == "" {
				host = "app.example.net"
			}
			q := url.Values{"code": {g.alnum(40)}, "state": {g.alnum(43)}, "session_state": {g.uuid()}}
			h := g.headers(b, host, "document", "navigate", "cross-site", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8")
			h.Set("Referer", "https://login.example.com/")
			path := u.Path
			if path == "" || u.Scheme != "https" && u.Scheme != "http" {
				path = "/oauth2redirect"
			}
			g.add("oauth.callback", "GET", host, path+"?"+q.Encode(), h, nil)
		case 3: // the token request, from the client's backend
			v := url.Values{"grant_type": {"authorization_code"}, "code": {g.alnum(40)}, "redirect_uri": {c.redirect}, "client_id": {c.id}, "code_verifier": {g.b64url(48)}}
			if i%2 == 0 {
				v = url.Values{"grant_type": {"refresh_token"}, "refresh_token": {g.alnum(64)}, "client_id": {c.id}, "scope": {"openid profile email offline_access"}}
			}
			h := http.Header{"Content-Type": {"application/x-www-form-urlencoded"}, "Accept": {"application/json"},
				"User-Agent": {pick(g, []string{"okhttp/4.12.0", "Go-http-client/1.1", "axios/1.7.7", "python-requests/2.32.3"})}}
			h.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(c.id+":"+g.alnum(40))))
			g.add("oauth.token", "POST", "login.example.com", "/oauth2/v1/token", h, []byte(v.Encode()))
		case 4: // an API call with the access token; userinfo or an API
			h := http.Header{"Authorization": {g.bearer()}, "Accept": {"application/json"}, "User-Agent": {pick(g, browsers).ua}}
			target := pick(g, []string{"/userinfo", "/api/v1/me", "/.well-known/openid-configuration", "/.well-known/jwks.json", "/api/v1/orders?status=open&limit=20"})
			g.add("oauth.api", "GET", "api.example.com", target, h, nil)
		}
	}
}

func (g *gen) b64url(n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(g.rnd.IntN(256))
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// apiHeaders are what a single-page app's fetch() or a mobile client sends to its API.
func (g *gen) apiHeaders(contentType string) http.Header {
	h := http.Header{}
	b := pick(g, browsers)
	if g.rnd.IntN(3) == 0 {
		h.Set("User-Agent", pick(g, []string{"MyShop/5.12.1 (iPhone; iOS 18.1; Scale/3.00)", "okhttp/4.12.0", "Dart/3.5 (dart:io)", "node-fetch/1.0 (+https://github.com/bitinn/node-fetch)"}))
	} else {
		h = g.headers(b, "app.example.net", "empty", "cors", "same-site", "application/json, text/plain, */*")
		h.Set("Origin", "https://app.example.net")
	}
	h.Set("Accept", "application/json")
	if g.rnd.IntN(2) == 0 {
		h.Set("Authorization", g.bearer())
	}
	if g.rnd.IntN(3) == 0 {
		h.Set("X-Request-Id", g.uuid())
	}
	if g.rnd.IntN(4) == 0 {
		h.Set("Idempotency-Key", g.uuid())
	}
	if contentType != "" {
		h.Set("Content-Type", contentType)
	}
	return h
}

// jsonBody marshals v as JSON.stringify does: &, < and > as they are, not
// as Go's \u0026, \u003c and \u003e. The corpus's values always marshal.
func jsonBody(v any) []byte {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		panic(err)
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n"))
}

func join(s ...string) string { return strings.Join(s, "") }
