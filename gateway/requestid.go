package gateway

import (
	"crypto/rand"
	"encoding/hex"
)

// requestID returns the client's X-Request-ID when it is well-formed (1 to
// 128 of A-Z a-z 0-9 . _ - :), else a new random one.
func requestID(given string) string {
	if validRequestID(given) {
		return given
	}
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func validRequestID(s string) bool {
	if len(s) == 0 || len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-' || c == ':') {
			return false
		}
	}
	return true
}
