package waf

import (
	"strings"
	"unicode"
	"unicode/utf8"
	"unsafe"

	"github.com/corazawaf/coraza/v3/experimental/plugins"
	"github.com/corazawaf/coraza/v3/experimental/plugins/plugintypes"
)

// CRS lowercases and strips whitespace from every value dozens of times a
// request, along different transformation chains. Coraza does both through
// rune-wise library calls that copy byte by byte. These versions give the
// same output and the same "changed" flag: a byte loop for ASCII values
// (nearly all), and Coraza's own formulation for the rest.
// TestTransformations compares them with stock Coraza.

// transformations are sekisho's, by the name CRS uses.
var transformations = map[string]plugintypes.Transformation{
	"lowercase":        lowerCase,
	"removeWhitespace": removeWhitespace,
}

func registerTransformations() {
	for name, t := range transformations {
		plugins.RegisterTransformation(name, t)
	}
}

func lowerCase(data string) (string, bool, error) {
	first := -1
	for i := 0; i < len(data); i++ {
		c := data[i]
		if c >= utf8.RuneSelf {
			lower := strings.ToLower(data)
			return lower, lower != data, nil
		}
		if first < 0 && 'A' <= c && c <= 'Z' {
			first = i
		}
	}
	if first < 0 {
		return data, false, nil
	}
	b := make([]byte, len(data))
	copy(b, data[:first])
	for i := first; i < len(data); i++ {
		c := data[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		b[i] = c
	}
	return unsafe.String(unsafe.SliceData(b), len(b)), true, nil
}

// asciiSpace marks the ASCII bytes unicode.IsSpace accepts.
var asciiSpace = [utf8.RuneSelf]bool{'\t': true, '\n': true, '\v': true, '\f': true, '\r': true, ' ': true}

func removeWhitespace(data string) (string, bool, error) {
	first := -1
	for i := 0; i < len(data); i++ {
		c := data[i]
		if c >= utf8.RuneSelf {
			return removeWhitespaceRunes(data)
		}
		if first < 0 && asciiSpace[c] {
			first = i
		}
	}
	if first < 0 {
		return data, false, nil
	}
	b := make([]byte, first, len(data))
	copy(b, data[:first])
	for i := first; i < len(data); i++ {
		if c := data[i]; !asciiSpace[c] {
			b = append(b, c)
		}
	}
	return unsafe.String(unsafe.SliceData(b), len(b)), true, nil
}

// removeWhitespaceRunes is the general case, as Coraza writes it: bytes
// that are not UTF-8 come out as U+FFFD without counting as a change.
func removeWhitespaceRunes(data string) (string, bool, error) {
	changed := false
	out := strings.Map(func(r rune) rune {
		if unicode.IsSpace(r) {
			changed = true
			return -1
		}
		return r
	}, data)
	return out, changed, nil
}
