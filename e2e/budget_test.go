package e2e

import (
	"bytes"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// TestBudget_DefaultsRefuseLargeFormsButPassUploads: with the default
// policy, a form larger than the inspection budget (128 KiB of arguments)
// gets 413 and never reaches the backend, while a file upload larger than
// that (under the 1 MiB body limit) is inspected and passes byte-exact.
func TestBudget_DefaultsRefuseLargeFormsButPassUploads(t *testing.T) {
	a := StartBackend(t, "a")
	g := StartGateway(t, webConfig, ConfigData{"A": a.Addr})
	base := g.URL("http", "web#0")
	send := func(ctype string, body []byte) int {
		t.Helper()
		req, _ := http.NewRequest("POST", base+"/upload", bytes.NewReader(body))
		req.Host = "localhost"
		req.Header.Set("Content-Type", ctype)
		req.Header.Set("User-Agent", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36")
		req.Header.Set("Accept", "text/html")
		resp, err := H1Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}

	form := "note=" + url.QueryEscape(strings.Repeat("running shoes ", 200<<10/14))
	if code := send("application/x-www-form-urlencoded", []byte(form)); code != 413 {
		t.Fatalf("200 KiB form: %d, want 413", code)
	}
	if n := len(a.Requests()); n != 0 {
		t.Fatalf("backend received %d requests, want none", n)
	}

	var mp bytes.Buffer
	w := multipart.NewWriter(&mp)
	w.WriteField("title", "holiday photo")
	fw, _ := w.CreateFormFile("photo", "beach.jpg")
	fw.Write(bytes.Repeat([]byte{0xff, 0xd8, 0x00, 'J', 'F', 'I', 'F'}, 600<<10/7))
	w.Close()
	if code := send(w.FormDataContentType(), mp.Bytes()); code != 200 {
		t.Fatalf("600 KiB upload: %d, want 200", code)
	}
	got := a.Requests()
	if len(got) != 1 || !bytes.Equal(got[0].Body, mp.Bytes()) {
		t.Fatalf("upload did not arrive byte-exact (%d requests)", len(got))
	}
}
