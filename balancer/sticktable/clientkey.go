package sticktable

// ClientKeyLen bounds the string keys of clients by ja4 or src+ja4: an
// address, "|" and a 36-character JA4.
const ClientKeyLen = 128

// ClientKey is what a table knows a client by, for kind: "src" its
// address, "ja4" its TLS fingerprint, "src+ja4" both ("ADDRESS|JA4", one
// client among several behind a shared address). complete is false when
// kind needs a fingerprint the client has none of (plain HTTP).
func ClientKey(kind, addr, ja4 string) (key string, complete bool) {
	switch kind {
	case "ja4":
		return ja4, ja4 != ""
	case "src+ja4":
		return addr + "|" + ja4, ja4 != ""
	}
	return addr, true
}
