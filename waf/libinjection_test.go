package waf_test

import (
	"context"
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/corazawaf/libinjection-go"
	"golang.org/x/mod/modfile"
	"golang.org/x/mod/semver"

	"github.com/sekisho/sekisho/waf"
	"github.com/sekisho/sekisho/waf/waftest"
)

// quotes80K is the input that libinjection-go before v0.3.6 checked in
// quadratic time: 80 KB of single quotes took 0.5 s in IsSQLi (v0.3.3),
// 1.4 ms in v0.3.6.
var quotes80K = strings.Repeat("'", 80_000)

// minLibinjection is the first libinjection-go without the quadratic SQLi check.
const minLibinjection = "v0.3.6"

// TestLibinjectionVersion guards the dependency without timing anything:
// Coraza's own requirement (v0.3.3 for Coraza v3.8.1) must not win back.
// It reads go.mod, which lists every selected module version (go >= 1.17);
// test binaries carry no module list in their build info.
func TestLibinjectionVersion(t *testing.T) {
	data, err := os.ReadFile("../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	f, err := modfile.Parse("go.mod", data, nil)
	if err != nil {
		t.Fatal(err)
	}
	v := ""
	for _, r := range f.Require {
		if r.Mod.Path == "github.com/corazawaf/libinjection-go" {
			v = r.Mod.Version
		}
	}
	for _, r := range f.Replace {
		if r.Old.Path == "github.com/corazawaf/libinjection-go" {
			v = r.New.Version
		}
	}
	if v == "" {
		t.Fatal("go.mod does not require github.com/corazawaf/libinjection-go")
	}
	if semver.Compare(v, minLibinjection) < 0 {
		t.Fatalf("libinjection-go %s is required; %s or newer is needed (quadratic IsSQLi before it)", v, minLibinjection)
	}
}

// BenchmarkLibinjection_Quotes80K is libinjection's SQLi check alone on 80 KB
// of quotes: about 1.4 ms per op with v0.3.6, 0.5 s with v0.3.3.
func BenchmarkLibinjection_Quotes80K(b *testing.B) {
	b.SetBytes(int64(len(quotes80K)))
	for b.Loop() {
		libinjection.IsSQLi(quotes80K)
	}
}

// BenchmarkWAF_Quotes80K is the WAF step (CRS PL1) for a form whose one
// field is 80 KB of quotes: a client could send it to burn CPU if
// libinjection turned quadratic again.
func BenchmarkWAF_Quotes80K(b *testing.B) {
	e := engine(b, waf.Config{Name: "quotes", RequestBodyLimit: 1 << 20, RequestBodyNoFilesLimit: 1 << 20})
	body := "q=" + quotes80K
	conn := waf.Conn{ClientIP: "192.0.2.10", ClientPort: 40000, ServerIP: "127.0.0.1", ServerPort: 443}
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		r := waftest.FormPOST(body, 0)
		tx := e.NewTx(context.Background(), "bench")
		if v := tx.InspectRequest(r, r.URL.RequestURI(), conn); v.Status == http.StatusRequestEntityTooLarge {
			b.Fatal("the form was not inspected: 413")
		}
		tx.Close()
	}
}
