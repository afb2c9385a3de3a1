package medtronic

import (
	"errors"
	"fmt"
	"log"
	"strings"

	"kprof/rigtools/cc111x"
)

// Command is a pump command code (§4.4).
type Command byte

const (
	ack                  Command = 0x06
	nak                  Command = 0x15
	cmdSetClock          Command = 0x40
	cmdBolus             Command = 0x42
	cmdSetAbsoluteTemp   Command = 0x4C
	cmdSuspend           Command = 0x4D
	cmdButton            Command = 0x5B
	cmdWakeup            Command = 0x5D
	cmdSetPercentTemp    Command = 0x69
	cmdClock             Command = 0x70
	cmdPumpID            Command = 0x71
	cmdBattery           Command = 0x72
	cmdReservoir         Command = 0x73
	cmdFirmware          Command = 0x74
	cmdHistoryPage       Command = 0x80
	cmdCarbRatios        Command = 0x8A
	cmdSensitivities     Command = 0x8B
	cmdGlucoseTargets512 Command = 0x8C
	cmdModel             Command = 0x8D
	cmdSettings512       Command = 0x91
	cmdBasalRates        Command = 0x92
	cmdTempBasal         Command = 0x98
	cmdLastHistoryPage   Command = 0x9D
	cmdGlucoseTargets    Command = 0x9F
	cmdSettings          Command = 0xC0
	cmdStatus            Command = 0xCE
)

// Go names of the commands, as the real tools print them ("no response to X", "X error: CommandRefused")
var commandNames = map[Command]string{
	ack: "ack", nak: "nak", cmdSetClock: "setClock", cmdBolus: "bolus", cmdSetAbsoluteTemp: "setAbsoluteTempBasal",
	cmdSuspend: "suspend", cmdButton: "button", cmdWakeup: "wakeup", cmdSetPercentTemp: "setPercentTempBasal",
	cmdClock: "clock", cmdPumpID: "pumpID", cmdBattery: "battery", cmdReservoir: "reservoir",
	cmdFirmware: "firmwareVersion", cmdHistoryPage: "historyPage", cmdCarbRatios: "carbRatios",
	cmdSensitivities: "insulinSensitivities", cmdGlucoseTargets512: "glucoseTargets512", cmdModel: "model",
	cmdSettings512: "settings512", cmdBasalRates: "basalRates", cmdTempBasal: "tempBasal",
	cmdLastHistoryPage: "lastHistoryPage", cmdGlucoseTargets: "glucoseTargets", cmdSettings: "settings",
	cmdStatus: "status",
}

func (c Command) String() string {
	if s, ok := commandNames[c]; ok {
		return s
	}
	return fmt.Sprintf("command %02X", byte(c))
}

// timing and retries (§1.6, §5.1), milliseconds
const (
	pumpTimeoutMs   = 500
	longTimeoutMs   = 1000
	floodTimeoutMs  = 10
	finalTimeoutMs  = 10000
	floodTries      = 100
	defaultRetries  = 3
	historyRetries  = 1
	maxNAKs         = 10
	pageTries       = 3
	maxHistoryPage  = 35
	x12LastPage     = 32
	errCodeRefused  = 0x08
	fragmentsInPage = 16
)

// NoResponseError: the pump did not answer (exit status 2 in mdt).
type NoResponseError struct{ Cmd Command }

func (e NoResponseError) Error() string { return "no response to " + e.Cmd.String() }

// InvalidCommandError: the pump NAKed the command.
type InvalidCommandError struct {
	Cmd  Command
	Code byte
}

var pumpErrors = map[byte]string{0x08: "CommandRefused", 0x09: "SettingOutOfRange", 0x0C: "BolusInProgress",
	0x0D: "InvalidHistoryPageNumber"}

func (e InvalidCommandError) Error() string {
	name, ok := pumpErrors[e.Code]
	if !ok {
		name = fmt.Sprintf("PumpError(%d)", e.Code)
	}
	return e.Cmd.String() + " error: " + name
}

// BadResponseError: a reply that does not fit the command.
func badResponse(cmd Command, data []byte) error {
	return fmt.Errorf("unexpected response to %v: % X", cmd, data)
}

// Pump is one pump behind the radio.
type Pump struct {
	Radio   *cc111x.Radio
	addr    [3]byte
	retries int
	family  int // -1 unknown
	model   string
	RSSI    int // of the last packet heard
}

// New: the pump with serial id (6 characters parsed as hex, §4.1).
func New(r *cc111x.Radio, id [3]byte) *Pump {
	return &Pump{Radio: r, addr: id, retries: defaultRetries, family: -1}
}

// SetRetries sets the number of tries per exchange.
func (p *Pump) SetRetries(n int) { p.retries = n }

// perform is one exchange with retries (§4.3); the reply packet without its CRC.
func (p *Pump) perform(cmd Command, encoded []byte, timeoutMs, tries int, accept ...Command) ([]byte, error) {
	if err := p.Radio.Error(); err != nil {
		return nil, err
	}
	if len(encoded) == longEncoded {
		tries = 1
	}
	var last error = NoResponseError{cmd}
	for try := 0; try < tries; try++ {
		resp := p.Radio.SendAndListen(encoded, timeoutMs)
		switch {
		case resp == nil && p.Radio.Error() != nil:
			last = p.Radio.Error()
			continue
		case cc111x.IsTimeout(resp):
			last = NoResponseError{cmd}
			continue
		case len(resp) == 1:
			last = cc111x.ReceiveError(resp[0])
			continue
		}
		pkt, err := decodePacket(resp[2:])
		if err != nil {
			last = err
			continue
		}
		p.RSSI = cc111x.RSSI(resp[0])
		if err := p.validate(cmd, pkt, accept); err != nil {
			return nil, err
		}
		if try > 0 {
			s := "ies"
			if try == 1 {
				s = "y"
			}
			log.Printf("%v command required %d retr%s", cmd, try, s)
		}
		return pkt, nil
	}
	return nil, last
}

func (p *Pump) validate(cmd Command, pkt []byte, accept []Command) error {
	if len(pkt) < 6 || pkt[0] != packetPump || pkt[1] != p.addr[0] || pkt[2] != p.addr[1] || pkt[3] != p.addr[2] {
		return badResponse(cmd, pkt)
	}
	for _, a := range accept {
		if Command(pkt[4]) == a {
			return nil
		}
	}
	if Command(pkt[4]) == nak {
		return InvalidCommandError{cmd, pkt[5]}
	}
	return badResponse(cmd, pkt)
}

// Execute is P1: a short command packet; the reply's body (bytes 5..).
func (p *Pump) Execute(cmd Command) ([]byte, error) {
	return p.execute(cmd, pumpTimeoutMs, p.retries)
}

func (p *Pump) execute(cmd Command, timeoutMs, tries int) ([]byte, error) {
	accept := []Command{cmd}
	if cmd == cmdWakeup {
		accept = append(accept, ack)
	}
	pkt, err := p.perform(cmd, shortPacket(p.addr, cmd), timeoutMs, tries, accept...)
	if err != nil {
		return nil, err
	}
	return pkt[5:], nil
}

// execute2 is P2: the short packet (ACKed), then the long one with the parameters at 2 × T, one try.
func (p *Pump) execute2(cmd Command, params ...byte) ([]byte, error) {
	if _, err := p.perform(cmd, shortPacket(p.addr, cmd), pumpTimeoutMs, p.retries, cmd, ack); err != nil {
		if _, ok := err.(NoResponseError); ok {
			return nil, fmt.Errorf("%v command not performed", cmd)
		}
		return nil, err
	}
	pkt, err := p.perform(cmd, longPacket(p.addr, cmd, params), longTimeoutMs, 1, cmd, ack)
	if err != nil {
		return nil, err
	}
	return pkt[5:], nil
}

// Model queries the model (8D) and caches its family (§4.6.1).
func (p *Pump) Model() (string, error) {
	body, err := p.Execute(cmdModel)
	if err != nil {
		return "", err
	}
	if len(body) < 2 || len(body) < 2+int(body[1]) {
		return "", badResponse(cmdModel, body)
	}
	p.model = string(body[2 : 2+body[1]])
	p.family = familyOf(p.model)
	return p.model, nil
}

func familyOf(model string) int {
	if len(model) == 3 && (model[0] == '5' || model[0] == '7') && strings.Trim(model[1:], "0123456789") == "" {
		return int(model[1]-'0')*10 + int(model[2]-'0')
	}
	return -1
}

// Family is the cached model family, asking the pump when it is not known yet.
func (p *Pump) Family() (int, error) {
	if p.family < 0 && p.model == "" {
		if _, err := p.Model(); err != nil {
			return 0, err
		}
	}
	return p.family, nil
}

// Wakeup: the model query; when it gets no answer, the wake-up flood and one long wake-up (§5.3).
func (p *Pump) Wakeup() error {
	model, err := p.Model()
	if err == nil {
		log.Printf("model %s pump", model)
		return nil
	}
	if _, ok := err.(NoResponseError); !ok {
		return err
	}
	log.Print("waking pump")
	p.Radio.SetError(nil)
	p.execute(cmdWakeup, floodTimeoutMs, floodTries)
	p.Radio.SetError(nil)
	_, err = p.execute(cmdWakeup, finalTimeoutMs, 1)
	p.model, p.family = "", -1
	return err
}

// Error classes for the tools' exit statuses.
func IsNoResponse(err error) bool {
	var e NoResponseError
	return errors.As(err, &e)
}
