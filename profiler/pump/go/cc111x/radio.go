// Package cc111x drives a CC111x radio running ecc1's subg_rfspy 1.0 firmware (pump-protocol.md §2):
// one request per command, responses ending at the last 00 byte, polled every 1 ms.
//
// The transport is chosen at build time, as in ecc1's tools: the build tag "uart" gives the serial line
// /dev/serial0 (uart.go); without it the radio is on SPI (spi.go), with the Raspberry Pi + Explorer HAT
// constants, or the Edison + Explorer Board constants under the tag "edison" (board_*.go).
package cc111x

import (
	"bytes"
	"errors"
	"fmt"
	"sync"
	"time"
)

// subg_rfspy command codes (§2.2) and single-byte error replies (§2.4)
const (
	cmdGetVersion     = 0x02
	cmdGetPacket      = 0x03
	cmdSendAndListen  = 0x05
	cmdUpdateRegister = 0x06

	errRxTimeout   = 0xAA
	errInterrupted = 0xBB
	errZeroData    = 0xCC

	regFreq2, regFreq1, regFreq0 = 0x09, 0x0A, 0x0B

	radioTimeoutMs = 50 // GetVersion, UpdateRegister (§1.6)
	extraMs        = 5  // the client waits the firmware's timeout + 5 ms
	fxosc          = 24000000
)

// ErrNoResponse: the radio sent no complete response within the poll budget.
var ErrNoResponse = errors.New("cc111x: no response")

// link is the transport: one command per send, one response per poll loop.
type link interface {
	send(cmd []byte) error
	response(timeoutMs int) ([]byte, error)
	close()
}

// Radio is the CC111x; err is the radio error, set by a failed send or a missing response and cleared by
// the next successful send (so a silent UpdateRegister is only fatal when it is the last one, §2.6).
type Radio struct {
	link   link
	err    error
	closed bool // under deviceMu
}

// Open opens the device and checks the firmware version; on failure the device is closed again.
func Open() (*Radio, error) {
	l, err := openLink()
	if err != nil {
		return nil, err
	}
	r := &Radio{link: l}
	v := r.request([]byte{cmdGetVersion}, radioTimeoutMs)
	if r.err != nil {
		l.close()
		return nil, r.err
	}
	if !bytes.HasPrefix(v, []byte("subg_rfspy")) {
		l.close()
		return nil, fmt.Errorf("unexpected firmware version %q", v)
	}
	return r, nil
}

// Close closes the device (once: a signal's Shutdown after it closes nothing).
func (r *Radio) Close() {
	deviceMu.Lock()
	defer deviceMu.Unlock()
	r.closeOnce()
}

func (r *Radio) closeOnce() {
	if !r.closed {
		r.closed = true
		r.link.close()
	}
}

// deviceMu orders the device's system calls (one read, write or ioctl each) with Close and Shutdown.
var deviceMu sync.Mutex

// Shutdown closes the device for good from a goroutine of its own (SIGINT, SIGTERM), whose next step is the
// exit: a system call on the device in progress ends first, and none starts after the close (the goroutine
// polling the radio waits instead of failing on the closed fd and exiting 1 before the exit 0). A call that
// does not end (a write to a radio that stopped reading) is waited for 100 ms, then the device is closed
// all the same.
func (r *Radio) Shutdown() {
	for end := time.Now().Add(100 * time.Millisecond); !deviceMu.TryLock(); {
		if time.Now().After(end) {
			break
		}
		time.Sleep(time.Millisecond)
	}
	r.closeOnce()
}

// Error is the radio error (nil when the last request was answered).
func (r *Radio) Error() error { return r.err }

// SetError sets or clears the radio error.
func (r *Radio) SetError(err error) { r.err = err }

func (r *Radio) request(cmd []byte, timeoutMs int) []byte {
	if err := r.link.send(cmd); err != nil {
		r.err = err
		return nil
	}
	r.err = nil
	return r.Response(timeoutMs)
}

// Response polls for one response; nil with the radio error set when none came.
func (r *Radio) Response(timeoutMs int) []byte {
	resp, err := r.link.response(timeoutMs)
	if err != nil {
		r.err = err
		return nil
	}
	return resp
}

// SetFrequency writes FREQ2, FREQ1, FREQ0 for hz; the replies are read and ignored (§2.6).
func (r *Radio) SetFrequency(hz uint32) {
	w := (uint64(hz)<<16 + fxosc/2) / fxosc
	for _, reg := range []struct{ addr, val byte }{{regFreq2, byte(w >> 16)}, {regFreq1, byte(w >> 8)}, {regFreq0, byte(w)}} {
		r.request([]byte{cmdUpdateRegister, reg.addr, reg.val}, radioTimeoutMs)
	}
}

// SendAndListen sends one encoded pump packet and listens timeoutMs for the reply (§2.2). The result is the
// firmware's response: nil (radio error set), empty or one error byte, or RSSI, counter and packet bytes.
// A "command interrupted" reply (BB) makes the client read another response with the same timeout.
func (r *Radio) SendAndListen(packet []byte, timeoutMs int) []byte {
	cmd := make([]byte, 0, 11+len(packet))
	cmd = append(cmd, cmdSendAndListen, 0, 0, 0, 0,
		byte(timeoutMs>>24), byte(timeoutMs>>16), byte(timeoutMs>>8), byte(timeoutMs), 0)
	cmd = append(cmd, packet...)
	cmd = append(cmd, 0)
	return r.interrupted(r.request(cmd, timeoutMs+extraMs), timeoutMs)
}

// GetPacket listens timeoutMs for any packet (listen).
func (r *Radio) GetPacket(timeoutMs int) []byte {
	cmd := []byte{cmdGetPacket, 0, byte(timeoutMs >> 24), byte(timeoutMs >> 16), byte(timeoutMs >> 8), byte(timeoutMs)}
	return r.interrupted(r.request(cmd, timeoutMs+extraMs), timeoutMs)
}

func (r *Radio) interrupted(resp []byte, timeoutMs int) []byte {
	for len(resp) == 1 && resp[0] == errInterrupted {
		resp = r.Response(timeoutMs + extraMs)
	}
	return resp
}

// IsTimeout: an empty response or AA means no packet was heard.
func IsTimeout(resp []byte) bool {
	return len(resp) == 0 || (len(resp) == 1 && resp[0] == errRxTimeout)
}

// ReceiveError names a single-byte error response other than AA ("Receive: ErrorZeroData").
func ReceiveError(code byte) error {
	switch code {
	case errZeroData:
		return errors.New("Receive: ErrorZeroData")
	case errInterrupted:
		return errors.New("Receive: ErrorCmdInterrupted")
	}
	return fmt.Errorf("Receive: %02X", code)
}

// RSSI converts the firmware's RSSI byte to dBm. pump-protocol.md §2.3 gives trunc(signed/2) - 73 (30 → -49),
// but the real tools print -48 for the emulator's 30 (real-tools/mmtune.txt, observed), so the offset
// used here is the one that reproduces the observation.
func RSSI(b byte) int {
	return int(int8(b))/2 - 72
}
