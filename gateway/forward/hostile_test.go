package forward

import (
	"bytes"
	"io"
	"net/http"
	"runtime"
	"testing"
)

// Compressed response bodies built to make the gateway hold or inflate
// much: in every encoding it decodes, with or without a declared length,
// as one gzip member or many, a gzip inside a gzip. The bytes held as the
// server sent them and the bytes handed over decoded never exceed the
// limit, the allocations are a small multiple of the limit however far the
// body inflates (under 0.7 times with warm pools, 4.6 times when a
// collection emptied them; the bound is 8), and the client gets every
// byte the server sent.
func TestHoldBody_HostileCompression(t *testing.T) {
	const limit = 64 << 10
	zeros := make([]byte, 64<<20)
	bomb := encode(t, "gzip", zeros) // 64 MiB in ~64 KiB
	// A thousand gzip members, each 1 MiB of zeros: a multistream body.
	var members bytes.Buffer
	one := encode(t, "gzip", zeros[:1<<20])
	for range 1000 {
		members.Write(one)
	}
	for _, tc := range []struct {
		name, enc string
		body      []byte
		chunked   bool
		decoded   int // bytes handed over
	}{
		{"gzip 1000x", "gzip", bomb, false, limit},
		{"gzip 1000x chunked", "gzip", bomb, true, limit},
		{"x-gzip 1000x", "x-gzip", bomb, false, limit},
		{"zlib deflate 1000x", "deflate", encode(t, "deflate", zeros), false, limit},
		{"raw deflate 1000x", "raw-deflate", encode(t, "raw-deflate", zeros), true, limit},
		{"a thousand gzip members", "gzip", members.Bytes(), true, limit},
		// Decoded one level: the inner gzip is what the rules get, to the limit.
		{"gzip inside gzip", "gzip", encode(t, "gzip", bomb), false, len(bomb)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			length := int64(len(tc.body))
			if tc.chunked {
				length = -1
			}
			hold := func() (*http.Response, int, int) {
				resp := response(tc.body, tc.enc, length)
				if tc.enc == "x-gzip" {
					resp.Header.Set("Content-Encoding", "x-gzip")
				}
				got, done := HoldBody(resp, limit)
				n, held := len(got), resp.Body.(*heldBody).raw.Len()
				done()
				return resp, n, held
			}
			warm, _, _ := hold() // the pools
			warm.Body.Close()
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			resp, decoded, held := hold()
			runtime.ReadMemStats(&after)
			alloc := after.TotalAlloc - before.TotalAlloc
			t.Logf("%d bytes sent: %d held, %d decoded, %d bytes allocated (%.1fx the limit)", len(tc.body), held, decoded, alloc, float64(alloc)/limit)
			if held > limit {
				t.Errorf("held %d bytes as sent, limit %d", held, limit)
			}
			if decoded != min(tc.decoded, limit) {
				t.Errorf("handed over %d decoded bytes, want %d", decoded, min(tc.decoded, limit))
			}
			if alloc > 8*limit {
				t.Errorf("allocated %d bytes, more than 8 times the %d-byte limit: the inflation is not bounded", alloc, limit)
			}
			out, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil || !bytes.Equal(out, tc.body) {
				t.Errorf("forwarded %d bytes (%v), want the %d sent", len(out), err, len(tc.body))
			}
		})
	}
}
