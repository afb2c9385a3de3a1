//go:build !uart && edison

package cc111x

// Intel Edison + Explorer Board (spi-radio.md §1.1, §9): chip-select on GPIO 110, reset on GPIO 14.
const (
	Device   = "/dev/spidev5.1"
	customCS = 110
	resetPin = 14
)
