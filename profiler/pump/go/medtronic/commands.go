package medtronic

import (
	"fmt"
	"time"
)

// Insulin amounts are milliunits; the openaps format prints them in units (135000 → 135, 135500 → 135.5).
func units(mu int) float64 { return float64(mu) / 1000 }

// Reservoir (73): x22 and older `02 HH LL` in 100 mU strokes, x23 and newer `04 ?? ?? HH LL` in 25 mU (§4.6.2).
func (p *Pump) Reservoir() (float64, error) {
	body, err := p.Execute(cmdReservoir)
	if err != nil {
		return 0, err
	}
	family, err := p.Family() // after a wake-up the model is asked after the 73 exchange (§5.3)
	if err != nil {
		return 0, err
	}
	return decodeReservoir(body, family)
}

func decodeReservoir(body []byte, family int) (float64, error) {
	if family <= 22 {
		if len(body) < 3 || body[0] != 2 {
			return 0, badResponse(cmdReservoir, body)
		}
		return units((int(body[1])<<8 | int(body[2])) * 100), nil
	}
	if len(body) < 5 || body[0] != 4 {
		return 0, badResponse(cmdReservoir, body)
	}
	return units((int(body[3])<<8 | int(body[4])) * 25), nil
}

// StatusInfo is `mdt status` (§4.6.3).
type StatusInfo struct {
	Status    string `json:"status"`
	Bolusing  bool   `json:"bolusing"`
	Suspended bool   `json:"suspended"`
}

func (p *Pump) Status() (*StatusInfo, error) {
	body, err := p.Execute(cmdStatus)
	if err != nil {
		return nil, err
	}
	return decodeStatus(body)
}

func decodeStatus(body []byte) (*StatusInfo, error) {
	if len(body) < 4 || body[0] != 3 {
		return nil, badResponse(cmdStatus, body)
	}
	s := &StatusInfo{Status: "normal", Bolusing: body[2] == 1, Suspended: body[3] == 1}
	if body[1] != 3 {
		s.Status = "error"
	}
	return s, nil
}

// Clock (70): `07 hh mm ss YYYY MM DD`, the pump's local time (§4.6.4).
func (p *Pump) Clock() (time.Time, error) {
	body, err := p.Execute(cmdClock)
	if err != nil {
		return time.Time{}, err
	}
	return decodeClock(body)
}

func decodeClock(body []byte) (time.Time, error) {
	if len(body) < 8 || body[0] != 7 {
		return time.Time{}, badResponse(cmdClock, body)
	}
	return time.Date(int(body[4])<<8|int(body[5]), time.Month(body[6]), int(body[7]),
		int(body[1]), int(body[2]), int(body[3]), 0, time.Local), nil
}

// BatteryInfo is `mdt battery` (§4.6.5).
type BatteryInfo struct {
	Voltage float64 `json:"voltage"`
	Status  string  `json:"status"`
}

func (p *Pump) Battery() (*BatteryInfo, error) {
	body, err := p.Execute(cmdBattery)
	if err != nil {
		return nil, err
	}
	return decodeBattery(body)
}

func decodeBattery(body []byte) (*BatteryInfo, error) {
	if len(body) < 4 || body[0] != 3 {
		return nil, badResponse(cmdBattery, body)
	}
	b := &BatteryInfo{Voltage: float64((int(body[2])<<8|int(body[3]))*10) / 1000, Status: "normal"}
	if body[1] != 0 {
		b.Status = "low"
	}
	return b, nil
}

// TempBasalInfo is `mdt tempbasal` (§4.6.6); Rate is U/h, or the percent.
type TempBasalInfo struct {
	Duration int     `json:"duration"`
	Temp     string  `json:"temp"`
	Rate     float64 `json:"rate"`
}

func (p *Pump) TempBasal() (*TempBasalInfo, error) {
	body, err := p.Execute(cmdTempBasal)
	if err != nil {
		return nil, err
	}
	return decodeTempBasal(body)
}

func decodeTempBasal(body []byte) (*TempBasalInfo, error) {
	if len(body) < 7 || body[0] != 6 {
		return nil, badResponse(cmdTempBasal, body)
	}
	t := &TempBasalInfo{Duration: int(body[5])<<8 | int(body[6]), Temp: "absolute"}
	if body[1] == 1 {
		t.Temp, t.Rate = "percent", float64(body[2])
	} else {
		t.Rate = units((int(body[3])<<8 | int(body[4])) * 25)
	}
	return t, nil
}

const maxBasalMU = 34000

// insulin rounds milliunits down to the pump's resolution (§4.6.7, §4.6.8).
func roundInsulin(mu, family int) int {
	switch {
	case family <= 22:
		return mu - mu%50
	case mu < 1000:
		return mu - mu%25
	case mu < 10000:
		return mu - mu%50
	}
	return mu - mu%100
}

// SetAbsoluteTempBasal (4C): rate in milliunits/h, duration a multiple of 30 minutes.
func (p *Pump) SetAbsoluteTempBasal(duration time.Duration, mu int) error {
	hh, err := halfHours(duration)
	if err != nil {
		return err
	}
	if mu < 0 || mu > maxBasalMU {
		return fmt.Errorf("rate (%d) is out of range", mu)
	}
	family, err := p.Family()
	if err != nil {
		return err
	}
	_, err = p.execute2(cmdSetAbsoluteTemp, append(rateParams(mu, family), hh)...)
	return err
}

// rateParams: milliunits/h rounded down to the family's resolution, in 25 mU strokes, 2 bytes.
func rateParams(mu, family int) []byte {
	strokes := roundInsulin(mu, family) / 25
	return []byte{byte(strokes >> 8), byte(strokes)}
}

// SetPercentTempBasal (69).
func (p *Pump) SetPercentTempBasal(duration time.Duration, percent int) error {
	hh, err := halfHours(duration)
	if err != nil {
		return err
	}
	if percent < 0 || percent > 100 {
		return fmt.Errorf("percent (%d) is out of range", percent)
	}
	_, err = p.execute2(cmdSetPercentTemp, byte(percent), hh)
	return err
}

// CheckTempBasalDuration: a multiple of 30 minutes up to 24 hours (checked before any traffic).
func CheckTempBasalDuration(d time.Duration) error {
	_, err := halfHours(d)
	return err
}

func halfHours(d time.Duration) (byte, error) {
	if d%(30*time.Minute) != 0 || d < 0 || d > 24*time.Hour {
		return 0, fmt.Errorf("temporary basal duration %v is not a multiple of 30 minutes up to 24 hours", d)
	}
	return byte(d / (30 * time.Minute)), nil
}

// Bolus (42): x22 and older one byte in 0.1 U, x23 and newer two bytes in 25 mU (§4.6.8).
func (p *Pump) Bolus(mu int) error {
	if mu < 0 || mu > maxBasalMU {
		return fmt.Errorf("bolus amount (%d) is out of range", mu)
	}
	family, err := p.Family()
	if err != nil {
		return err
	}
	_, err = p.execute2(cmdBolus, bolusParams(mu, family)...)
	return err
}

func bolusParams(mu, family int) []byte {
	if family <= 22 {
		return []byte{byte(mu / 100)}
	}
	return rateParams(mu, family)
}

// Button (5B): one two-step exchange per key.
func (p *Pump) Button(key byte) error {
	_, err := p.execute2(cmdButton, key)
	return err
}

// Suspend (4D 01) or resume (4D 00).
func (p *Pump) Suspend(suspend bool) error {
	param := byte(0)
	if suspend {
		param = 1
	}
	_, err := p.execute2(cmdSuspend, param)
	return err
}

// SetClock (40): `hh mm ss YYYY MM DD`.
func (p *Pump) SetClock(t time.Time) error {
	_, err := p.execute2(cmdSetClock, byte(t.Hour()), byte(t.Minute()), byte(t.Second()),
		byte(t.Year()>>8), byte(t.Year()), byte(t.Month()), byte(t.Day()))
	return err
}

// PumpID (71) and firmware version (74): `NN` + NN ASCII characters.
func (p *Pump) PumpID() (string, error) {
	body, err := p.Execute(cmdPumpID)
	if err != nil {
		return "", err
	}
	return counted(body), nil
}

func (p *Pump) FirmwareVersion() (string, error) {
	body, err := p.Execute(cmdFirmware)
	if err != nil {
		return "", err
	}
	s := []byte(counted(body))
	for len(s) > 0 && (s[len(s)-1] == ' ' || s[len(s)-1] == 0x0B) {
		s = s[:len(s)-1]
	}
	return string(s), nil
}

func counted(body []byte) string {
	if len(body) == 0 {
		return ""
	}
	n := int(body[0])
	if n > len(body)-1 {
		n = len(body) - 1
	}
	return string(body[1 : 1+n])
}
