// pumphistory: pump history records, newest first, in ecc1's JSON (Type, Time, Data, Info).
//
//	pumphistory [-n HOURS | -f RECORD_ID | -s RFC3339_TIME]      (default: -n 6)
//
// Exit status: 0 success; 1 communication error before any record; 3 communication error after some
// records (they are still printed); 2 the -f record was not found (every record is printed). The tool
// always leaves through os.Exit: no "disconnecting" line and no close of the device.
package main

import (
	"encoding/base64"
	"flag"
	"log"
	"os"
	"time"

	"kprof/rigtools/internal/cli"
	"kprof/rigtools/medtronic"
)

var (
	hours = flag.Int("n", 6, "retrieve records from the last `HOURS` hours")
	since = flag.String("s", "", "retrieve records since `TIME` (RFC 3339)")
	from  = flag.String("f", "", "retrieve records newer than the record with `ID` (base64 of its bytes)")
)

func main() {
	flag.Parse()
	var stop func(medtronic.HistoryRecord) bool
	var stopped func(medtronic.HistoryRecord) string
	switch {
	case *from != "":
		id, err := base64.StdEncoding.DecodeString(*from)
		if err != nil {
			log.Fatal(err)
		}
		log.Printf("retrieving pump history since record %s", *from)
		stop = func(r medtronic.HistoryRecord) bool { return medtronic.SameRecord(r, id) }
		stopped = func(medtronic.HistoryRecord) string { return "record " + *from }
	default:
		cutoff := time.Now().Add(-time.Duration(*hours) * time.Hour)
		if *since != "" {
			t, err := time.Parse(time.RFC3339, *since)
			if err != nil {
				log.Fatal(err)
			}
			cutoff = t.Local()
		}
		log.Printf("retrieving pump history since %s", cutoff.Format("2006-01-02 15:04:05"))
		stop = func(r medtronic.HistoryRecord) bool { return r.Time.Before(cutoff) }
		stopped = func(r medtronic.HistoryRecord) string { return r.Time.Format("2006-01-02 15:04:05") }
	}
	pump := cli.Open()
	records, found, err := []medtronic.HistoryRecord(nil), (*medtronic.HistoryRecord)(nil), pump.Wakeup()
	if err == nil {
		records, found, err = pump.HistoryScan(stop)
	}
	if err != nil && len(records) == 0 {
		log.Print(err)
		os.Exit(1)
	}
	if records == nil {
		records = []medtronic.HistoryRecord{}
	}
	cli.Print(records)
	switch {
	case err != nil:
		log.Print(err)
		os.Exit(3)
	case found != nil:
		log.Printf("stopping pump history scan at %s", stopped(*found))
	case *from != "":
		log.Printf("record %s not found", *from)
		os.Exit(2)
	}
	os.Exit(0)
}
