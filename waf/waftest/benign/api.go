package benign

import (
	"net/http"
	"net/url"
	"strings"
)

const apiHost = "api.example.com"

func (g *gen) name() string { return pick(g, firstNames) + " " + pick(g, lastNames) }

func (g *gen) email() string {
	return strings.ToLower(pick(g, []string{"anna", "j.schmidt", "mei.tanaka", "carlos_g", "ozzy+shop", "f.al-sayed"})) + g.num(1, 99) + "@" + pick(g, []string{"example.com", "example.org", "mail.example.net"})
}

func (g *gen) address() map[string]any {
	return map[string]any{"line1": g.num(1, 200) + " " + pick(g, []string{"Market Street", "Hauptstraße", "Rue de la Paix", "Calle Mayor", "ul. Długa"}),
		"line2": pick(g, []string{"", "Apt. 4B", "c/o Reception", "2nd floor"}), "city": pick(g, cities), "postal_code": g.num(10000, 99999), "country": pick(g, []string{"US", "DE", "FR", "JP", "PL", "BR"})}
}

func (g *gen) order() map[string]any {
	items := []map[string]any{}
	for range 1 + g.rnd.IntN(4) {
		items = append(items, map[string]any{"sku": "SKU-" + g.num(10000, 99999), "name": pick(g, products), "quantity": 1 + g.rnd.IntN(3), "unit_price": map[string]any{"amount": g.num(500, 25000), "currency": "EUR"}})
	}
	return map[string]any{"customer": map[string]any{"name": g.name(), "email": g.email()}, "shipping_address": g.address(), "items": items,
		"notes":  pick(g, []string{"", "Leave at the door, please.", "Gift wrap – it's a birthday present!", "Call me before delivery: +49 30 1234567"}),
		"coupon": pick(g, []string{"", "WINTER26", "FREESHIP"}), "metadata": map[string]any{"source": "web", "ab_test": "checkout_v2"}}
}

// restAPI sends every method to a JSON API, as a SPA or mobile client does.
func (g *gen) restAPI() {
	for i := range 170 {
		id := g.num(1000, 99999)
		switch i % 9 {
		case 0, 1:
			target := pick(g, []string{"/api/v1/orders/" + id, "/api/v1/products?category=shoes&page=" + g.num(1, 9) + "&per_page=24&sort=-created_at",
				"/api/v1/users/me", "/api/v1/orders?status=shipped&created_after=2026-11-01T00:00:00Z", "/v2/customers/cus_" + g.alnum(14) + "/invoices?limit=10&expand[]=data.subscription",
				"/api/v1/search?q=" + url.QueryEscape(pick(g, products)) + "&fields=id,name,price", "/api/v1/notifications?unread=true&since=" + itoa(g.ts())})
			g.add("api.get", "GET", apiHost, target, g.apiHeaders(""), nil)
		case 2, 3:
			g.add("api.post.json", "POST", apiHost, "/api/v1/orders", g.apiHeaders("application/json"), jsonBody(g.order()))
		case 4:
			body := jsonBody(map[string]any{"display_name": g.name(), "email": g.email(), "locale": pick(g, []string{"en-US", "de-DE", "ja-JP", "fr-FR"}),
				"timezone": pick(g, []string{"Europe/Berlin", "America/New_York", "Asia/Tokyo"}), "marketing_opt_in": g.rnd.IntN(2) == 0, "address": g.address()})
			g.add("api.put", "PUT", apiHost, "/api/v1/users/"+id, g.apiHeaders("application/json; charset=utf-8"), body)
		case 5:
			body := jsonBody(map[string]any{"status": pick(g, []string{"cancelled", "on_hold", "processing"}), "reason": pick(g, tickets)})
			g.add("api.patch", "PATCH", apiHost, "/api/v1/orders/"+id, g.apiHeaders("application/json"), body)
		case 6:
			g.add("api.delete", "DELETE", apiHost, pick(g, []string{"/api/v1/cart/items/" + id, "/api/v1/sessions/current", "/api/v1/webhooks/" + g.uuid(), "/api/v1/users/me/addresses/" + id}), g.apiHeaders(""), nil)
		case 7: // a CORS preflight
			h := http.Header{"Origin": {"https://app.example.net"}, "Access-Control-Request-Method": {pick(g, []string{"PUT", "PATCH", "DELETE", "POST"})},
				"Access-Control-Request-Headers": {"authorization,content-type,x-request-id"}, "User-Agent": {pick(g, browsers).ua}, "Accept": {"*/*"},
				"Sec-Fetch-Mode": {"cors"}, "Sec-Fetch-Site": {"same-site"}, "Sec-Fetch-Dest": {"empty"}}
			g.add("api.options", "OPTIONS", apiHost, "/api/v1/orders/"+id, h, nil)
		case 8:
			g.add("api.head", "HEAD", apiHost, pick(g, []string{"/api/v1/exports/" + g.uuid() + ".csv", "/health", "/api/v1/products/" + id}), g.apiHeaders(""), nil)
		}
	}
}

// plusJSON is JSON under the media types APIs register for it (RFC 6838 +json).
func (g *gen) plusJSON() {
	for i := range 50 {
		id := g.num(1, 9999)
		switch i % 4 {
		case 0:
			body := jsonBody(map[string]any{"data": map[string]any{"type": "articles", "attributes": map[string]any{"title": pick(g, []string{"Select the right tent", "Union Square market opens", "How to drop a size"}), "body": pick(g, markdown)},
				"relationships": map[string]any{"author": map[string]any{"data": map[string]any{"type": "people", "id": id}}}}})
			g.add("api.plusjson", "POST", apiHost, "/api/articles", g.apiHeaders("application/vnd.api+json"), body)
		case 1:
			body := jsonBody(map[string]any{"title": pick(g, products), "tags": []string{"sale", "winter"}, "description": nil, "shipping": map[string]any{"weight_g": 850}})
			g.add("api.plusjson", "PATCH", apiHost, "/api/v1/products/"+id, g.apiHeaders("application/merge-patch+json"), body)
		case 2:
			body := jsonBody([]map[string]any{{"op": "replace", "path": "/email", "value": g.email()}, {"op": "add", "path": "/tags/-", "value": "vip"}, {"op": "remove", "path": "/nickname"}})
			g.add("api.plusjson", "PATCH", apiHost, "/api/v1/users/"+id, g.apiHeaders("application/json-patch+json"), body)
		case 3: // a client reporting an error it got, in RFC 9457 form
			body := jsonBody(map[string]any{"type": "https://example.com/probs/out-of-credit", "title": "You do not have enough credit.", "status": 403,
				"detail": "Your current balance is 30, but that costs 50.", "instance": "/account/12345/msgs/abc"})
			g.add("api.plusjson", "POST", apiHost, "/api/v1/client-errors", g.apiHeaders("application/problem+json"), body)
		}
	}
}

// ndjson is newline-delimited JSON: log shippers, bulk imports, analytics events.
func (g *gen) ndjson() {
	for i := range 40 {
		var lines []string
		for range 2 + g.rnd.IntN(6) {
			ev := map[string]any{"ts": "2026-12-07T19:" + g.num(10, 59) + ":" + g.num(10, 59) + "." + g.num(100, 999) + "Z", "event": pick(g, []string{"page_view", "add_to_cart", "checkout_started", "search"}),
				"user_id": g.uuid(), "props": map[string]any{"path": pick(g, pages), "referrer": "https://www.google.com/", "query": pick(g, []string{"wool socks", "rain jacket women", "select tent size"})}}
			if i%3 == 0 {
				ev = map[string]any{"@timestamp": "2026-12-07T19:" + g.num(10, 59) + ":00Z", "level": pick(g, []string{"info", "warn", "error"}), "service": "checkout",
					"message": pick(g, []string{"order placed", "payment declined: insufficient funds", "retrying request to inventory (attempt 2 of 3)", "cache miss for key product:1812"}), "trace_id": g.hex(32)}
			}
			lines = append(lines, string(jsonBody(ev)))
		}
		ct := pick(g, []string{"application/x-ndjson", "application/x-ndjson", "application/jsonl"})
		g.add("api.ndjson", "POST", apiHost, pick(g, []string{"/v1/events/batch", "/_bulk_ingest", "/api/v1/import"}), g.apiHeaders(ct), []byte(strings.Join(lines, "\n")+"\n"))
	}
}

// textPlain is text/plain: navigator.sendBeacon, CSP and error reports, notes APIs, raw text endpoints.
func (g *gen) textPlain() {
	for i := range 40 {
		var body string
		switch i % 4 {
		case 0:
			body = string(jsonBody(map[string]any{"type": "visibility", "t": g.ts(), "path": pick(g, pages), "dur_ms": g.rnd.IntN(90000)}))
		case 1:
			body = pick(g, tickets)
		case 2:
			body = pick(g, markdown)
		case 3:
			body = pick(g, chats) + "\n" + pick(g, chats)
		}
		// navigator.sendBeacon() POSTs text/plain;charset=UTF-8; notes and paste APIs also PUT.
		method, ct := "POST", "text/plain;charset=UTF-8"
		target := pick(g, []string{"/beacon", "/collect?v=2&tid=G-" + strings.ToUpper(g.alnum(10))})
		if i%4 != 0 {
			method, ct = pick(g, []string{"POST", "PUT"}), pick(g, []string{"text/plain", "text/plain; charset=utf-8"})
			target = pick(g, []string{"/api/v1/notes/" + g.num(1, 999), "/api/v1/paste"})
		}
		g.add("api.text", method, apiHost, target, g.apiHeaders(ct), []byte(body))
	}
}
