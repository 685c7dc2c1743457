package benign

import (
	"encoding/base64"
	"net/http"
	"net/url"
	"strings"
)

// A browser is the header set one browser family sends.
type browser struct {
	ua, chUA, platform string // chUA empty: not a Chromium browser
	lang               string
}

var browsers = []browser{
	{ua: "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
		chUA: `"Google Chrome";v="131", "Chromium";v="131", "Not_A Brand";v="24"`, platform: `"Windows"`, lang: "en-US,en;q=0.9"},
	{ua: "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/132.0.0.0 Safari/537.36",
		chUA: `"Not A(Brand";v="8", "Chromium";v="132", "Google Chrome";v="132"`, platform: `"macOS"`, lang: "de-DE,de;q=0.9,en-US;q=0.8,en;q=0.7"},
	{ua: "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0",
		chUA: `"Microsoft Edge";v="131", "Chromium";v="131", "Not_A Brand";v="24"`, platform: `"Windows"`, lang: "fr-FR,fr;q=0.9,en;q=0.8"},
	{ua: "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.6778.104 Mobile Safari/537.36",
		chUA: `"Google Chrome";v="131", "Chromium";v="131", "Not_A Brand";v="24"`, platform: `"Android"`, lang: "ja-JP,ja;q=0.9,en-US;q=0.8"},
	{ua: "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0", lang: "en-GB,en;q=0.5"},
	{ua: "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0", lang: "pl,en-US;q=0.7,en;q=0.3"},
	{ua: "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15", lang: "en-US,en;q=0.9"},
	{ua: "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1", lang: "es-ES,es;q=0.9"},
}

var sites = []string{"shop.example.com", "www.example.org", "app.example.net", "news.example.com", "portal.example.io"}

var pages = []string{
	"/", "/products/running-shoes", "/products/trail-runner-2?color=blue&size=42", "/cart", "/checkout/shipping",
	"/account/orders?page=2", "/blog/2026/11/how-we-ship-faster", "/docs/getting-started",
	"/category/women/jackets?sort=price_asc&filter[brand]=nordic&filter[size]=m", "/help/returns-and-refunds",
	"/search?q=wool+socks", "/de/produkte/laufschuhe", "/ja/%E5%95%86%E5%93%81/%E9%9D%B4", "/login?next=%2Faccount%2Fsettings",
	"/articles/select-the-right-tent-for-winter", "/store-locator?lat=52.52&lng=13.405&radius=25km",
	"/events/union-square-market-2026", "/u/anna.k/posts?tab=drafts", "/wiki/Drop_(liquid)", "/compare?ids=1812,1813,1907",
}

var assets = []struct{ path, dest, accept string }{
	{"/static/js/main.4f9c2d1e.js", "script", "*/*"},
	{"/static/js/vendor~react.8a1b2c3d.chunk.js", "script", "*/*"},
	{"/_next/static/chunks/pages/_app-2b6d8e0f1a3c5e7b.js", "script", "*/*"},
	{"/static/css/app.93e1f0c2.css", "style", "text/css,*/*;q=0.1"},
	{"/fonts/inter-var-latin.woff2", "font", "*/*"},
	{"/images/hero@2x.webp", "image", "image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8"},
	{"/img/products/1812/main.jpg?w=640&q=75", "image", "image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8"},
	{"/favicon.ico", "image", "image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8"},
	{"/manifest.webmanifest", "manifest", "*/*"},
	{"/sw.js", "serviceworker", "*/*"},
	{"/static/media/logo.svg", "image", "image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8"},
	{"/api/v2/recommendations?placement=home&limit=12", "empty", "application/json, text/plain, */*"},
}

// headers returns what b sends for a request of the given fetch destination and mode.
func (g *gen) headers(b browser, host, dest, mode, site, accept string) http.Header {
	h := http.Header{}
	h.Set("User-Agent", b.ua)
	h.Set("Accept", accept)
	h.Set("Accept-Language", b.lang)
	h.Set("Accept-Encoding", "gzip, deflate, br, zstd")
	if b.chUA != "" {
		h.Set("Sec-Ch-Ua", b.chUA)
		h.Set("Sec-Ch-Ua-Mobile", map[bool]string{true: "?1", false: "?0"}[strings.Contains(b.ua, "Mobile")])
		h.Set("Sec-Ch-Ua-Platform", b.platform)
	}
	if !strings.Contains(b.ua, "Version/") || g.rnd.IntN(2) == 0 { // older Safari sends no Sec-Fetch-*
		h.Set("Sec-Fetch-Dest", dest)
		h.Set("Sec-Fetch-Mode", mode)
		h.Set("Sec-Fetch-Site", site)
	}
	if dest == "document" {
		h.Set("Sec-Fetch-User", "?1")
		h.Set("Upgrade-Insecure-Requests", "1")
	}
	if site != "none" {
		h.Set("Referer", "https://"+host+pick(g, pages))
	}
	if g.rnd.IntN(3) > 0 {
		h.Set("Cookie", g.cookies(host))
	}
	return h
}

// cookies is what a site with analytics, consent and a session leaves in a browser.
func (g *gen) cookies(host string) string {
	t := g.ts()
	hj := base64.StdEncoding.EncodeToString([]byte(`{"id":"` + g.uuid() + `","created":` + g.num(1700000000, 1790000000) + `000,"existing":true}`))
	consent := url.Values{
		"isGpcEnabled": {"0"}, "datestamp": {"Mon Dec 07 2026 19:12:44 GMT+0100 (Mitteleuropäische Normalzeit)"},
		"version": {"202411.1.0"}, "browserGpcFlag": {"0"}, "isIABGlobal": {"false"}, "hosts": {""},
		"consentId": {g.uuid()}, "interactionCount": {"1"}, "landingPath": {"NotLandingPage"},
		"groups": {"C0001:1,C0003:1,C0002:1,C0004:0"}, "AwaitingReconsent": {"false"},
	}
	parts := []string{
		"_ga=GA1.1." + g.num(100000000, 999999999) + "." + itoa(t-86400*30),
		"_ga_" + strings.ToUpper(g.alnum(10)) + "=GS1.1." + itoa(t) + ".4.1." + itoa(t+60) + ".0.0.0",
		"_gid=GA1.2." + g.num(100000000, 999999999) + "." + itoa(t),
		"_fbp=fb.1." + itoa(t) + "123." + g.num(100000000, 999999999),
		"_hjSessionUser_" + g.num(1000000, 9999999) + "=" + hj,
		"OptanonConsent=" + consent.Encode(),
		"ajs_anonymous_id=%22" + g.uuid() + "%22",
		"csrftoken=" + g.alnum(32),
		"session=" + g.jwt(map[string]any{"sub": g.num(1000, 999999), "sid": g.uuid(), "iat": t, "exp": t + 3600, "iss": "https://" + host}),
		"theme=dark", "lang=" + pick(g, []string{"en", "de", "fr", "ja", "es"}), "cart_id=" + g.alnum(24),
	}
	g.rnd.Shuffle(len(parts), func(i, j int) { parts[i], parts[j] = parts[j], parts[i] })
	return strings.Join(parts[:6+g.rnd.IntN(len(parts)-5)], "; ")
}

func (g *gen) browserPages() {
	for range 130 {
		b, host := pick(g, browsers), pick(g, sites)
		site := pick(g, []string{"none", "same-origin", "cross-site"})
		h := g.headers(b, host, "document", "navigate", site, "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,image/apng,*/*;q=0.8,application/signed-exchange;v=b3;q=0.7")
		if site == "cross-site" {
			h.Set("Referer", pick(g, []string{"https://www.google.com/", "https://duckduckgo.com/", "https://t.co/" + g.alnum(10), "https://news.ycombinator.com/item?id=" + g.num(40000000, 42000000)}))
		}
		target := pick(g, pages)
		if g.rnd.IntN(4) == 0 {
			target += sep(target) + "utm_source=newsletter&utm_medium=email&utm_campaign=winter_sale_2026&gclid=" + g.alnum(40)
		}
		g.add("browser.page", "GET", host, target, h, nil)
	}
}

func (g *gen) browserAssets() {
	for range 110 {
		b, host, a := pick(g, browsers), pick(g, sites), pick(g, assets)
		mode := "no-cors"
		switch a.dest {
		case "font", "empty", "manifest":
			mode = "cors"
		case "serviceworker":
			mode = "same-origin"
		}
		h := g.headers(b, host, a.dest, mode, "same-origin", a.accept)
		if a.dest == "serviceworker" {
			h.Set("Service-Worker", "script")
		}
		if g.rnd.IntN(4) == 0 {
			h.Set("If-None-Match", `W/"`+g.hex(8)+"-"+g.hex(24)+`"`)
			h.Set("If-Modified-Since", "Sat, 05 Dec 2026 10:21:"+g.num(10, 59)+" GMT")
		}
		g.add("browser.asset", "GET", host, a.path, h, nil)
	}
}

func sep(target string) string {
	if strings.Contains(target, "?") {
		return "&"
	}
	return "?"
}
