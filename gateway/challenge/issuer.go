package challenge

import (
	"net/http"
	"net/url"
	"strings"
	"time"
)

// VerifyPath is where a challenge page sends its answer.
const VerifyPath = "/.sekisho/challenge"

// Issuer checks clearances and answers requests without one.
type Issuer struct {
	Keys   *Keys
	Cookie string        // the clearance cookie's name
	TTL    time.Duration // how long a clearance lasts
	// BindJA4 binds tokens and clearances to the client's TLS fingerprint
	// too (Client.JA4); without it the fingerprint is not looked at.
	BindJA4 bool
	Now     func() time.Time
}

// bound is c as this issuer binds to it.
func (is *Issuer) bound(c Client) Client {
	if !is.BindJA4 {
		c.JA4 = ""
	}
	return c
}

// Outcome is what the issuer did with a request, for the log.
type Outcome struct {
	Decision string // "pass", "challenge", "cleared" (an answer accepted), "refused"
	Reason   string
}

func (is *Issuer) now() time.Time {
	if is.Now != nil {
		return is.Now()
	}
	return time.Now()
}

// Cleared reports whether r carries a clearance for c good enough for rule.
func (is *Issuer) Cleared(r *http.Request, c Client, rule Rule) bool {
	c = is.bound(c)
	ck, err := r.Cookie(is.Cookie)
	if err != nil {
		return false
	}
	mode, ok := is.Keys.checkClearance(ck.Value, c, is.now())
	return ok && mode.satisfies(rule.Mode)
}

// Serve answers r, which has no clearance good enough for rule: an answer
// to a challenge is checked and, when right, earns a clearance and a
// redirect back; any other request gets the challenge. secure marks a
// request that came over TLS (the cookie's Secure attribute).
func (is *Issuer) Serve(w http.ResponseWriter, r *http.Request, c Client, rule Rule, secure bool) Outcome {
	c = is.bound(c)
	now := is.now()
	if r.URL.Path == VerifyPath && rule.Mode != ModeStatus {
		return is.verify(w, r, c, rule, secure, now)
	}
	switch rule.Mode {
	case ModeStatus:
		w.Header().Set("Retry-After", "60")
		http.Error(w, "429 too many requests: this client has no clearance", http.StatusTooManyRequests)
		return Outcome{"refused", "no clearance (429 route)"}
	case ModeCookie:
		return is.cookieStep(w, r, c, secure, now)
	}
	t := is.Keys.newToken(c, rule.Mode, rule.difficulty(), now)
	writePage(w, t, rule.difficulty(), returnTo(r.URL.RequestURI()), is.TTL)
	return Outcome{"challenge", string(rule.Mode)}
}

// verify checks a challenge page's answer.
func (is *Issuer) verify(w http.ResponseWriter, r *http.Request, c Client, rule Rule, secure bool, now time.Time) Outcome {
	q := r.URL.Query()
	back := returnTo(q.Get("r"))
	t, err := is.Keys.parseToken(q.Get("t"), c, now)
	switch {
	case err != nil:
		return is.again(w, c, rule, back, now, "token invalid, expired or for another client")
	case t.mode == ModeCookie || !t.mode.satisfies(rule.Mode) || t.difficulty < rule.difficulty():
		return is.again(w, c, rule, back, now, "token for a lighter challenge")
	case !t.solves(q.Get("n")):
		return is.again(w, c, rule, back, now, "wrong answer")
	}
	is.setClearance(w, c, t.mode, secure, now)
	http.Redirect(w, r, back, http.StatusSeeOther)
	return Outcome{"cleared", string(t.mode)}
}

// again gives a new challenge after a refused answer.
func (is *Issuer) again(w http.ResponseWriter, c Client, rule Rule, back string, now time.Time, reason string) Outcome {
	t := is.Keys.newToken(c, rule.Mode, rule.difficulty(), now)
	writePage(w, t, rule.difficulty(), back, is.TTL)
	return Outcome{"challenge", reason}
}

// cookieStep is the cookie check: a redirect that sets a token cookie, and
// on the way back with it, the clearance.
func (is *Issuer) cookieStep(w http.ResponseWriter, r *http.Request, c Client, secure bool, now time.Time) Outcome {
	name := is.Cookie + "_t"
	if ck, err := r.Cookie(name); err == nil {
		if t, err := is.Keys.parseToken(ck.Value, c, now); err == nil && t.mode == ModeCookie {
			is.setClearance(w, c, ModeCookie, secure, now)
			http.SetCookie(w, &http.Cookie{Name: name, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, Secure: secure, SameSite: http.SameSiteLaxMode})
			noStore(w)
			http.Redirect(w, r, returnTo(r.URL.RequestURI()), http.StatusFound)
			return Outcome{"cleared", string(ModeCookie)}
		}
	}
	t := is.Keys.newToken(c, ModeCookie, 0, now)
	http.SetCookie(w, &http.Cookie{Name: name, Value: t, Path: "/", MaxAge: int(TokenTTL / time.Second), HttpOnly: true, Secure: secure, SameSite: http.SameSiteLaxMode})
	noStore(w)
	http.Redirect(w, r, returnTo(r.URL.RequestURI()), http.StatusFound)
	return Outcome{"challenge", string(ModeCookie)}
}

func (is *Issuer) setClearance(w http.ResponseWriter, c Client, m Mode, secure bool, now time.Time) {
	exp := now.Add(is.TTL)
	http.SetCookie(w, &http.Cookie{Name: is.Cookie, Value: is.Keys.newClearance(c, m, exp), Path: "/",
		MaxAge: int(is.TTL / time.Second), HttpOnly: true, Secure: secure, SameSite: http.SameSiteLaxMode})
}

// returnTo is where to send a client back to: a path on this site, never
// another host ("//evil", "/\evil"), never a control character; else "/".
func returnTo(s string) string {
	if len(s) == 0 || len(s) > 4096 || s[0] != '/' || strings.HasPrefix(s, "//") || strings.HasPrefix(s, "/\\") {
		return "/"
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] == 0x7f {
			return "/"
		}
	}
	if u, err := url.Parse(s); err != nil || u.Host != "" || u.Scheme != "" {
		return "/"
	}
	return s
}

func noStore(w http.ResponseWriter) { w.Header().Set("Cache-Control", "no-store") }
