// Package medtronic speaks to a Medtronic 5xx/7xx pump through a CC111x radio running subg_rfspy:
// pump packets, 4b/6b line coding, CRCs (pump-protocol.md §3, §4), the exchange patterns with their
// retries (§4.3, §5), the command catalogue and the openaps/ecc1 JSON the real tools print.
package medtronic

import "fmt"

// 4b/6b symbols, nibble 0..F (§3.1)
var symbols = [16]byte{0x15, 0x31, 0x32, 0x23, 0x34, 0x25, 0x26, 0x16, 0x1A, 0x19, 0x2A, 0x0B, 0x2C, 0x0D, 0x0E, 0x1C}

var nibble = func() (t [64]int8) {
	for i := range t {
		t[i] = -1
	}
	for n, s := range symbols {
		t[s] = int8(n)
	}
	return
}()

// Encode4b6b: high nibble's symbol first, bits cut into bytes MSB first; an odd length is padded with 0101 (§3.2).
func Encode4b6b(data []byte) []byte {
	out := make([]byte, 0, len(data)*3/2+2)
	acc, bits := uint32(0), uint(0)
	for _, b := range data {
		acc = acc<<12 | uint32(symbols[b>>4])<<6 | uint32(symbols[b&0xF])
		bits += 12
		for bits >= 8 {
			bits -= 8
			out = append(out, byte(acc>>bits))
		}
		acc &= 1<<bits - 1
	}
	if bits > 0 {
		out = append(out, byte(acc<<4|0x5))
	}
	return out
}

// ErrDecoding is the client's wording for an invalid length or symbol.
var ErrDecoding = fmt.Errorf("6b/4b decoding failure")

// Decode4b6b is the inverse of Encode4b6b; the 4 pad bits of a final 2-byte group are not checked.
func Decode4b6b(data []byte) ([]byte, error) {
	if len(data)%3 == 1 {
		return nil, ErrDecoding
	}
	out := make([]byte, 0, len(data)*2/3+1)
	sym := func(v uint32) (byte, bool) {
		n := nibble[v&0x3F]
		return byte(n), n >= 0
	}
	i := 0
	for ; i+3 <= len(data); i += 3 {
		w := uint32(data[i])<<16 | uint32(data[i+1])<<8 | uint32(data[i+2])
		a, ok1 := sym(w >> 18)
		b, ok2 := sym(w >> 12)
		c, ok3 := sym(w >> 6)
		d, ok4 := sym(w)
		if !(ok1 && ok2 && ok3 && ok4) {
			return nil, ErrDecoding
		}
		out = append(out, a<<4|b, c<<4|d)
	}
	if len(data)-i == 2 {
		w := uint32(data[i])<<8 | uint32(data[i+1])
		a, ok1 := sym(w >> 10)
		b, ok2 := sym(w >> 4)
		if !(ok1 && ok2) {
			return nil, ErrDecoding
		}
		out = append(out, a<<4|b)
	}
	return out, nil
}

// CRC8 is CRC-8/LTE: polynomial 9B, init 00, no reflection (§3.3).
func CRC8(data []byte) byte {
	crc := byte(0)
	for _, b := range data {
		crc ^= b
		for i := 0; i < 8; i++ {
			if crc&0x80 != 0 {
				crc = crc<<1 ^ 0x9B
			} else {
				crc <<= 1
			}
		}
	}
	return crc
}

// CRC16 is CRC-16/CCITT-FALSE: polynomial 1021, init FFFF (§3.4), used over history pages.
func CRC16(data []byte) uint16 {
	crc := uint16(0xFFFF)
	for _, b := range data {
		crc ^= uint16(b) << 8
		for i := 0; i < 8; i++ {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
	}
	return crc
}

const (
	packetPump   = 0xA7
	longParams   = 64
	longEncoded  = 107 // a long request's encoded length: it gets one try (§4.3)
	responseBody = 65
)

func shortPacket(addr [3]byte, cmd Command) []byte {
	p := []byte{packetPump, addr[0], addr[1], addr[2], byte(cmd), 0}
	return Encode4b6b(append(p, CRC8(p)))
}

func longPacket(addr [3]byte, cmd Command, params []byte) []byte {
	p := make([]byte, 6+longParams, 7+longParams)
	copy(p, []byte{packetPump, addr[0], addr[1], addr[2], byte(cmd), byte(len(params))})
	copy(p[6:], params)
	return Encode4b6b(append(p, CRC8(p)))
}

// decodePacket 4b/6b-decodes a received packet and checks its CRC-8; the CRC is dropped.
func decodePacket(encoded []byte) ([]byte, error) {
	data, err := Decode4b6b(encoded)
	if err != nil {
		return nil, err
	}
	if len(data) == 0 {
		return nil, ErrDecoding
	}
	body, received := data[:len(data)-1], data[len(data)-1]
	if computed := CRC8(body); computed != received {
		return nil, fmt.Errorf("computed CRC %02X but received %02X", computed, received)
	}
	return body, nil
}
