package waf_test

import (
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/sekisho/sekisho/waf"
	"github.com/sekisho/sekisho/waf/waftest"
)

// BenchmarkWAF_Form1M is the WAF step for a 1 MiB urlencoded form, fully
// inspected (the inspection budget is raised: by default such a form gets
// 413). Its text is the load harness's: lorem ipsum, which CRS's
// base64Decode turns into bytes that are not UTF-8.
func BenchmarkWAF_Form1M(b *testing.B) {
	msg := strings.Repeat(waftest.Lorem, 1<<20/len(waftest.Lorem))
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
