package forward

import (
	"bytes"
	"compress/flate"
	"compress/gzip"
	"compress/zlib"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/andybalholm/brotli"
	"github.com/klauspost/compress/zstd"
)

func encode(t testing.TB, enc string, data []byte) []byte {
	t.Helper()
	var b bytes.Buffer
	var w io.WriteCloser
	switch enc {
	case "gzip":
		w = gzip.NewWriter(&b)
	case "deflate":
		w = zlib.NewWriter(&b)
	case "raw-deflate":
		w, _ = flate.NewWriter(&b, flate.BestCompression)
	case "br":
		w = brotli.NewWriter(&b)
	case "zstd":
		w, _ = zstd.NewWriter(&b)
	default:
		return data
	}
	w.Write(data)
	w.Close()
	return b.Bytes()
}

func response(body []byte, enc string, length int64) *http.Response {
	h := http.Header{}
	if enc != "" {
		h.Set("Content-Encoding", strings.TrimPrefix(enc, "raw-"))
	}
	return &http.Response{Header: h, Body: io.NopCloser(bytes.NewReader(body)), ContentLength: length}
}

// HoldBody hands over the decoded first part, at most the limit, and the
// client still gets every byte the server sent, in order.
func TestHoldBody(t *testing.T) {
	text := []byte(strings.Repeat("You have an error in your SQL syntax; ", 200)) // 7,600 bytes
	for _, tc := range []struct {
		name, enc string
		limit     int64
		chunked   bool
		want      []byte
	}{
		{"identity under the limit", "", 1 << 20, false, text},
		{"identity over the limit", "", 1000, false, text[:1000]},
		{"identity chunked over the limit", "", 1000, true, text[:1000]},
		{"gzip", "gzip", 1 << 20, false, text},
		{"gzip decoded past the limit", "gzip", 1000, false, text[:1000]},
		{"zlib deflate", "deflate", 1 << 20, true, text},
		{"raw deflate", "raw-deflate", 1 << 20, false, text},
		{"brotli", "br", 1 << 20, true, text},
		{"brotli decoded past the limit", "br", 1000, false, text[:1000]},
		{"zstd", "zstd", 1 << 20, false, text},
		{"zstd decoded past the limit", "zstd", 1000, true, text[:1000]},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sent := encode(t, tc.enc, text)
			length := int64(len(sent))
			if tc.chunked {
				length = -1
			}
			resp := response(sent, tc.enc, length)
			got, done := HoldBody(resp, tc.limit)
			if !bytes.Equal(got, tc.want) {
				t.Errorf("inspected %d bytes %.40q, want %d", len(got), got, len(tc.want))
			}
			done()
			out, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil || !bytes.Equal(out, sent) {
				t.Errorf("forwarded %d bytes (%v), want the %d sent", len(out), err, len(sent))
			}
		})
	}
}

// A body that inflates a thousandfold is decoded to the limit and no
// further: the held part is the limit's worth of compressed bytes.
func TestHoldBody_BombStopsAtLimit(t *testing.T) {
	for _, enc := range []string{"gzip", "br", "zstd"} {
		bomb := encode(t, enc, make([]byte, 16<<20)) // 16 MiB of zeros in a few KiB
		const limit = 64 << 10
		resp := response(bomb, enc, int64(len(bomb)))
		got, done := HoldBody(resp, limit)
		if len(got) != limit {
			t.Errorf("%s: decoded %d bytes, want the limit %d", enc, len(got), limit)
		}
		done()
		out, _ := io.ReadAll(resp.Body)
		if !bytes.Equal(out, bomb) {
			t.Errorf("%s: forwarded %d bytes, want the %d sent", enc, len(out), len(bomb))
		}
	}
}

// A body longer than the limit is held up to it, mid-stream: what that
// part decodes to is inspected, a prefix of the text. (zstd decodes whole
// blocks, of up to 128 KiB of text: the text spans several.)
func TestHoldBody_CutMidStream(t *testing.T) {
	var text []byte
	for i := range 30000 {
		text = fmt.Appendf(text, "row %d: %x; ", i, i*7919%65521) // compresses, but not to nothing
	}
	for _, enc := range []string{"gzip", "deflate", "raw-deflate", "br", "zstd"} {
		sent := encode(t, enc, text)
		limit := int64(len(sent) / 2)
		resp := response(sent, enc, -1)
		got, done := HoldBody(resp, limit)
		if len(got) == 0 || !bytes.HasPrefix(text, got) {
			t.Errorf("%s: the first %d of %d bytes decoded to %d bytes %.30q, want a prefix of the text", enc, limit, len(sent), len(got), got)
		}
		done()
		out, _ := io.ReadAll(resp.Body)
		if !bytes.Equal(out, sent) {
			t.Errorf("%s: forwarded %d bytes, want the %d sent", enc, len(out), len(sent))
		}
	}
}

// A body that claims an encoding it is not in is inspected as it came.
func TestHoldBody_NotEncoded(t *testing.T) {
	resp := response([]byte("Fatal error: not gzip"), "gzip", -1)
	got, done := HoldBody(resp, 1000)
	defer done()
	if string(got) != "Fatal error: not gzip" {
		t.Errorf("inspected %q", got)
	}
}

type failAfter struct {
	data []byte
	err  error
}

func (f *failAfter) Read(p []byte) (int, error) {
	if len(f.data) == 0 {
		return 0, f.err
	}
	n := copy(p, f.data)
	f.data = f.data[n:]
	return n, nil
}

// A server that breaks the body while it is held: what came is inspected,
// and the reader gets those bytes, then the server's error, as it would
// have without the hold.
func TestHoldBody_ServerError(t *testing.T) {
	broken := errors.New("connection reset by peer")
	resp := &http.Response{Header: http.Header{}, ContentLength: -1, Body: io.NopCloser(&failAfter{[]byte("partial"), broken})}
	got, done := HoldBody(resp, 1000)
	done()
	if string(got) != "partial" {
		t.Errorf("inspected %q", got)
	}
	out, err := io.ReadAll(resp.Body)
	if string(out) != "partial" || !errors.Is(err, broken) {
		t.Errorf("read %q, %v; want partial, then the server's error", out, err)
	}
}

// FuzzHoldBody feeds the decoder untrusted bytes as each encoding: it must
// neither fail nor hand over more than the limit, and the reader must get
// the bytes unchanged.
func FuzzHoldBody(f *testing.F) {
	text := []byte("Index of /backup <a href=db.sql>")
	for _, enc := range []string{"", "gzip", "deflate", "raw-deflate", "br", "zstd"} {
		f.Add(encode(f, enc, text), strings.TrimPrefix(enc, "raw-"))
	}
	f.Add(encode(f, "gzip", make([]byte, 1<<16)), "gzip")
	f.Fuzz(func(t *testing.T, body []byte, enc string) {
		const limit = 4096
		resp := response(body, enc, int64(len(body)))
		if enc != "" {
			resp.Header.Set("Content-Encoding", enc)
		}
		got, done := HoldBody(resp, limit)
		if len(got) > limit {
			t.Fatalf("handed over %d bytes, limit %d", len(got), limit)
		}
		done()
		out, err := io.ReadAll(resp.Body)
		if err != nil || !bytes.Equal(out, body) {
			t.Fatalf("forwarded %d bytes (%v), want %d", len(out), err, len(body))
		}
	})
}

// BenchmarkHoldBody is a 13 KB page held and decoded in each encoding,
// with the decoders pooled.
func BenchmarkHoldBody(b *testing.B) {
	page := []byte(strings.Repeat("<tr><td>Order 123</td><td>Shipped</td></tr>\n", 300))
	for _, enc := range []string{"identity", "gzip", "br", "zstd"} {
		sent := encode(b, enc, page)
		b.Run(enc, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				resp := response(sent, enc, int64(len(sent)))
				got, done := HoldBody(resp, 64<<10)
				if len(got) != len(page) {
					b.Fatalf("decoded %d bytes", len(got))
				}
				done()
				resp.Body.Close()
			}
		})
	}
}
