//go:build uart

package cc111x

import (
	"bytes"
	"fmt"
	"syscall"
	"time"
	"unsafe"
)

// Device is a constant of the uart build: no flag or environment variable changes it (§1.1).
const Device = "/dev/serial0"

type uartLink struct{ fd int }

// openLink: openat(O_RDWR|O_NOCTTY|O_NONBLOCK) without O_CLOEXEC (syscall.Open adds none), one TCSETS with a
// whole new termios (no TCGETS first), then F_GETFL/F_SETFL to clear O_NONBLOCK (§1.2, §1.3). The fd stays
// a raw fd: it is never handed to the Go runtime's poller.
func openLink() (link, error) {
	fd, err := syscall.Open(Device, syscall.O_RDWR|syscall.O_NOCTTY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, fmt.Errorf("%s: %v", Device, err)
	}
	t := syscall.Termios{
		Iflag: syscall.IGNPAR,
		Cflag: syscall.B19200 | syscall.CS8 | syscall.CREAD | syscall.CLOCAL,
	} // c_oflag, c_lflag, c_line and c_cc (VMIN = VTIME = 0) all 0
	if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, uintptr(fd), syscall.TCSETS, uintptr(unsafe.Pointer(&t))); e != 0 {
		syscall.Close(fd)
		return nil, fmt.Errorf("%s: %v", Device, e)
	}
	flags, _, e := syscall.Syscall(syscall.SYS_FCNTL, uintptr(fd), syscall.F_GETFL, 0)
	if e == 0 {
		_, _, e = syscall.Syscall(syscall.SYS_FCNTL, uintptr(fd), syscall.F_SETFL, flags&^syscall.O_NONBLOCK)
	}
	if e != 0 {
		syscall.Close(fd)
		return nil, fmt.Errorf("%s: %v", Device, e)
	}
	return &uartLink{fd: fd}, nil
}

// send: the whole request in one write (§1.4).
func (l *uartLink) send(cmd []byte) error {
	deviceMu.Lock()
	n, err := syscall.Write(l.fd, cmd)
	deviceMu.Unlock()
	if err != nil {
		return err
	}
	if n != len(cmd) {
		return fmt.Errorf("wrote %d bytes instead of %d", n, len(cmd))
	}
	return nil
}

// response: read(fd, buf+off, 256-off) until the buffer holds a 00, sleeping 1 ms between reads; the
// timeout counts iterations, not wall time; the response is everything before the last 00 (§1.5).
func (l *uartLink) response(timeoutMs int) ([]byte, error) {
	buf := make([]byte, 256)
	off := 0
	for remaining := timeoutMs; remaining > 0; remaining-- {
		deviceMu.Lock()
		n, err := syscall.Read(l.fd, buf[off:])
		deviceMu.Unlock()
		if err != nil {
			return nil, err
		}
		off += n
		if i := bytes.LastIndexByte(buf[:off], 0); i >= 0 {
			return buf[:i], nil
		}
		time.Sleep(time.Millisecond)
	}
	return nil, ErrNoResponse
}

func (l *uartLink) close() { syscall.Close(l.fd) }
