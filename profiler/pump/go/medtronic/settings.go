package medtronic

import "fmt"

// The settings, schedules and profiles oref0's get_settings reads (real-tools/settings.txt, targets.txt,
// sensitivities.txt, carbratios.txt, basal.txt give the reply layouts and the printed JSON).

// SettingsInfo is `mdt settings` in openaps format, keys in this order.
type SettingsInfo struct {
	AutoOff              int     `json:"auto_off_duration_hrs"`
	InsulinAction        int     `json:"insulin_action_curve"`
	InsulinConcentration int     `json:"insulinConcentration"`
	MaxBolus             float64 `json:"maxBolus"`
	MaxBasal             float64 `json:"maxBasal"`
	RFEnable             bool    `json:"rf_enable"`
	SelectedPattern      int     `json:"selected_pattern"`
}

func (p *Pump) Settings() (*SettingsInfo, error) {
	family, err := p.Family()
	if err != nil {
		return nil, err
	}
	cmd := cmdSettings
	if family <= 12 {
		cmd = cmdSettings512
	}
	body, err := p.Execute(cmd)
	if err != nil {
		return nil, err
	}
	return decodeSettings(cmd, body, family)
}

func decodeSettings(cmd Command, body []byte, family int) (*SettingsInfo, error) {
	first, minLen, bolusAt, basalAt := 0x15, 22, 6, 7
	switch {
	case family <= 12:
		first, minLen = 0x12, 19
	case family >= 23:
		first, minLen, bolusAt, basalAt = 0x19, 26, 7, 8
	}
	if len(body) < minLen || int(body[0]) != first {
		return nil, badResponse(cmd, body)
	}
	s := &SettingsInfo{
		AutoOff:         int(body[1]),
		MaxBolus:        units(int(body[bolusAt]) * 100),
		MaxBasal:        units((int(body[basalAt])<<8 | int(body[basalAt+1])) * 25),
		RFEnable:        body[13] == 1,
		SelectedPattern: int(body[12]),
		InsulinAction:   int(body[18]),
	}
	if family <= 12 {
		s.InsulinAction = 8
		if body[18] == 0 {
			s.InsulinAction = 6
		}
	}
	switch body[10] {
	case 0:
		s.InsulinConcentration = 100
	case 1:
		s.InsulinConcentration = 50
	default:
		return nil, badResponse(cmd, body)
	}
	return s, nil
}

func clockOf(halfHours int) string {
	return fmt.Sprintf("%02d:%02d:00", halfHours/2, halfHours%2*30)
}

// schedule cuts body[from:1+body[0]] into entries of size es; decoding stops at an entry whose start (its
// byte at startAt, masked) is 0 after the first.
func schedule(cmd Command, body []byte, from, es int, startOf func([]byte) int) ([][]byte, error) {
	if len(body) < 2 {
		return nil, badResponse(cmd, body)
	}
	end := 1 + int(body[0])
	if end > len(body) || end < from || (end-from)%es != 0 {
		return nil, badResponse(cmd, body)
	}
	var out [][]byte
	for i := from; i+es <= end; i += es {
		e := body[i : i+es]
		if len(out) > 0 && startOf(e) == 0 {
			break
		}
		out = append(out, e)
	}
	return out, nil
}

// GlucoseTarget is one entry of `mdt targets`.
type GlucoseTarget struct {
	X      int     `json:"x"`
	I      int     `json:"i"`
	Start  string  `json:"start"`
	Offset int     `json:"offset"`
	Low    float64 `json:"low"`
	High   float64 `json:"high"`
}

type GlucoseTargets struct {
	First   int             `json:"first"`
	Units   string          `json:"units"`
	Targets []GlucoseTarget `json:"targets"`
}

func glucoseUnits(b byte) string {
	if b == 2 {
		return "mmol/L"
	}
	return "mg/dL"
}

// glucose: mg/dL, or tenths of mmol/L printed in mmol/L
func glucose(v int, unitsByte byte) float64 {
	if unitsByte == 2 {
		return float64(v) / 10
	}
	return float64(v)
}

func (p *Pump) GlucoseTargets() (*GlucoseTargets, error) {
	family, err := p.Family()
	if err != nil {
		return nil, err
	}
	cmd := cmdGlucoseTargets
	if family <= 12 {
		cmd = cmdGlucoseTargets512
	}
	body, err := p.Execute(cmd)
	if err != nil {
		return nil, err
	}
	return decodeTargets(cmd, body, family)
}

func decodeTargets(cmd Command, body []byte, family int) (*GlucoseTargets, error) {
	es := 3
	if family <= 12 {
		es = 2
	}
	entries, err := schedule(cmd, body, 2, es, func(e []byte) int { return int(e[0]) })
	if err != nil {
		return nil, err
	}
	t := &GlucoseTargets{First: int(body[1]), Units: glucoseUnits(body[1]), Targets: []GlucoseTarget{}}
	for x, e := range entries {
		low, high := int(e[1]), int(e[1])
		if es == 3 {
			high = int(e[2])
		}
		t.Targets = append(t.Targets, GlucoseTarget{X: x, I: int(e[0]), Start: clockOf(int(e[0])), Offset: int(e[0]) * 30,
			Low: glucose(low, body[1]), High: glucose(high, body[1])})
	}
	return t, nil
}

// Sensitivity is one entry of `mdt sensitivities`.
type Sensitivity struct {
	X           int     `json:"x"`
	I           int     `json:"i"`
	Start       string  `json:"start"`
	Offset      int     `json:"offset"`
	Sensitivity float64 `json:"sensitivity"`
}

type Sensitivities struct {
	First         int           `json:"first"`
	Units         string        `json:"units"`
	Sensitivities []Sensitivity `json:"sensitivities"`
}

func (p *Pump) InsulinSensitivities() (*Sensitivities, error) {
	body, err := p.Execute(cmdSensitivities)
	if err != nil {
		return nil, err
	}
	return decodeSensitivities(body)
}

func decodeSensitivities(body []byte) (*Sensitivities, error) {
	entries, err := schedule(cmdSensitivities, body, 2, 2, func(e []byte) int { return int(e[0] & 0x3F) })
	if err != nil {
		return nil, err
	}
	s := &Sensitivities{First: int(body[1]), Units: glucoseUnits(body[1]), Sensitivities: []Sensitivity{}}
	for x, e := range entries {
		start := int(e[0] & 0x3F)
		v := int(e[0]&0x40)<<2 | int(e[1])
		s.Sensitivities = append(s.Sensitivities, Sensitivity{X: x, I: start, Start: clockOf(start), Offset: start * 30,
			Sensitivity: glucose(v, body[1])})
	}
	return s, nil
}

// CarbRatio is one entry of `mdt carbratios`.
type CarbRatio struct {
	X      int     `json:"x"`
	I      int     `json:"i"`
	Start  string  `json:"start"`
	Offset int     `json:"offset"`
	Ratio  float64 `json:"ratio"`
}

type CarbRatios struct {
	First    int         `json:"first"`
	Units    string      `json:"units"`
	Schedule []CarbRatio `json:"schedule"`
}

func (p *Pump) CarbRatios() (*CarbRatios, error) {
	family, err := p.Family()
	if err != nil {
		return nil, err
	}
	body, err := p.Execute(cmdCarbRatios)
	if err != nil {
		return nil, err
	}
	return decodeCarbRatios(body, family)
}

func decodeCarbRatios(body []byte, family int) (*CarbRatios, error) {
	from, es := 2, 2
	if family >= 23 {
		from, es = 3, 3
	}
	var entries [][]byte
	var err error
	if family >= 23 {
		// x23: 3-byte entries read from byte 3, within the n bytes that byte 0 announces
		if len(body) < 2 || 1+int(body[0]) > len(body) || (int(body[0])-1)%es != 0 {
			return nil, badResponse(cmdCarbRatios, body)
		}
		for i := from; i+es <= from+int(body[0])-1 && i+es <= len(body); i += es {
			if len(entries) > 0 && body[i] == 0 {
				break
			}
			entries = append(entries, body[i:i+es])
		}
	} else if entries, err = schedule(cmdCarbRatios, body, from, es, func(e []byte) int { return int(e[0]) }); err != nil {
		return nil, err
	}
	c := &CarbRatios{First: int(body[1]), Units: "grams", Schedule: []CarbRatio{}}
	if body[1] == 2 {
		c.Units = "exchanges"
	}
	for x, e := range entries {
		var r float64
		switch {
		case es == 2 && body[1] == 2:
			r = float64(e[1]) / 10
		case es == 2:
			r = float64(e[1])
		case body[1] == 2:
			r = float64(int(e[1])<<8|int(e[2])) / 1000
		default:
			r = float64(int(e[1])<<8|int(e[2])) / 10
		}
		c.Schedule = append(c.Schedule, CarbRatio{X: x, I: int(e[0]), Start: clockOf(int(e[0])), Offset: int(e[0]) * 30, Ratio: r})
	}
	return c, nil
}

// BasalRate is one entry of `mdt basal`.
type BasalRate struct {
	I       int     `json:"i"`
	Start   string  `json:"start"`
	Minutes int     `json:"minutes"`
	Rate    float64 `json:"rate"`
}

// BasalRates (92) is read as an extended response (P3, §4.3); nil for an empty schedule (printed null).
func (p *Pump) BasalRates() ([]BasalRate, error) {
	data, err := p.extendedResponse(cmdBasalRates)
	if err != nil {
		return nil, err
	}
	return decodeBasalRates(data), nil
}

func decodeBasalRates(data []byte) []BasalRate {
	var out []BasalRate
	for i := 0; i+3 <= len(data); i += 3 {
		rate, start := int(data[i])|int(data[i+1])<<8, int(data[i+2])
		if i > 0 && rate == 0 && start == 0 {
			break
		}
		out = append(out, BasalRate{I: len(out), Start: clockOf(start), Minutes: start * 30, Rate: units(rate * 25)})
	}
	return out
}

// extendedResponse: fragments of 65 bytes (sequence number, 80 on the last, + 64 data bytes), each ACKed
// (one try) to get the next.
func (p *Pump) extendedResponse(cmd Command) ([]byte, error) {
	body, err := p.Execute(cmd)
	var data []byte
	for expected := 1; ; expected++ {
		if err != nil {
			return nil, err
		}
		if len(body) != responseBody {
			return nil, fmt.Errorf("%v: received %d-byte response", cmd, len(body))
		}
		if seq := int(body[0] & 0x7F); seq != expected {
			return nil, fmt.Errorf("%v: received response %d instead of %d", cmd, seq, expected)
		}
		data = append(data, body[1:]...)
		if body[0]&0x80 != 0 {
			return data, nil
		}
		var pkt []byte
		pkt, err = p.perform(cmd, shortPacket(p.addr, ack), pumpTimeoutMs, 1, cmd)
		if err == nil {
			body = pkt[5:]
		}
	}
}
