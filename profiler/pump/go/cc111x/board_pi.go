//go:build !uart && !edison

package cc111x

// Raspberry Pi + Explorer HAT (spi-radio.md §1.1): SPI0 CE0, no software chip-select, reset on GPIO 4.
const (
	Device   = "/dev/spidev0.0"
	customCS = 0
	resetPin = 4
)
