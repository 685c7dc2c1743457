package benign

import (
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"net/http"
	"net/url"
)

func hmacHex(key, msg string) string {
	m := hmac.New(sha256.New, []byte(key))
	m.Write([]byte(msg))
	return hex.EncodeToString(m.Sum(nil))
}

func hmacB64(key, msg string) string {
	m := hmac.New(sha256.New, []byte(key))
	m.Write([]byte(msg))
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// webhooks are deliveries from SaaS senders, with their signature headers.
func (g *gen) webhooks() {
	for i := range 75 {
		switch i % 6 {
		case 0:
			g.stripe()
		case 1:
			g.github()
		case 2:
			g.slack(i%12 == 2)
		case 3:
			g.shopify()
		case 4:
			g.twilio()
		case 5:
			g.stripe()
		}
	}
}

func (g *gen) stripe() {
	t := g.ts()
	body := jsonBody(map[string]any{"id": "evt_" + g.alnum(24), "object": "event", "api_version": "2024-06-20", "created": t, "livemode": false,
		"type": pick(g, []string{"payment_intent.succeeded", "customer.subscription.updated", "invoice.payment_failed", "charge.refunded"}),
		"data": map[string]any{"object": map[string]any{"id": "pi_" + g.alnum(24), "object": "payment_intent", "amount": g.rnd.IntN(50000), "currency": "eur",
			"customer": "cus_" + g.alnum(14), "description": "Order #" + g.num(10000, 99999) + " – " + pick(g, products), "metadata": map[string]any{"order_id": g.num(10000, 99999)},
			"status": "succeeded", "last_payment_error": nil}},
		"request": map[string]any{"id": "req_" + g.alnum(14), "idempotency_key": g.uuid()}})
	h := http.Header{"Content-Type": {"application/json; charset=utf-8"}, "User-Agent": {"Stripe/1.0 (+https://stripe.com/docs/webhooks)"}, "Accept": {"*/*; q=0.5, application/xml"}, "Cache-Control": {"no-cache"}}
	h.Set("Stripe-Signature", "t="+itoa(t)+",v1="+hmacHex("whsec_"+g.alnum(32), itoa(t)+"."+string(body))+",v0="+g.hex(64))
	g.add("webhook.stripe", "POST", apiHost, "/webhooks/stripe", h, body)
}

func (g *gen) github() {
	event := pick(g, []string{"push", "pull_request", "issue_comment", "issues"})
	repo := map[string]any{"id": g.rnd.IntN(900000000), "full_name": "example/" + pick(g, []string{"shop", "infra", "docs"}), "private": true, "default_branch": "main", "html_url": "https://github.com/example/shop"}
	user := map[string]any{"login": "octo-" + g.alnum(5), "id": g.rnd.IntN(90000000), "type": "User"}
	var payload map[string]any
	switch event {
	case "push":
		payload = map[string]any{"ref": "refs/heads/main", "before": g.hex(40), "after": g.hex(40), "repository": repo, "pusher": map[string]any{"name": "octo", "email": g.email()},
			"commits": []map[string]any{{"id": g.hex(40), "message": pick(g, []string{"Fix select all in the invoices table", "Drop the legacy users table\n\nIt was replaced by accounts in #412.", "Update README.md", "Merge pull request #77 from example/union-types"}), "added": []string{}, "modified": []string{"web/src/App.tsx"}}}}
	case "issue_comment", "issues":
		s := pick(g, snippets)
		payload = map[string]any{"action": "created", "issue": map[string]any{"number": g.rnd.IntN(900), "title": pick(g, tickets)[:20], "user": user},
			"comment": map[string]any{"body": "Repro:\n\n```" + s.lang + "\n" + s.code + "```", "user": user}, "repository": repo, "sender": user}
	default:
		payload = map[string]any{"action": "opened", "number": g.rnd.IntN(900), "pull_request": map[string]any{"title": "Add PATCH /orders/{id}", "body": pick(g, markdown), "draft": false,
			"head": map[string]any{"ref": "feature/patch-orders", "sha": g.hex(40)}, "base": map[string]any{"ref": "main"}}, "repository": repo, "sender": user}
	}
	body := jsonBody(payload)
	h := http.Header{"Content-Type": {"application/json"}, "User-Agent": {"GitHub-Hookshot/" + g.hex(7)}, "Accept": {"*/*"}}
	h.Set("X-GitHub-Event", event)
	h.Set("X-GitHub-Delivery", g.uuid())
	h.Set("X-GitHub-Hook-ID", g.num(100000000, 999999999))
	h.Set("X-GitHub-Hook-Installation-Target-Type", "repository")
	h.Set("X-Hub-Signature-256", "sha256="+hmacHex(g.alnum(20), string(body)))
	m := hmac.New(sha1.New, []byte("k"))
	m.Write(body)
	h.Set("X-Hub-Signature", "sha1="+hex.EncodeToString(m.Sum(nil)))
	g.add("webhook.github", "POST", apiHost, "/webhooks/github", h, body)
}

// slack sends a slash command or an interactive payload (JSON inside a form field).
func (g *gen) slack(interactive bool) {
	var v url.Values
	if interactive {
		v = url.Values{"payload": {string(jsonBody(map[string]any{"type": "block_actions", "user": map[string]any{"id": "U" + g.alnum(10), "username": "anna"}, "team": map[string]any{"id": "T" + g.alnum(10)},
			"actions":      []map[string]any{{"action_id": "approve", "block_id": "b1", "value": "order_" + g.num(1000, 9999), "type": "button", "text": map[string]any{"type": "plain_text", "text": "Approve"}}},
			"response_url": "https://hooks.slack.com/actions/T0/" + g.num(1000000, 9999999) + "/" + g.alnum(24), "trigger_id": g.num(1000, 9999) + "." + g.num(1000, 9999)}))}}
	} else {
		v = url.Values{"token": {g.alnum(24)}, "team_id": {"T" + g.alnum(10)}, "team_domain": {"example"}, "channel_id": {"C" + g.alnum(10)}, "channel_name": {"ops"},
			"user_id": {"U" + g.alnum(10)}, "user_name": {"anna"}, "command": {pick(g, []string{"/deploy", "/oncall", "/poll"})},
			"text":       {pick(g, []string{"shop to production", "who is on call?", `"Lunch?" "Pizza" "Sushi" "Tacos"`, "select all open incidents", "status"})},
			"api_app_id": {"A" + g.alnum(10)}, "response_url": {"https://hooks.slack.com/commands/T0/" + g.num(100000, 999999) + "/" + g.alnum(24)}, "trigger_id": {g.num(1000, 9999) + "." + g.hex(32)}}
	}
	body := v.Encode()
	t := itoa(g.ts())
	h := http.Header{"Content-Type": {"application/x-www-form-urlencoded"}, "User-Agent": {"Slackbot 1.0 (+https://api.slack.com/robots)"}, "Accept": {"application/json,*/*"}}
	h.Set("X-Slack-Request-Timestamp", t)
	h.Set("X-Slack-Signature", "v0="+hmacHex(g.alnum(32), "v0:"+t+":"+body))
	target := "/slack/commands"
	if interactive {
		target = "/slack/interactive"
	}
	g.add("webhook.slack", "POST", apiHost, target, h, []byte(body))
}

func (g *gen) shopify() {
	body := jsonBody(map[string]any{"id": g.rnd.IntN(900000000000), "email": g.email(), "created_at": "2026-12-07T20:15:47+01:00", "currency": "EUR", "total_price": g.num(10, 400) + ".00",
		"note": pick(g, []string{"", "Please select all-cotton gift wrap", "Bitte vor der Tür abstellen"}), "customer": map[string]any{"first_name": pick(g, firstNames), "last_name": pick(g, lastNames)},
		"line_items":       []map[string]any{{"title": pick(g, products), "quantity": 1, "price": "49.90", "sku": "SKU-" + g.num(10000, 99999), "properties": []map[string]any{{"name": "Engraving", "value": "For Mom ♥ 2026"}}}},
		"shipping_address": g.address(), "tags": "wholesale, vip"})
	h := http.Header{"Content-Type": {"application/json"}, "User-Agent": {"Shopify-Captain-Hook"}, "Accept": {"*/*"}}
	h.Set("X-Shopify-Topic", pick(g, []string{"orders/create", "orders/paid", "customers/update"}))
	h.Set("X-Shopify-Hmac-Sha256", hmacB64(g.alnum(32), string(body)))
	h.Set("X-Shopify-Shop-Domain", "example-shop.myshopify.com")
	h.Set("X-Shopify-Api-Version", "2024-10")
	h.Set("X-Shopify-Webhook-Id", g.uuid())
	h.Set("X-Shopify-Triggered-At", "2026-12-07T19:15:47.123456789Z")
	g.add("webhook.shopify", "POST", apiHost, "/webhooks/shopify", h, body)
}

func (g *gen) twilio() {
	v := url.Values{"ToCountry": {"US"}, "ToState": {"CA"}, "SmsMessageSid": {"SM" + g.hex(32)}, "NumMedia": {"0"}, "ToCity": {"SAN FRANCISCO"}, "FromZip": {"94105"},
		"SmsSid": {"SM" + g.hex(32)}, "FromState": {"CA"}, "SmsStatus": {"received"}, "FromCity": {"SAN FRANCISCO"}, "Body": {pick(g, append([]string{"STOP", "YES", "Where's my order #" + g.num(1000, 9999) + "?"}, chats...))},
		"FromCountry": {"US"}, "To": {"+1415555" + g.num(1000, 9999)}, "MessagingServiceSid": {"MG" + g.hex(32)}, "ToZip": {"94107"}, "NumSegments": {"1"},
		"MessageSid": {"SM" + g.hex(32)}, "AccountSid": {"AC" + g.hex(32)}, "From": {"+1650555" + g.num(1000, 9999)}, "ApiVersion": {"2010-04-01"}}
	h := http.Header{"Content-Type": {"application/x-www-form-urlencoded"}, "User-Agent": {"TwilioProxy/1.1"}, "Accept": {"*/*"}, "Cache-Control": {"max-age=259200"}}
	h.Set("X-Twilio-Signature", base64.StdEncoding.EncodeToString([]byte(g.alnum(20))))
	h.Set("I-Twilio-Idempotency-Token", g.uuid())
	g.add("webhook.twilio", "POST", apiHost, "/twilio/sms", h, []byte(v.Encode()))
}
