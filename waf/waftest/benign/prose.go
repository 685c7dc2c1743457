package benign

import (
	"net/url"
	"strings"
)

// prose is JSON that carries what people write: reviews, tickets, chat, comments.
func (g *gen) prose() {
	for i := range 160 {
		var body []byte
		target := "/api/v1/reviews"
		switch i % 4 {
		case 0:
			body = jsonBody(map[string]any{"product_id": g.num(1000, 9999), "rating": 1 + g.rnd.IntN(5), "title": pick(g, []string{"Great", "Select a size up", "OK-ish", "¡Genial!", "最高"}),
				"body": pick(g, reviews), "author": map[string]any{"name": g.name(), "verified": true}, "locale": pick(g, []string{"en", "de", "ja", "es", "zh"})})
		case 1:
			target = "/api/v2/tickets"
			body = jsonBody(map[string]any{"ticket": map[string]any{"subject": pick(g, []string{"Login problem", "Refund", "Where is my order?", "Account deletion", "API question"}),
				"comment": map[string]any{"body": pick(g, tickets) + "\n\n" + pick(g, tickets)}, "priority": pick(g, []string{"low", "normal", "high"}),
				"requester": map[string]any{"name": g.name(), "email": g.email()}, "tags": []string{"web", "order"}}})
		case 2:
			target = "/api/v1/conversations/" + g.uuid() + "/messages"
			body = jsonBody(map[string]any{"text": pick(g, chats), "client_msg_id": g.uuid(), "reply_to": nil, "mentions": []string{}})
		case 3:
			target = "/api/v1/pages/" + g.num(1, 500)
			body = jsonBody(map[string]any{"title": pick(g, []string{"Meeting notes", "Release 4.2", "Onboarding"}), "content_md": pick(g, markdown), "draft": g.rnd.IntN(2) == 0})
		}
		method := "POST"
		if i%4 == 3 {
			method = "PUT"
		}
		g.add("json.prose", method, apiHost, target, g.apiHeaders("application/json"), body)
	}
}

// codeSnippets are developer tools' payloads: gists, issue comments, notebooks, paste bins.
func (g *gen) codeSnippets() {
	for i := range 50 {
		s := pick(g, snippets)
		var body []byte
		target := "/api/v1/gists"
		switch i % 3 {
		case 0:
			body = jsonBody(map[string]any{"description": "snippet from the " + s.lang + " docs", "public": false, "files": map[string]any{"example." + s.lang: map[string]any{"content": s.code}}})
		case 1:
			target = "/api/v2/tickets/" + g.num(1000, 9999) + "/comments"
			body = jsonBody(map[string]any{"body": "This is what I run:\n\n```" + s.lang + "\n" + s.code + "```\n\nand it fails with a 500. Any idea?", "public": true})
		case 2:
			target = "/api/notebooks/" + g.uuid() + "/cells"
			body = jsonBody(map[string]any{"cell_type": "code", "language": s.lang, "source": strings.Split(s.code, "\n"), "metadata": map[string]any{"collapsed": false}})
		}
		g.add("json.code", "POST", apiHost, target, g.apiHeaders("application/json"), body)
	}
}

var searchQueries = []string{
	`"exact phrase" -exclude site:example.com OR docs`, "C++ & C#", "price < 100", "price > 50 AND rating >= 4", "women's rain jacket",
	"Rock 'n' Roll t-shirt", "50% off", "#1 best seller", "wool socks size 39-42", "usb-c to usb-a adapter", "select comfort mattress",
	"union jack flag", "drop earrings", "order tracking", "where is my order", "1/2 inch drill bit", "\"trail runner\" -used",
	"München Laufschuhe", "靴 メンズ", "chaussures de randonnée", "zapatillas niño", "café", "tom & jerry", "a+b", "node.js vs deno",
	"how to delete account", "update password", "insert coin", "O'Reilly books", "size:m color:blue", "(red OR blue) jacket", "~/Downloads",
	"email@example.com", "+49 30 1234567", "tags:[sale]", "100% cotton", "what is 2+2?", "k8s ingress 404", "SELECT shoes on sale",
}

// search is what people type into search boxes, in query strings and form posts.
func (g *gen) search() {
	for i := range 80 {
		q := pick(g, searchQueries)
		host := pick(g, sites)
		h := g.headers(pick(g, browsers), host, "document", "navigate", "same-origin", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8")
		switch i % 4 {
		case 0, 1:
			g.add("search", "GET", host, "/search?q="+url.QueryEscape(q)+"&page="+g.num(1, 5), h, nil)
		case 2:
			v := url.Values{"query": {q}, "filters": {`{"in_stock":true,"price":{"lte":100}}`}, "sort": {"relevance"}}
			g.add("search", "GET", host, "/api/search?"+v.Encode(), g.apiHeaders(""), nil)
		case 3: // an autocomplete keystroke, as the browser encodes it (%20, not +)
			g.add("search", "GET", host, "/suggest?term="+url.PathEscape(q)+"&limit=8", g.apiHeaders(""), nil)
		}
	}
}

// configFetches are ordinary downloads of JSON configuration and metadata.
func (g *gen) configFetches() {
	for _, target := range []string{
		"/api/v1/config.json", "/config.json", "/assets/config/app.config.json", "/.well-known/openid-configuration", "/.well-known/security.txt",
		"/.well-known/apple-app-site-association", "/manifest.json", "/robots.txt", "/sitemap.xml", "/api/v1/settings.json",
		"/i18n/de.json", "/static/locales/ja/translation.json", "/api/v1/feature-flags?env=production", "/openapi.yaml", "/swagger/v1/swagger.json",
		"/api/v1/config.json?v=" + g.hex(8), "/env.js", "/version.txt", "/ads.txt", "/feed.xml",
	} {
		g.add("config.fetch", "GET", pick(g, sites), target, g.apiHeaders(""), nil)
	}
}
