//go:build !uart

package cc111x

import (
	"bytes"
	"encoding/hex"
	"strings"
	"testing"
	"unsafe"
)

// firmware is spi-radio.md §7.1 on the wire side: frames of 99, n → c, data; responses queued whole.
type firmware struct {
	tx, rx   []byte // wire bytes seen / answered
	pos, n   int
	c        int
	cmd, out []byte
	reply    func(cmd []byte) []byte
}

func (f *firmware) wire(w byte) byte {
	b := rev(w)
	var r byte = 0x99
	switch {
	case f.pos == 0:
		if b == 0x99 {
			f.pos, f.c = 1, 0
			if i := bytes.LastIndexByte(f.out, 0); i >= 0 {
				f.c = i + 1
			}
		}
	case f.pos == 1:
		f.n, r, f.pos = int(b), byte(f.c), 2
		if f.n == 0 && f.c == 0 {
			f.pos = 0
		}
	default:
		k := f.pos - 1
		if k <= f.n {
			f.cmd = append(f.cmd, b)
			if k == f.n {
				f.out = append(f.out, f.reply(f.cmd)...)
				f.cmd = nil
			}
		}
		if k <= f.c {
			r, f.out = f.out[0], f.out[1:]
		}
		f.pos++
		if k >= f.n && k >= f.c {
			f.pos = 0
		}
	}
	f.tx, f.rx = append(f.tx, w), append(f.rx, rev(r))
	return rev(r)
}

func rev(b byte) byte {
	var r byte
	for i := 0; i < 8; i++ {
		r = r<<1 | b>>i&1
	}
	return r
}

func wire(s string) []byte {
	b, _ := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	return b
}

// The worked frames of spi-radio.md §7.2: GetVersion, an empty poll, the version poll, the FREQ2 write and
// its reply poll, with the bytes as they go over the wire.
func TestFramesOfSection7(t *testing.T) {
	polls := 0
	f := &firmware{}
	f.reply = func(cmd []byte) []byte {
		if cmd[0] == cmdGetVersion {
			return nil // queued later, after one empty poll
		}
		return []byte{0x01, 0x00}
	}
	l := &spiLink{}
	l.wire = func(w byte) byte {
		if len(f.tx) == 5 && polls == 0 { // after the command frame and one empty poll: the version is queued
			polls++
			f.out = append(f.out, append([]byte("subg_rfspy 1.0"), 0)...)
		}
		return f.wire(w)
	}
	r := &Radio{link: l}
	v := r.request([]byte{cmdGetVersion}, radioTimeoutMs)
	if string(v) != "subg_rfspy 1.0" || r.err != nil {
		t.Fatalf("version %q %v", v, r.err)
	}
	want := wire("99 80 40" + "99 00" + "99 00" + strings.Repeat("00", 15))
	if !bytes.Equal(f.tx, want) {
		t.Errorf("tx % X\nwant % X", f.tx, want)
	}
	if got := f.rx[6:]; !bytes.Equal(got, wire("F0 CE AE 46 E6 FA 4E 66 CE 0E 9E 04 8C 74 0C 00")) {
		t.Errorf("version poll rx % X", got)
	}
	f.tx, f.rx = nil, nil
	r.request([]byte{cmdUpdateRegister, regFreq2, 0x26}, radioTimeoutMs)
	if !bytes.Equal(f.tx, wire("99 C0 60 90 64 99 00 00 00")) || !bytes.Equal(f.rx, wire("99 00 99 99 99 99 40 80 00")) {
		t.Errorf("FREQ2: tx % X rx % X", f.tx, f.rx)
	}
}

// The reservoir SendAndListen of §4.1 on the wire; a silent radio costs 2 ioctls per poll iteration and
// ends in "cc111x: no response" (§4.4, §7.3).
func TestSendAndListenAndSilence(t *testing.T) {
	f := &firmware{reply: func([]byte) []byte { return []byte{errRxTimeout, 0} }}
	r := &Radio{link: &spiLink{wire: f.wire}}
	pkt := wire("A9 6C 72 8F 49 66 5A 35 55 36 A5")
	if resp := r.SendAndListen(pkt, 500); !IsTimeout(resp) || r.err != nil {
		t.Fatalf("% X %v", resp, r.err)
	}
	want := wire("99 68 A0 00 00 00 00 00 00 80 2F 00 95 36 4E F1 92 66 5A AC AA 6C A5 00")
	if !bytes.Equal(f.tx[:24], want) || !bytes.Equal(f.rx[24:], wire("99 40 55 00")) {
		t.Errorf("request % X, reply poll rx % X", f.tx[:24], f.rx[24:])
	}
	f = &firmware{reply: func([]byte) []byte { return nil }}
	r = &Radio{link: &spiLink{wire: f.wire}}
	if resp := r.SendAndListen(pkt, 3); resp != nil || r.err != ErrNoResponse {
		t.Fatalf("%v %v", resp, r.err)
	}
	if n := len(f.tx) - 24; n != 2*(3+extraMs) {
		t.Errorf("%d poll transfers for a %d-iteration budget", n, 3+extraMs)
	}
}

// struct spi_ioc_transfer as spi-radio.md §3.2 lays it out, and the request number of §3.1.
func TestTransferLayout(t *testing.T) {
	var x spiTransfer
	if unsafe.Sizeof(x) != 32 || unsafe.Offsetof(x.rxBuf) != 8 || unsafe.Offsetof(x.length) != 16 ||
		unsafe.Offsetof(x.speedHz) != 20 || unsafe.Offsetof(x.delayUsecs) != 24 || unsafe.Offsetof(x.bitsPerWord) != 26 ||
		unsafe.Offsetof(x.csChange) != 27 {
		t.Errorf("spi_ioc_transfer layout: size %d", unsafe.Sizeof(x))
	}
	// _IOW('k', 0, char[32]): direction write (1) << 30 | size 32 << 16 | 'k' << 8 | 0
	if spiIOCMessage1 != 1<<30|32<<16|'k'<<8 {
		t.Errorf("SPI_IOC_MESSAGE(1) = %#x", spiIOCMessage1)
	}
}
