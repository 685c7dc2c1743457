package quiclb

import (
	"bytes"
	"strings"
	"testing"
)

func TestParseServerID(t *testing.T) {
	for _, c := range []struct {
		in, err string
	}{
		{in: "0xa1b2c3d4e5f65890"}, // AWS's documented example
		{in: "0x0000000000000001"},
		{in: "a1b2c3d4e5f65890", err: "want 0x"},
		{in: "0Xa1b2c3d4e5f65890", err: "want 0x"},
		{in: "0xA1B2C3D4E5F65890", err: "lowercase"},
		{in: "0xa1b2c3d4e5f6589", err: "15 hexadecimal digits"},
		{in: "0xa1b2c3d4e5f658901", err: "17 hexadecimal digits"},
		{in: "0xa1b2c3d4e5f6589g", err: "not hexadecimal"},
		{in: "", err: "want 0x"},
	} {
		id, err := ParseServerID(c.in)
		switch {
		case c.err == "" && err != nil:
			t.Errorf("%q: %v", c.in, err)
		case c.err == "" && id.String() != c.in:
			t.Errorf("%q read as %s", c.in, id)
		case c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)):
			t.Errorf("%q: error %v, want one saying %q", c.in, err, c.err)
		}
	}
}

// Every connection ID has QUIC-LB's plaintext layout (config rotation 0,
// the server ID in octets 1 to 8) and its own random rest.
func TestGenerator_Layout(t *testing.T) {
	id, _ := ParseServerID("0xa1b2c3d4e5f65890")
	g := Generator{ID: id}
	seen := map[string]bool{}
	lowBits := map[byte]bool{}
	for range 1000 {
		c, err := g.GenerateConnectionID()
		if err != nil {
			t.Fatal(err)
		}
		b := c.Bytes()
		if len(b) != Len || g.ConnectionIDLen() != Len {
			t.Fatalf("length %d (says %d), want %d", len(b), g.ConnectionIDLen(), Len)
		}
		if b[0]>>5 != 0 {
			t.Fatalf("%x: config rotation %03b, want 000", b, b[0]>>5)
		}
		if !bytes.Equal(b[1:1+ServerIDLen], id[:]) {
			t.Fatalf("%x: octets 1-8 are not the server ID %s", b, id)
		}
		if got, ok := ServerIDOf(b); !ok || got != id {
			t.Fatalf("ServerIDOf(%x) = %s, %v", b, got, ok)
		}
		nonce := string(b[1+ServerIDLen:])
		if seen[nonce] {
			t.Fatalf("nonce %x issued twice", nonce)
		}
		seen[nonce] = true
		lowBits[b[0]&0x1f] = true
	}
	if len(lowBits) < 16 {
		t.Errorf("the first octet's 5 low bits took %d values in 1,000 IDs: not random", len(lowBits))
	}
}

func TestServerIDOf_NotThisLayout(t *testing.T) {
	id, _ := ParseServerID("0x0102030405060708")
	for _, cid := range [][]byte{
		nil,
		{0x00, 1, 2, 3, 4, 5, 6, 7}, // too short for a server ID
		append([]byte{0xe0}, append(id[:], 9, 9, 9, 9)...), // 0b111: unroutable
		append([]byte{0x40}, append(id[:], 9, 9, 9, 9)...), // another config
	} {
		if got, ok := ServerIDOf(cid); ok {
			t.Errorf("ServerIDOf(%x) = %s, want none", cid, got)
		}
	}
}

func FuzzParseServerID(f *testing.F) {
	for _, s := range []string{"0xa1b2c3d4e5f65890", "0x", "0xA1", "x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		id, err := ParseServerID(s)
		if err == nil && id.String() != s {
			t.Fatalf("%q accepted but reads as %s", s, id)
		}
	})
}
