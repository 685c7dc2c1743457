package forward

import (
	"bytes"
	"compress/flate"
	"compress/gzip"
	"compress/zlib"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"

	"github.com/andybalholm/brotli"
	"github.com/klauspost/compress/zstd"
)

// HoldBody reads the first part of resp's body, at most limit bytes as the
// server sent them, and returns that part decoded (gzip, deflate, br and
// zstd are inflated, to at most limit bytes whatever the ratio, so an
// inflation bomb stops at the bound) for the WAF to inspect. resp.Body becomes the
// held bytes followed by the rest of the body, byte for byte as the server
// sent it: the part after the limit streams, never held. Closing resp.Body
// gives the held buffer back; done gives back the decoded one, and must be
// called once the inspection is over. A read error of the server's is
// kept and returned to the reader of resp.Body after the held bytes.
func HoldBody(resp *http.Response, limit int64) (decoded []byte, done func()) {
	hb := &heldBody{orig: resp.Body, raw: heldBuffers.Get().(*bytes.Buffer)}
	n := limit
	if resp.ContentLength >= 0 && resp.ContentLength < n {
		n = resp.ContentLength
	}
	if _, err := hb.raw.ReadFrom(io.LimitReader(resp.Body, n)); err != nil {
		hb.err = err
	}
	hb.held.Reset(hb.raw.Bytes())
	resp.Body = hb
	enc := strings.ToLower(strings.TrimSpace(resp.Header.Get("Content-Encoding")))
	if enc == "" || enc == "identity" || hb.raw.Len() == 0 {
		return hb.raw.Bytes(), func() {}
	}
	dec := heldBuffers.Get().(*bytes.Buffer)
	if !inflate(dec, enc, hb.raw.Bytes(), limit) && dec.Len() == 0 {
		// Not the encoding it claims: inspected as it is.
		recycle(dec)
		return hb.raw.Bytes(), func() {}
	}
	return dec.Bytes(), func() { recycle(dec) }
}

// inflate decodes raw, an encoded body's first part, into dst up to limit
// bytes. It reports false if the data is not in that encoding at all; a
// stream cut where the held part ends is fine.
func inflate(dst *bytes.Buffer, enc string, raw []byte, limit int64) bool {
	var zr io.Reader
	src := bytes.NewReader(raw)
	switch enc {
	case "gzip", "x-gzip":
		gz := gzipPool.Get().(*gzip.Reader)
		defer gzipPool.Put(gz)
		if err := gz.Reset(src); err != nil {
			return false
		}
		zr = gz
	case "deflate":
		// RFC 9110's deflate is zlib; some servers send raw deflate.
		if len(raw) >= 2 && raw[0]&0x0f == 8 && (uint16(raw[0])<<8|uint16(raw[1]))%31 == 0 {
			z, err := zlib.NewReader(src)
			if err != nil {
				return false
			}
			zr = z
		} else {
			zr = flate.NewReader(src)
		}
	case "br":
		br := brotliPool.Get().(*brotli.Reader)
		defer brotliPool.Put(br)
		if err := br.Reset(src); err != nil {
			return false
		}
		zr = br
	case "zstd":
		zd := zstdPool.Get().(*zstd.Decoder)
		defer func() { zd.Reset(nil); zstdPool.Put(zd) }()
		if err := zd.Reset(src); err != nil {
			return false
		}
		zr = zd
	default:
		return false
	}
	_, err := dst.ReadFrom(io.LimitReader(zr, limit))
	return err == nil || errors.Is(err, io.ErrUnexpectedEOF)
}

// heldBody is a response body whose first part was read ahead: the held
// bytes, then whatever the server's body still has.
type heldBody struct {
	orig io.ReadCloser
	raw  *bytes.Buffer // pooled; nil once closed
	held bytes.Reader
	err  error // the server's, met while holding
	done bool
}

func (b *heldBody) Read(p []byte) (int, error) {
	if b.held.Len() > 0 {
		return b.held.Read(p)
	}
	if b.err != nil {
		return 0, b.err
	}
	if b.done {
		return 0, io.EOF
	}
	return b.orig.Read(p)
}

func (b *heldBody) Close() error {
	if b.done {
		return nil
	}
	err := b.orig.Close()
	b.done = true
	b.held.Reset(nil)
	recycle(b.raw)
	b.raw = nil
	return err
}

// maxPooled is the largest buffer kept for reuse: a policy with a larger
// response_body_limit allocates past it, rather than every idle pool
// keeping megabytes.
const maxPooled = 256 << 10

var (
	// heldBuffers hold a response's first part, as sent and decoded.
	heldBuffers = sync.Pool{New: func() any { return new(bytes.Buffer) }}
	gzipPool    = sync.Pool{New: func() any { return new(gzip.Reader) }}
	brotliPool  = sync.Pool{New: func() any { return brotli.NewReader(nil) }}
	// zstdPool's decoders work in the caller's goroutine (concurrency 1)
	// and refuse windows over 8 MiB, the most RFC 9659 lets an HTTP
	// encoder use, so a hostile frame cannot make one allocate more.
	zstdPool = sync.Pool{New: func() any {
		d, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(true), zstd.WithDecoderMaxWindow(8<<20))
		if err != nil {
			panic(err) // the options above are valid
		}
		return d
	}}
)

func recycle(b *bytes.Buffer) {
	if b.Cap() <= maxPooled {
		b.Reset()
		heldBuffers.Put(b)
	}
}
