package medtronic

import (
	"bytes"
	"errors"
	"fmt"
	"log"
	"time"
)

// History records are printed in ecc1's own JSON (not openaps): Type, Time, Data (the raw record bytes,
// base64, which oref0's openaps.jq turns into the record id) and, for some types, Info.
type HistoryRecord struct {
	Type string      `json:"Type"`
	Time time.Time   `json:"Time"`
	Data []byte      `json:"Data"`
	Info interface{} `json:"Info,omitempty"`
}

type tempBasalInfo struct {
	Type  string  `json:"Type"`
	Value float64 `json:"Value"`
}

type bolusInfo struct {
	Programmed float64 `json:"Programmed"`
	Amount     float64 `json:"Amount"`
	Unabsorbed float64 `json:"Unabsorbed"`
	Duration   string  `json:"Duration"`
}

const (
	recBolus             = 0x01
	recTempBasalDuration = 0x16
	recSuspend           = 0x1E
	recResume            = 0x1F
	recTempBasalRate     = 0x33
	pageSize             = 1024
	pageData             = 1022
)

// pumpTime decodes a 5-byte timestamp: second|month(3-2), minute|month(1-0), hour, day, year-2000 (§4.6.11).
func pumpTime(b []byte) time.Time {
	month := time.Month(int(b[0]>>6)<<2 | int(b[1]>>6))
	return time.Date(2000+int(b[4]&0x7F), month, int(b[3]&0x1F), int(b[2]&0x1F), int(b[1]&0x3F), int(b[0]&0x3F), 0, time.Local)
}

func recordLength(t byte, family int) int {
	switch t {
	case recBolus:
		if family <= 22 {
			return 9
		}
		return 13
	case recTempBasalDuration, recSuspend, recResume:
		return 7
	case recTempBasalRate:
		return 8
	}
	return 0
}

func decodeRecord(rec []byte, family int) HistoryRecord {
	r := HistoryRecord{Data: rec}
	switch rec[0] {
	case recTempBasalRate:
		r.Type, r.Time = "TempBasalRate", pumpTime(rec[2:7])
		if rec[7]>>3 == 1 {
			r.Info = tempBasalInfo{"Percent", float64(rec[1])}
		} else {
			r.Info = tempBasalInfo{"Absolute", units((int(rec[7]&7)<<8 | int(rec[1])) * 25)}
		}
	case recTempBasalDuration:
		r.Type, r.Time = "TempBasalDuration", pumpTime(rec[2:7])
		r.Info = (time.Duration(rec[1]) * 30 * time.Minute).String()
	case recBolus:
		var b bolusInfo
		var half byte
		if family <= 22 {
			b.Programmed, b.Amount, half = units(int(rec[1])*100), units(int(rec[2])*100), rec[3]
			r.Time = pumpTime(rec[4:9])
		} else {
			b.Programmed = units((int(rec[1])<<8 | int(rec[2])) * 25)
			b.Amount = units((int(rec[3])<<8 | int(rec[4])) * 25)
			b.Unabsorbed = units((int(rec[5])<<8 | int(rec[6])) * 25)
			half, r.Time = rec[7], pumpTime(rec[8:13])
		}
		b.Duration = (time.Duration(half) * 30 * time.Minute).String()
		r.Type, r.Info = "Bolus", b
	case recSuspend:
		r.Type, r.Time = "SuspendPump", pumpTime(rec[2:7])
	case recResume:
		r.Type, r.Time = "ResumePump", pumpTime(rec[2:7])
	}
	return r
}

// decodePage cuts a page's 1022 record bytes into records, oldest first; it stops where the rest is zeros.
func decodePage(data []byte, family int) ([]HistoryRecord, error) {
	var out []HistoryRecord
	for pos := 0; pos < len(data); {
		if allZero(data[pos:]) {
			break
		}
		n := recordLength(data[pos], family)
		if n == 0 {
			return out, fmt.Errorf("unknown record type %02X", data[pos])
		}
		if pos+n > len(data) {
			return out, fmt.Errorf("record type %02X runs past the end of the page", data[pos])
		}
		out = append(out, decodeRecord(append([]byte(nil), data[pos:pos+n]...), family))
		pos += n
	}
	return out, nil
}

func allZero(b []byte) bool {
	for _, x := range b {
		if x != 0 {
			return false
		}
	}
	return true
}

// LastHistoryPage (9D): the oldest page number, clamped to 35; x12 pumps refuse it (then 32).
func (p *Pump) LastHistoryPage() (int, error) {
	body, err := p.Execute(cmdLastHistoryPage)
	var nakErr InvalidCommandError
	if errors.As(err, &nakErr) && nakErr.Code == errCodeRefused {
		return x12LastPage, nil
	}
	if err != nil {
		return 0, err
	}
	if len(body) < 5 || body[0] != 4 {
		return 0, badResponse(cmdLastHistoryPage, body)
	}
	n := int(body[1])<<24 | int(body[2])<<16 | int(body[3])<<8 | int(body[4])
	if n > maxHistoryPage {
		n = maxHistoryPage
	}
	return n, nil
}

// fragmentAfter ACKs the last fragment; when the reply is lost, NAKs up to 10 times (§4.6.11).
func (p *Pump) fragmentAfter(expected int) ([]byte, error) {
	pkt, err := p.perform(cmdHistoryPage, shortPacket(p.addr, ack), pumpTimeoutMs, 1, cmdHistoryPage)
	if err == nil {
		return pkt[5:], nil
	}
	if !IsNoResponse(err) {
		return nil, err
	}
	for k := 1; k <= maxNAKs; k++ {
		p.Radio.SetError(nil)
		pkt, err = p.perform(cmdHistoryPage, shortPacket(p.addr, nak), pumpTimeoutMs, 1, cmdHistoryPage)
		if IsNoResponse(err) {
			continue
		}
		if err != nil {
			return nil, err
		}
		s := "s"
		if k == 1 {
			s = ""
		}
		log.Printf("received fragment %d after %d NAK%s", expected, k, s)
		return pkt[5:], nil
	}
	return nil, fmt.Errorf("lost fragment %d", expected)
}

func (p *Pump) readPage(page int) ([]byte, error) {
	body, err := p.execute2(cmdHistoryPage, byte(page))
	if err != nil {
		return nil, err
	}
	var data []byte
	for expected := 1; ; {
		if len(body) != responseBody {
			return nil, fmt.Errorf("history page %d: unexpected fragment length %d", page, len(body))
		}
		seq, done := int(body[0]&0x7F), body[0]&0x80 != 0
		if seq > expected {
			return nil, fmt.Errorf("history page %d: received fragment %d instead of %d", page, seq, expected)
		}
		if seq == expected {
			if done != (seq == fragmentsInPage) {
				return nil, fmt.Errorf("history page %d: unexpected done bit on fragment %d", page, seq)
			}
			data = append(data, body[1:]...)
			if done {
				break
			}
			expected++
		}
		if body, err = p.fragmentAfter(expected); err != nil {
			return nil, err
		}
	}
	if len(data) != pageSize {
		return nil, fmt.Errorf("history page %d: %d bytes instead of %d", page, len(data), pageSize)
	}
	computed, received := CRC16(data[:pageData]), uint16(data[pageData])<<8|uint16(data[pageData+1])
	if computed != received {
		return nil, fmt.Errorf("history page %d: computed CRC %04X but received %04X", page, computed, received)
	}
	return data[:pageData], nil
}

// HistoryPage reads one page, retrying the whole page up to 3 times.
func (p *Pump) HistoryPage(page int) ([]byte, error) {
	var err error
	for try := 0; try < pageTries; try++ {
		p.Radio.SetError(nil)
		var data []byte
		if data, err = p.readPage(page); err == nil {
			return data, nil
		}
		if _, ok := err.(InvalidCommandError); ok {
			return nil, err
		}
		if try < pageTries-1 {
			log.Print(err)
		}
	}
	return nil, err
}

// HistoryScan reads pages newest first and returns records newest first until stop says a record is
// beyond the wanted range (that record is not included; found reports it).
func (p *Pump) HistoryScan(stop func(HistoryRecord) bool) (records []HistoryRecord, found *HistoryRecord, err error) {
	last, err := p.LastHistoryPage()
	if err != nil {
		return nil, nil, err
	}
	family, err := p.Family()
	if err != nil {
		return nil, nil, err
	}
	p.SetRetries(historyRetries)
	for page := 0; page <= last; page++ {
		data, err := p.HistoryPage(page)
		if err != nil {
			return records, nil, err
		}
		recs, err := decodePage(data, family)
		if err != nil {
			return records, nil, err
		}
		for i := len(recs) - 1; i >= 0; i-- {
			if stop(recs[i]) {
				return records, &recs[i], nil
			}
			records = append(records, recs[i])
		}
	}
	return records, nil, nil
}

// SameRecord: the record's raw bytes are id.
func SameRecord(r HistoryRecord, id []byte) bool { return bytes.Equal(r.Data, id) }
