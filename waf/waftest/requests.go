// Package waftest builds the realistic requests that WAF tests and
// benchmarks share: a browser navigation and a 4 KiB contact form, each
// varied by a counter so that nothing keyed on content can help.
package waftest

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// BrowserHeaders sets what a current Chrome sends on a navigation: 10
// headers, a cookie among them, varied by i.
func BrowserHeaders(h http.Header, i int) {
	h.Set("User-Agent", "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36")
	h.Set("Accept", "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8")
	h.Set("Accept-Language", "en-US,en;q=0.9")
	h.Set("Accept-Encoding", "gzip, deflate, br")
	h.Set("Cookie", "session_id=a1b2c3d4e5f6"+strconv.Itoa(i)+"; cart=3; theme=dark")
	h.Set("Referer", "https://shop.example.com/app/home")
	h.Set("Cache-Control", "max-age=0")
	h.Set("Upgrade-Insecure-Requests", "1")
	h.Set("Sec-Fetch-Dest", "document")
	h.Set("Sec-Fetch-Mode", "navigate")
}

// BrowserGET is a search page request with 3 query parameters.
func BrowserGET(i int) *http.Request {
	r, _ := http.NewRequest("GET", "http://shop.example.com/app/search?q=running+shoes+"+strconv.Itoa(i)+"&page=2&sort=price_asc", nil)
	r.RequestURI = r.URL.RequestURI()
	BrowserHeaders(r.Header, i)
	return r
}

// FormPOST4K is a contact form POST with a body of exactly 4096 bytes.
func FormPOST4K(i int) *http.Request { return FormPOST(FormBody4K(i), i) }

// FormPOST is a contact form POST carrying body, with browser headers varied by i.
func FormPOST(body string, i int) *http.Request {
	r, _ := http.NewRequest("POST", "http://shop.example.com/app/contact", strings.NewReader(body))
	r.RequestURI = r.URL.RequestURI()
	BrowserHeaders(r.Header, i)
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	// net/http's server keeps Content-Length in the header map; CRS looks for it.
	r.Header.Set("Content-Length", strconv.Itoa(len(body)))
	return r
}

// FormBody4K is a 4096-byte urlencoded form: 7 short fields and a message.
func FormBody4K(i int) string {
	v := url.Values{
		"name": {"Ann Example"}, "email": {"ann@example.com"}, "phone": {"+1 555 0100"},
		"order": {strconv.Itoa(100000 + i)}, "subject": {"Question about order " + strconv.Itoa(i)},
		"topic": {"shipping"}, "consent": {"yes"},
	}
	head := v.Encode() + "&message="
	words := "Hello, I ordered running shoes last week and would like to know when they will ship. "
	enc := url.QueryEscape(strings.Repeat(words, 4096/len(words)+1))
	return head + enc[:4096-len(head)]
}

// Lorem is the filler of the shared load harness's 4 KiB form.
const Lorem = "Lorem+ipsum+dolor+sit+amet+consectetur+adipiscing+elit+sed+do+eiusmod+tempor+incididunt+ut+labore+et+dolore+magna+aliqua+Ut+enim+ad+minim+veniam+quis+nostrud+exercitation+ullamco+laboris+nisi+ut+aliquip+ex+ea+commodo+consequat+Duis+aute+irure+dolor+in+reprehenderit+in+voluptate+velit+esse+cillum+dolore+eu+fugiat+nulla+pariatur+"

// LoremBody4K is the load harness's 4096-byte form (6 short fields and a
// lorem ipsum message), its order number and subject varied by i.
func LoremBody4K(i int) string {
	t := strconv.Itoa(10000 + i)
	body := "name=Jane+Doe&email=jane.doe%40example.com&order=A-" + t + "&subject=Question+" + t + "+about+my+order&rating=4&newsletter=yes&message="
	return (body + strings.Repeat(Lorem, 4096/len(Lorem)+1))[:4096]
}

// JSONBody16K is the load harness's 16384-byte JSON order (40 line items,
// about 330 values), its order ID varied by i.
func JSONBody16K(i int) string {
	const desc = "Lightweight breathable mesh upper with a cushioned midsole for daily training and long distance running"
	var b strings.Builder
	b.WriteString(`{"order_id":"A-` + strconv.Itoa(100000+i) + `","customer":{"name":"Jane Doe","email":"jane.doe@example.com","phone":"+1 555 0100","address":{"street":"12 Market Street","city":"Springfield","zip":"12345","country":"US"}},"currency":"USD","items":[`)
	for k := 1; k <= 40; k++ {
		if k > 1 {
			b.WriteByte(',')
		}
		b.WriteString(`{"sku":"SKU-` + strconv.Itoa(10000+k*37) + `","name":"Running shoes model ` + strconv.Itoa(k) +
			`","qty":` + strconv.Itoa(k%3+1) + `,"price":` + strconv.Itoa(40+k) + `.99,"color":"blue","size":"42","gift":false,"description":"` + desc + `"}`)
	}
	b.WriteString(`],"notes":"Please deliver in the afternoon`)
	const tail = `"}`
	for b.Len() < 16384-len(tail) {
		b.WriteString(" thank you")
	}
	return b.String()[:16384-len(tail)] + tail
}
