package waf_test

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/sekisho/sekisho/waf"
)

// BenchmarkWAF_Form1M is the WAF step for a 1 MiB urlencoded form, fully
// inspected (the inspection budget is raised: by default such a form gets 413).
func BenchmarkWAF_Form1M(b *testing.B) {
	msg := url.QueryEscape(strings.Repeat("Hello, I ordered running shoes last week and would like to know when they will ship. ", 1<<20/88))
	// 4 distinct forms (a number in the first field): each holds 1 MiB.
	benchInspectLimit(b, waf.Config{Name: "big", RequestBodyLimit: 2 << 20, RequestBodyNoFilesLimit: 2 << 20}, 4, func(i int) *http.Request {
		body := "name=Ann" + strconv.Itoa(i) + "&email=ann%40example.com&message=" + msg
		r, _ := http.NewRequest("POST", "http://shop.example.com/app/contact", strings.NewReader(body))
		r.Header.Set("User-Agent", "Mozilla/5.0 Chrome/131.0")
		r.Header.Set("Accept", "text/html")
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		r.Header.Set("Content-Length", strconv.Itoa(len(body)))
		return r
	})
}
