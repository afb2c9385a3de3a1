// listen: wait for one radio packet (a GetPacket of -t, default 1h); exit 0 when one was heard, 1 on
// "timeout" (log.Fatal: no "disconnecting" line, no close of the device). No pump wake-up.
package main

import (
	"flag"
	"log"
	"time"

	"kprof/rigtools/cc111x"
	"kprof/rigtools/internal/cli"
	"kprof/rigtools/medtronic"
)

var timeout = flag.Duration("t", time.Hour, "listen `DURATION`")

func main() {
	flag.Parse()
	pump := cli.Open()
	log.Printf("listening for %v", *timeout)
	resp := pump.Radio.GetPacket(int(*timeout / time.Millisecond))
	switch {
	case resp == nil && pump.Radio.Error() != nil:
		log.Fatal(pump.Radio.Error())
	case cc111x.IsTimeout(resp):
		log.Fatal("timeout")
	case len(resp) == 1:
		log.Fatal(cc111x.ReceiveError(resp[0]))
	}
	log.Printf("raw data: % X", resp[2:])
	if data, err := medtronic.Decode4b6b(resp[2:]); err != nil {
		log.Printf("decoded:  %v", err)
	} else {
		log.Printf("decoded:  % X", data)
	}
	log.Printf("RSSI %d", cc111x.RSSI(resp[0]))
	cli.Close(pump)
}
