package listen

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"

	"github.com/pires/go-proxyproto"
)

// Limits HAProxy puts on the TLVs it reads (HA_PP2_AUTHORITY_MAX,
// UNIQUEID_LEN): a longer value is a malformed header there too.
const (
	maxAuthority = 255
	maxUniqueID  = 128
	sslFixedLen  = 5 // pp2_tlv_ssl's client byte and verify word
)

// checkTLVs refuses a PROXY v2 header whose TLVs HAProxy would refuse. The
// library keeps them as raw bytes and splits them only when asked, so a TLV
// whose length runs past the header would otherwise be taken, along with
// the client address of the header it spoils. As in HAProxy, a LOCAL
// header's TLVs are not read: the connection keeps its socket address.
func checkTLVs(h *proxyproto.Header) error {
	if h.Version != 2 || h.Command != proxyproto.PROXY {
		return nil
	}
	tlvs, err := h.TLVs()
	if err != nil {
		return fmt.Errorf("PROXY v2 header: %w", err)
	}
	for _, t := range tlvs {
		if err := checkTLV(h, t); err != nil {
			return fmt.Errorf("PROXY v2 header: TLV 0x%02x: %w", byte(t.Type), err)
		}
	}
	return nil
}

func checkTLV(h *proxyproto.Header, t proxyproto.TLV) error {
	switch t.Type {
	case proxyproto.PP2_TYPE_AUTHORITY:
		if len(t.Value) > maxAuthority {
			return errors.New("authority longer than 255 bytes")
		}
	case proxyproto.PP2_TYPE_UNIQUE_ID:
		if len(t.Value) > maxUniqueID {
			return errors.New("unique id longer than 128 bytes")
		}
	case proxyproto.PP2_TYPE_CRC32C:
		return checkCRC(h, t.Value)
	case proxyproto.PP2_TYPE_SSL:
		// Its sub-TLVs must fit it as the TLVs fit the header.
		if len(t.Value) < sslFixedLen {
			return proxyproto.ErrTruncatedTLV
		}
		if _, err := proxyproto.SplitTLVs(t.Value[sslFixedLen:]); err != nil {
			return err
		}
	}
	return nil
}

// crc32c is the Castagnoli table the PROXY protocol's checksum uses.
var crc32c = crc32.MakeTable(crc32.Castagnoli)

// checkCRC verifies a PP2_TYPE_CRC32C value: the checksum of the whole
// header with the value's own four bytes zeroed. The header is formatted
// again from what was parsed, which gives the bytes received for IP
// families; for others (unix sockets, whose names the library trims) only
// the value's length is checked.
func checkCRC(h *proxyproto.Header, v []byte) error {
	if len(v) != 4 {
		return errors.New("CRC32C value is not 4 bytes")
	}
	if !h.TransportProtocol.IsIPv4() && !h.TransportProtocol.IsIPv6() {
		return nil
	}
	raw, err := h.Format()
	if err != nil {
		return err
	}
	addrs := 12 // two IPv4 addresses and ports
	if h.TransportProtocol.IsIPv6() {
		addrs = 36
	}
	// Walk to the CRC TLV (checkTLVs split them, so each length fits).
	i := 16 + addrs
	for i+3 <= len(raw) && proxyproto.PP2Type(raw[i]) != proxyproto.PP2_TYPE_CRC32C {
		i += 3 + int(binary.BigEndian.Uint16(raw[i+1:]))
	}
	if i+3+4 > len(raw) {
		return errors.New("CRC32C TLV not found in the header")
	}
	copy(raw[i+3:i+7], []byte{0, 0, 0, 0})
	if crc32.Checksum(raw, crc32c) != binary.BigEndian.Uint32(v) {
		return errors.New("CRC32C mismatch")
	}
	return nil
}
