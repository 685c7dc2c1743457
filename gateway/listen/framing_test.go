package listen

import (
	"strconv"
	"strings"
	"testing"
)

func TestFramingScan(t *testing.T) {
	cases := []struct {
		name   string
		stream string
		want   int
	}{
		{"chunked only", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n", 0},
		{"length only", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc", 0},
		{"both", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", 1},
		{"both, any case, bare LF", "POST / HTTP/1.1\ncontent-LENGTH: 5\nTRANSFER-encoding: chunked\n\n", 1},
		{"in separate requests", "GET / HTTP/1.1\r\nContent-Length: 0\r\n\r\nPOST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 0},
		{"two pipelined", strings.Repeat("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n0\r\n\r\n", 2), 2},
		{"longer names do not count", "POST / HTTP/1.1\r\nX-Content-Length: 5\r\nTransfer-Encodings: x\r\nContent-Lengthy: 1\r\n\r\n", 0},
		// Bodies framed by a length are passed over: what they hold is not a block.
		{"a length-framed body is passed over", lengthPOST(ambiguousBlock) + lengthPOST("a=b"), 0},
		{"equal lengths twice", "POST / HTTP/1.1\r\nContent-Length: 71\r\ncontent-length:  071 \r\n\r\n" + ambiguousBlock, 0},
		{"the block after a passed-over body is scanned", lengthPOST("a=b") + ambiguousBlock, 1},
		{"a length of zero", "GET / HTTP/1.1\r\nContent-Length: 0\r\n\r\n" + ambiguousBlock, 1},
		// Anything net/http might frame otherwise leaves every byte scanned.
		{"a body after a bad length is scanned", "POST / HTTP/1.1\r\nContent-Length: 4 8\r\n\r\n" + ambiguousBlock, 1},
		{"a body after two lengths is scanned", "POST / HTTP/1.1\r\nContent-Length: 48\r\nContent-Length: 47\r\n\r\n" + ambiguousBlock, 1},
		{"an empty length", "POST / HTTP/1.1\r\nContent-Length:\r\n\r\n" + ambiguousBlock, 1},
		{"an overflowing length", "POST / HTTP/1.1\r\nContent-Length: 99999999999999999999\r\n\r\n" + ambiguousBlock, 1},
		// Chunk data and trailers could pose as a block with a length that
		// would hide the next request's headers: after a chunked body,
		// nothing is passed over.
		{"a trailer's length does not hide the next request",
			"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nContent-Length: 36\r\n\r\n" + ambiguousBlock, 1},
		{"chunk data posing as a block", "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n" +
			"26\r\nGET / HTTP/1.1\r\nContent-Length: 36\r\n\r\n\r\n0\r\n\r\n" + ambiguousBlock + lengthPOST("a=b") + ambiguousBlock, 2},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			// Every split of the stream must give the same count.
			for cut := 0; cut <= len(tc.stream); cut++ {
				var s framingScan
				got := s.feed([]byte(tc.stream[:cut])) + s.feed([]byte(tc.stream[cut:]))
				if got != tc.want {
					t.Fatalf("split at %d: %d ambiguous blocks, want %d", cut, got, tc.want)
				}
			}
		})
	}
}

// ambiguousBlock is a request with both lengths; its first 36 bytes are
// its request line and its Content-Length line.
const ambiguousBlock = "POST / HTTP/1.1\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"

// lengthPOST is a request whose body is framed by its length.
func lengthPOST(body string) string {
	return "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + body
}

func FuzzFramingScan(f *testing.F) {
	f.Add([]byte("POST / HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"), 7)
	f.Fuzz(func(t *testing.T, b []byte, cut int) {
		if cut < 0 || cut > len(b) {
			cut = len(b) / 2
		}
		var whole, split framingScan
		if a, c := whole.feed(b), split.feed(b[:cut])+split.feed(b[cut:]); a != c {
			t.Fatalf("whole %d != split %d", a, c)
		}
	})
}

// BenchmarkFramingScan_Body is the scan's cost on body bytes (a 1 MiB
// form without newlines, as urlencoded bodies are).
func BenchmarkFramingScan_Body(b *testing.B) {
	body := []byte("POST /f HTTP/1.1\r\nHost: a\r\nContent-Length: 1048576\r\n\r\n" + strings.Repeat("a=b&", 1<<18))
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		var s framingScan
		for i := 0; i < len(body); i += 32 << 10 {
			s.feed(body[i:min(i+32<<10, len(body))])
		}
	}
}
