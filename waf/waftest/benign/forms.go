package benign

import (
	"bytes"
	"mime/multipart"
	"net/http"
	"net/url"
	"strings"
)

func (g *gen) formHeaders(host string) http.Header {
	h := g.headers(pick(g, browsers), host, "document", "navigate", "same-origin", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8")
	h.Set("Content-Type", "application/x-www-form-urlencoded")
	h.Set("Origin", "https://"+host)
	h.Set("Cache-Control", "max-age=0")
	return h
}

// forms are urlencoded browser form posts.
func (g *gen) forms() {
	for i := range 70 {
		host := pick(g, sites)
		var v url.Values
		target := "/contact"
		switch i % 5 {
		case 0:
			target = "/login"
			v = url.Values{"username": {g.email()}, "password": {g.alnum(8) + pick(g, []string{"!", "#", "$", "%", "&", "'", "\"", "<3"}) + g.alnum(4)}, "remember_me": {"on"}, "csrf_token": {g.alnum(40)}, "next": {"/account"}}
		case 1:
			v = url.Values{"name": {g.name()}, "email": {g.email()}, "subject": {pick(g, []string{"Order question", "Return request", "Partnership", "Other"})}, "message": {pick(g, tickets)}, "csrf_token": {g.alnum(40)}}
		case 2:
			target = "/checkout/address"
			a := g.address()
			v = url.Values{"first_name": {pick(g, firstNames)}, "last_name": {pick(g, lastNames)}, "line1": {a["line1"].(string)}, "line2": {a["line2"].(string)},
				"city": {a["city"].(string)}, "zip": {a["postal_code"].(string)}, "country": {a["country"].(string)}, "phone": {"+1 (555) 01" + g.num(10, 99)}, "same_billing": {"1"}}
		case 3: // a settings form that carries a JSON document in a hidden field
			target = "/account/preferences"
			v = url.Values{"prefs": {string(jsonBody(map[string]any{"theme": "dark", "notifications": map[string]any{"email": true, "sms": false}, "dashboard": []string{"orders", "returns"}}))},
				"return_to": {"https://" + host + "/account?tab=preferences"}, "_method": {"PATCH"}}
		case 4:
			target = "/reviews/new"
			v = url.Values{"product_id": {g.num(1000, 9999)}, "rating": {g.num(1, 6)}, "title": {pick(g, []string{"Love it", "Select a larger size", "Not as described", "Perfect gift"})}, "body": {pick(g, reviews)}}
		}
		g.add("form.urlencoded", "POST", host, target, g.formHeaders(host), []byte(v.Encode()))
	}
}

// multipartBody builds a multipart/form-data body as a browser does.
type multipartBody struct {
	buf bytes.Buffer
	w   *multipart.Writer
}

func (g *gen) newMultipart() *multipartBody {
	m := &multipartBody{}
	m.w = multipart.NewWriter(&m.buf)
	// Browsers' boundaries, not Go's 60 hex digits.
	b := pick(g, []string{"----WebKitFormBoundary" + g.alnum(16), "---------------------------" + g.num(100000000, 999999999) + g.num(100000000, 999999999) + g.num(100000000, 999999999)})
	if err := m.w.SetBoundary(b); err != nil {
		panic(err)
	}
	return m
}

func (m *multipartBody) field(name, value string) { m.w.WriteField(name, value) }

func (m *multipartBody) file(field, filename, contentType string, data []byte) {
	h := map[string][]string{
		"Content-Disposition": {`form-data; name="` + field + `"; filename="` + filename + `"`},
		"Content-Type":        {contentType},
	}
	p, _ := m.w.CreatePart(h)
	p.Write(data)
}

func (m *multipartBody) done() (contentType string, body []byte) {
	m.w.Close()
	return m.w.FormDataContentType(), m.buf.Bytes()
}

// multipartForms are browser forms with enctype multipart and no file, or an empty one.
func (g *gen) multipartForms() {
	for i := range 40 {
		host := pick(g, sites)
		m := g.newMultipart()
		m.field("csrf_token", g.alnum(40))
		switch i % 3 {
		case 0:
			m.field("name", g.name())
			m.field("email", g.email())
			m.field("message", pick(g, tickets))
			m.file("attachment", "", "application/octet-stream", nil)
		case 1:
			m.field("title", pick(g, []string{"Weekend trip", "Union meeting notes", "Recipe: Grandma's apple pie"}))
			m.field("body", pick(g, markdown))
			m.field("tags", "notes,2026")
		case 2:
			m.field("bio", pick(g, reviews)+" "+pick(g, chats))
			m.field("website", "https://"+strings.ToLower(pick(g, lastNames))+".example.com/")
			m.field("location", pick(g, cities))
		}
		ct, body := m.done()
		h := g.formHeaders(host)
		h.Set("Content-Type", ct)
		g.add("form.multipart", "POST", host, pick(g, []string{"/support/new", "/posts", "/account/profile"}), h, body)
	}
}
