// mdt: one pump command per process, as ecc1's mdt (pump-protocol.md §4.4, §4.5, §5.2).
//
//	mdt [-f openaps|internal] model|reservoir|status|clock|battery|tempbasal|wakeup|pumpid|firmware
//	mdt [-f openaps|internal] settings|targets|sensitivities|carbratios|basal
//	mdt settempbasal FILE.json        (-f internal: settempbasal RATE MINUTES [absolute|percent])
//	mdt bolus FILE.json               (-f internal: bolus UNITS)
//	mdt -f internal button KEY...     (b, esc, act, up, down; openaps: a FILE.json with "keys")
//	mdt suspend | resume              mdt -f internal setclock now|"YYYY-MM-DD HH:MM:SS"
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"math"
	"os"
	"strconv"
	"strings"
	"time"

	"kprof/rigtools/internal/cli"
	"kprof/rigtools/medtronic"
)

type action func(p *medtronic.Pump) (interface{}, error)

var format = flag.String("f", "openaps", "output and argument format (openaps or internal)")

func main() {
	flag.Usage = func() {
		fmt.Fprintf(os.Stderr, "usage: %s [-f openaps|internal] command [args]\n", os.Args[0])
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() == 0 || (*format != "openaps" && *format != "internal") {
		flag.Usage()
		os.Exit(2)
	}
	verb, args := flag.Arg(0), flag.Args()[1:]
	run := prepare(verb, args) // arguments are checked before any device I/O
	pump := cli.Open()
	if err := pump.Wakeup(); err != nil {
		cli.ExitOnError(err)
	}
	result, err := run(pump)
	if err != nil {
		cli.ExitOnError(err)
	}
	if result != nil {
		cli.Print(result)
	}
	cli.Close(pump)
}

func query(f func(p *medtronic.Pump) (interface{}, error)) action { return f }

func prepare(verb string, args []string) action {
	switch verb {
	case "model":
		return query(func(p *medtronic.Pump) (interface{}, error) { return p.Model() })
	case "reservoir":
		return query(func(p *medtronic.Pump) (interface{}, error) { return p.Reservoir() })
	case "status":
		return query(func(p *medtronic.Pump) (interface{}, error) { return p.Status() })
	case "clock":
		return query(func(p *medtronic.Pump) (interface{}, error) { return p.Clock() })
	case "battery":
		return query(func(p *medtronic.Pump) (interface{}, error) { return p.Battery() })
	case "tempbasal":
		return query(func(p *medtronic.Pump) (interface{}, error) { return p.TempBasal() })
	case "pumpid":
		return query(func(p *medtronic.Pump) (interface{}, error) { return p.PumpID() })
	case "firmware":
		return query(func(p *medtronic.Pump) (interface{}, error) { return p.FirmwareVersion() })
	case "settings":
		return query(func(p *medtronic.Pump) (interface{}, error) { return p.Settings() })
	case "targets":
		return query(func(p *medtronic.Pump) (interface{}, error) { return p.GlucoseTargets() })
	case "sensitivities":
		return query(func(p *medtronic.Pump) (interface{}, error) { return p.InsulinSensitivities() })
	case "carbratios":
		return query(func(p *medtronic.Pump) (interface{}, error) { return p.CarbRatios() })
	case "basal":
		return query(func(p *medtronic.Pump) (interface{}, error) { return p.BasalRates() })
	case "wakeup":
		return func(*medtronic.Pump) (interface{}, error) { return nil, nil }
	case "suspend", "resume":
		return func(p *medtronic.Pump) (interface{}, error) {
			log.Printf("%sing pump", strings.TrimSuffix(verb, "e"))
			return nil, p.Suspend(verb == "suspend")
		}
	case "settempbasal":
		return setTempBasal(args)
	case "bolus":
		return bolus(args)
	case "button":
		return button(args)
	case "setclock":
		return setClock(args)
	}
	log.Fatalf("unknown command %s", verb)
	return nil
}

// argument reads the openaps-format argument file: a JSON object.
func argument(verb string, args []string, keys ...string) map[string]interface{} {
	if len(args) != 1 {
		log.Fatalf("%s: expected one argument file", verb)
	}
	f, err := os.Open(args[0])
	if err != nil {
		log.Fatal(err)
	}
	var m map[string]interface{}
	if err := json.NewDecoder(f).Decode(&m); err != nil {
		log.Fatalf("%s: %v", verb, err)
	}
	for _, k := range keys {
		if _, ok := m[k]; !ok {
			log.Fatalf("%s: argument file %s is missing %q parameter", verb, args[0], k)
		}
	}
	return m
}

func number(verb, key string, v interface{}) float64 {
	switch x := v.(type) {
	case float64:
		return x
	case string:
		if f, err := strconv.ParseFloat(x, 64); err == nil {
			return f
		}
	}
	log.Fatalf("%s: %s must be a number (%v)", verb, key, v)
	return 0
}

func milliunits(u float64) int { return int(math.Round(u * 1000)) }

func setTempBasal(args []string) action {
	var temp string
	var rate, minutes float64
	if *format == "internal" {
		if len(args) != 2 && len(args) != 3 {
			log.Fatal("settempbasal: expected RATE MINUTES [absolute|percent]")
		}
		rate, minutes, temp = number("settempbasal", "rate", args[0]), number("settempbasal", "duration", args[1]), "absolute"
		if len(args) == 3 {
			temp = args[2]
		}
	} else {
		m := argument("settempbasal", args, "temp", "rate", "duration")
		temp, _ = m["temp"].(string)
		rate, minutes = number("settempbasal", "rate", m["rate"]), number("settempbasal", "duration", m["duration"])
	}
	d := time.Duration(minutes * float64(time.Minute))
	if err := medtronic.CheckTempBasalDuration(d); err != nil {
		log.Fatalf("settempbasal: %v", err)
	}
	switch temp {
	case "absolute":
		return func(p *medtronic.Pump) (interface{}, error) {
			log.Printf("setting temporary basal of %.3f units/hour for %d minutes", rate, int(minutes))
			return nil, p.SetAbsoluteTempBasal(d, milliunits(rate))
		}
	case "percent":
		return func(p *medtronic.Pump) (interface{}, error) {
			log.Printf("setting temporary basal of %d%% for %d minutes", int(rate), int(minutes))
			return nil, p.SetPercentTempBasal(d, int(rate))
		}
	}
	log.Fatalf("settempbasal: unknown temp basal type %q", temp)
	return nil
}

func bolus(args []string) action {
	var amount float64
	if *format == "internal" {
		if len(args) != 1 {
			log.Fatal("bolus: expected UNITS")
		}
		amount = number("bolus", "units", args[0])
	} else {
		amount = number("bolus", "units", argument("bolus", args, "units")["units"])
	}
	return func(p *medtronic.Pump) (interface{}, error) {
		log.Printf("performing bolus of %.3f units", amount)
		return nil, p.Bolus(milliunits(amount))
	}
}

var buttons = map[string]struct {
	code byte
	name string
}{"b": {0, "BolusButton"}, "esc": {1, "EscButton"}, "act": {2, "ActButton"}, "up": {3, "UpButton"},
	"down": {4, "DownButton"}}

func button(args []string) action {
	keys := args
	if *format != "internal" {
		list, _ := argument("button", args, "keys")["keys"].([]interface{})
		keys = nil
		for _, k := range list {
			keys = append(keys, fmt.Sprint(k))
		}
	}
	if len(keys) == 0 {
		log.Fatal("button: expected one or more keys (b, esc, act, up, down)")
	}
	for _, k := range keys {
		if _, ok := buttons[k]; !ok {
			log.Fatalf("button: unknown key %s (b, esc, act, up, down)", k)
		}
	}
	return func(p *medtronic.Pump) (interface{}, error) {
		for _, k := range keys {
			log.Printf("pressing %s", buttons[k].name)
			if err := p.Button(buttons[k].code); err != nil {
				return nil, err
			}
		}
		return nil, nil
	}
}

func setClock(args []string) action {
	text := strings.Join(args, " ")
	var when time.Time
	if text != "now" {
		t, err := time.ParseInLocation("2006-01-02 15:04:05", text, time.Local)
		if err != nil {
			log.Fatal(`setclock: expected now or "YYYY-MM-DD HH:MM:SS"`)
		}
		when = t
	}
	return func(p *medtronic.Pump) (interface{}, error) {
		t := when
		if t.IsZero() {
			t = time.Now()
		}
		log.Printf("setting pump clock to %s", t.Format("2006-01-02 15:04:05"))
		return nil, p.SetClock(t)
	}
}
