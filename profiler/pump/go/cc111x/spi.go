//go:build !uart

package cc111x

// The SPI radio (spi-radio.md): the Explorer HAT / Explorer Board CC1110 running subg_rfspy 1.0 as an SPI
// slave. Open is openat(O_RDWR) + flock(LOCK_EX|LOCK_NB), the chip-select pin (Edison only) and the reset
// pin through the legacy sysfs GPIO files, a reset pulse and a 1 s wait (§2, §9). Every byte is one
// ioctl(SPI_IOC_MESSAGE(1)) of one 1-byte transfer at 62.5 kHz, bit-reversed (§3, §4.1); commands and
// polls are frames of 99, a length byte and data (§4.2-§4.4).

import (
	"bytes"
	"fmt"
	"math/bits"
	"os"
	"path"
	"strconv"
	"syscall"
	"time"
	"unsafe"
)

const (
	spiIOCMessage1 = 0x40206B00 // _IOW('k', 0, char[32]): one struct spi_ioc_transfer
	spiSpeedHz     = 62500
	frameMarker    = 0x99
	gpioDir        = "/sys/class/gpio"
)

// spiTransfer is struct spi_ioc_transfer (32 bytes, the same layout for 32- and 64-bit user space).
type spiTransfer struct {
	txBuf, rxBuf            uint64
	length, speedHz         uint32
	delayUsecs              uint16
	bitsPerWord, csChange   uint8
	txNbits, rxNbits        uint8
	wordDelayUsecs, padding uint8
}

type spiLink struct {
	fd   int
	buf  []byte // buf[0] is tx_buf and buf[1] rx_buf of every transfer
	cs   *pin   // the software chip-select (Edison), nil on the Pi
	rcv  []byte // bytes received so far; kept across response calls until a 00 ends a response
	wire func(byte) byte
	err  error // the errno of the last failed ioctl: the client records it and carries on (§3.2)
}

func openLink() (link, error) {
	fd, err := syscall.Open(Device, syscall.O_RDWR, 0)
	if err != nil {
		return nil, fmt.Errorf("%s: %v", Device, err)
	}
	if err := syscall.Flock(fd, syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		syscall.Close(fd)
		if err == syscall.EWOULDBLOCK {
			return nil, fmt.Errorf("%s: device is in use", Device)
		}
		return nil, fmt.Errorf("%s: %v", Device, err)
	}
	l := &spiLink{fd: fd, buf: make([]byte, 2)}
	l.wire = l.ioctl
	if customCS != 0 {
		if l.cs, err = gpioOutput(customCS, true, false); err != nil {
			syscall.Close(fd)
			return nil, err
		}
	}
	reset, err := gpioOutput(resetPin, true, false)
	if err != nil {
		syscall.Close(fd)
		return nil, err
	}
	// reset pulse: value 1 (active low: RESET_N low), 100 µs, value 0; then the firmware boots (§2.2, §4.5)
	reset.set(true)
	time.Sleep(100 * time.Microsecond)
	reset.set(false)
	time.Sleep(time.Second)
	return l, nil
}

// ioctl transfers one wire byte; only errno is checked (and kept), rx_buf is read whatever happened.
func (l *spiLink) ioctl(tx byte) byte {
	l.buf[0] = tx
	t := spiTransfer{
		txBuf:       uint64(uintptr(unsafe.Pointer(&l.buf[0]))),
		rxBuf:       uint64(uintptr(unsafe.Pointer(&l.buf[1]))),
		length:      1,
		speedHz:     spiSpeedHz,
		bitsPerWord: 8,
	}
	deviceMu.Lock()
	_, _, e := syscall.Syscall(syscall.SYS_IOCTL, uintptr(l.fd), spiIOCMessage1, uintptr(unsafe.Pointer(&t)))
	deviceMu.Unlock()
	if e != 0 {
		l.err = e
	}
	return l.buf[1]
}

// xfer sends one logical byte and returns the logical byte received: the CC1110's USART is LSB first, the
// SPI bus MSB first, so both are bit-reversed; on Edison chip-select wraps every byte.
func (l *spiLink) xfer(b byte) byte {
	if l.cs != nil {
		l.cs.set(true)
	}
	r := bits.Reverse8(l.wire(bits.Reverse8(b)))
	if l.cs != nil {
		l.cs.set(false)
	}
	return r
}

// send: one command frame, 99, n, the n command bytes; response bytes the slave announced (c) are kept.
func (l *spiLink) send(cmd []byte) error {
	l.xfer(frameMarker)
	c := int(l.xfer(byte(len(cmd))))
	for _, b := range cmd {
		r := l.xfer(b)
		if c > 0 {
			l.rcv = append(l.rcv, r)
			c--
		}
	}
	for ; c > 0; c-- {
		l.rcv = append(l.rcv, l.xfer(0))
	}
	return nil
}

// response: poll frames (99, 00 → c, c × 00) every 1 ms until the bytes received hold a 00; the timeout
// counts iterations. Bytes of an unfinished response stay for the next call.
func (l *spiLink) response(timeoutMs int) ([]byte, error) {
	for remaining := timeoutMs; remaining > 0; remaining-- {
		l.xfer(frameMarker)
		for c := int(l.xfer(0)); c > 0; c-- {
			l.rcv = append(l.rcv, l.xfer(0))
		}
		if i := bytes.LastIndexByte(l.rcv, 0); i >= 0 {
			resp := append([]byte(nil), l.rcv[:i]...)
			l.rcv = nil
			return resp, nil
		}
		time.Sleep(time.Millisecond)
	}
	return nil, ErrNoResponse
}

func (l *spiLink) close() { syscall.Close(l.fd) }

// pin is a GPIO in the legacy sysfs ABI, /sys/class/gpio/gpioN.
type pin struct{ dir string }

// gpioOutput: stat gpioN (export it and wait 1 s when absent), stat its value file, then write active_low
// and direction (the raw level of the initial value). Each write is a whole os.WriteFile, as ecc1/gpio's
// ioutil.WriteFile. A missing value file gives a nil pin and no error, as in ecc1/gpio, and the set-up
// then dereferences it: a Go panic, exit status 2 (spi-radio.md §2.2 b, §10).
func gpioOutput(n int, activeLow, initial bool) (*pin, error) {
	p, err := openPin(n)
	if err != nil {
		return nil, err
	}
	low, level := "0", "low"
	if activeLow {
		low = "1"
	}
	if initial != activeLow {
		level = "high"
	}
	if err := p.write("active_low", low); err != nil {
		return nil, err
	}
	if err := p.write("direction", level); err != nil {
		return nil, err
	}
	return p, nil
}

func openPin(n int) (*pin, error) {
	dir := path.Join(gpioDir, "gpio"+strconv.Itoa(n))
	if _, err := os.Stat(dir); os.IsNotExist(err) {
		if err := os.WriteFile(gpioDir+"/export", []byte(strconv.Itoa(n)), 0644); err != nil {
			return nil, err
		}
		time.Sleep(time.Second) // give udev rules a chance
		if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
			return nil, fmt.Errorf("failed to export GPIO directory %s", dir)
		}
	}
	if fi, err := os.Stat(dir + "/value"); err != nil || !fi.Mode().IsRegular() {
		return nil, nil
	}
	return &pin{dir: dir}, nil
}

func (p *pin) write(file, value string) error {
	return os.WriteFile(p.dir+"/"+file, []byte(value), 0644)
}

func (p *pin) set(v bool) error {
	if v {
		return p.write("value", "1")
	}
	return p.write("value", "0")
}
