// Package cli is what the four tools share: opening the radio and the pump the way ecc1's tools do, their
// log lines, exit statuses and JSON output.
package cli

import (
	"encoding/json"
	"fmt"
	"log"
	"os"
	"os/signal"
	"strconv"
	"syscall"

	// cgo on purpose: ecc1's real tools import net (through ecc1/nightscout), so a native build links glibc
	// dynamically, starts through ld.so and creates its threads with pthread_create (clone3 on glibc >= 2.34)
	// instead of the Go runtime's raw clone. A rig's process looks like that, so these tools do too.
	_ "net"

	"kprof/rigtools/cc111x"
	"kprof/rigtools/medtronic"
)

const defaultFrequency = 916600000

// MHz formats a frequency in Hz as the tools log it: "916.550".
func MHz(hz uint32) string {
	return fmt.Sprintf("%d.%03d", hz/1000000, hz%1000000/1000)
}

// Frequency is MEDTRONIC_FREQUENCY: MHz (860 to 920) or Hz; unset → 916.6 MHz (pump-protocol.md §1.1).
func Frequency() uint32 {
	text, ok := os.LookupEnv("MEDTRONIC_FREQUENCY")
	if !ok || text == "" {
		return defaultFrequency
	}
	f, err := strconv.ParseFloat(text, 64)
	switch {
	case err != nil:
	case 860 <= f && f <= 920:
		return uint32(f * 1000000)
	case 860000000 <= f && f <= 920000000:
		return uint32(f)
	}
	log.Fatalf("invalid pump frequency %q (MHz, 860.0 to 920.0, or Hz)", text)
	return 0
}

// PumpID is MEDTRONIC_PUMP_ID: exactly 6 characters parsed as hex (§4.1).
func PumpID() [3]byte {
	id, ok := os.LookupEnv("MEDTRONIC_PUMP_ID")
	if !ok {
		log.Fatal("MEDTRONIC_PUMP_ID environment variable is not set")
	}
	n, err := strconv.ParseUint(id, 16, 32)
	if len(id) != 6 || err != nil {
		log.Fatalf("MEDTRONIC_PUMP_ID %q must be 6 hexadecimal digits", id)
	}
	return [3]byte{byte(n >> 16), byte(n >> 8), byte(n)}
}

// Open: the radio (its version checked), the pump ID, the frequency; SIGINT/SIGTERM close the device and
// exit 0 (Radio.Shutdown: nothing fails on the closed device first). Errors end the process here, as ecc1's
// tools do, without closing the device.
func Open() *medtronic.Pump {
	r, err := cc111x.Open()
	if err != nil {
		log.Printf("cannot connect to CC111x radio on %s", cc111x.Device)
		log.Fatal(err)
	}
	log.Printf("connected to CC111x radio on %s", cc111x.Device)
	id := PumpID()
	hz := Frequency()
	log.Printf("setting frequency to %s", MHz(hz))
	r.SetFrequency(hz)
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		<-signals
		r.Shutdown()
		os.Exit(0)
	}()
	return medtronic.New(r, id)
}

// Close: the normal end of mdt, listen and mmtune (pumphistory and every error exit skip it).
func Close(p *medtronic.Pump) {
	log.Printf("disconnecting CC111x radio on %s", cc111x.Device)
	p.Radio.Close()
}

// ExitOnError: exit 2 when the pump did not answer, 1 for anything else; the device is not closed.
func ExitOnError(err error) {
	if medtronic.IsNoResponse(err) {
		log.Print(err)
		os.Exit(2)
	}
	log.Fatal(err)
}

// Print writes v as 2-space-indented JSON and a newline.
func Print(v interface{}) {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		log.Fatal(err)
	}
	os.Stdout.Write(append(b, '\n'))
}
