package postgres

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5/pgtype"
)

// pgoutput sends column values in text, the output functions' form (binary
// mode would differ from it for the columns the split reader reads as text:
// uuid, json, intervals, enums…). The binders (decode.go) take what a binary
// read returns for every other column, so those values are turned into it
// here: by hand for the common scalar types, through pgx's codecs (text in,
// binary out) for the rest. Text columns pass through unchanged.

// toWire converts one text value; buf may be reused for the result.
type toWire func(text, buf []byte) ([]byte, error)

// wireFor returns the conversion a plan column's values need, nil for none.
func wireFor(spec colSpec, f field, m *pgtype.Map) toWire {
	if spec.format() == pgtype.TextFormatCode {
		return nil
	}
	switch f.OID {
	case pgtype.BoolOID:
		return func(t, buf []byte) ([]byte, error) {
			switch string(t) {
			case "t":
				return append(buf[:0], 1), nil
			case "f":
				return append(buf[:0], 0), nil
			}
			return nil, fmt.Errorf("unexpected boolean %q", t)
		}
	case pgtype.Int2OID, pgtype.Int4OID, pgtype.Int8OID, pgtype.OIDOID:
		return func(t, buf []byte) ([]byte, error) {
			n, err := strconv.ParseInt(string(t), 10, 64)
			if err != nil {
				return nil, fmt.Errorf("unexpected integer %q", t)
			}
			return binary.BigEndian.AppendUint64(buf[:0], uint64(n)), nil
		}
	case pgtype.Float4OID:
		return func(t, buf []byte) ([]byte, error) {
			x, err := strconv.ParseFloat(string(t), 32)
			if err != nil {
				return nil, fmt.Errorf("unexpected real %q", t)
			}
			return binary.BigEndian.AppendUint32(buf[:0], math.Float32bits(float32(x))), nil
		}
	case pgtype.Float8OID:
		return func(t, buf []byte) ([]byte, error) {
			x, err := strconv.ParseFloat(string(t), 64)
			if err != nil {
				return nil, fmt.Errorf("unexpected double precision %q", t)
			}
			return binary.BigEndian.AppendUint64(buf[:0], math.Float64bits(x)), nil
		}
	case pgtype.ByteaOID:
		return func(t, buf []byte) ([]byte, error) {
			if len(t) < 2 || t[0] != '\\' || t[1] != 'x' {
				return nil, fmt.Errorf("bytea not in hex output (bytea_output = hex)")
			}
			out := make([]byte, hex.DecodedLen(len(t)-2))
			if _, err := hex.Decode(out, t[2:]); err != nil {
				return nil, fmt.Errorf("bytea: %w", err)
			}
			return out, nil
		}
	case pgtype.TimestamptzOID, pgtype.TimestampOID:
		slow := scanned(m, f.OID, func() any { return new(pgtype.Timestamptz) })
		if f.OID == pgtype.TimestampOID {
			slow = scanned(m, f.OID, func() any { return new(pgtype.Timestamp) })
		}
		tz := f.OID == pgtype.TimestamptzOID
		return func(t, buf []byte) ([]byte, error) {
			if us, ok := isoMicros(t, tz); ok {
				return binary.BigEndian.AppendUint64(buf[:0], uint64(us-pgEpochMicros)), nil
			}
			return slow(t, buf)
		}
	case pgtype.NumericOID:
		slow := generic(m, f)
		return func(t, buf []byte) ([]byte, error) {
			if b, ok := numericWire(t, buf); ok {
				return b, nil
			}
			return slow(t, buf) // NaN, ±Infinity
		}
	case pgtype.DateOID:
		return scanned(m, f.OID, func() any { return new(pgtype.Date) })
	case pgtype.TimeOID:
		return scanned(m, f.OID, func() any { return new(pgtype.Time) })
	}
	return generic(m, f) // arrays
}

// generic converts through the codec's own value.
func generic(m *pgtype.Map, f field) toWire {
	return func(t, buf []byte) ([]byte, error) {
		dt, ok := m.TypeForOID(f.OID)
		if !ok {
			return nil, fmt.Errorf("no codec for type %s", f.Type)
		}
		v, err := dt.Codec.DecodeValue(m, f.OID, pgtype.TextFormatCode, t)
		if err != nil {
			return nil, err
		}
		return m.Encode(f.OID, pgtype.BinaryFormatCode, v, buf[:0])
	}
}

// scanned converts through a pgtype value that keeps infinities.
func scanned(m *pgtype.Map, oid uint32, newValue func() any) toWire {
	return func(t, buf []byte) ([]byte, error) {
		v := newValue()
		if err := m.Scan(oid, pgtype.TextFormatCode, t, v); err != nil {
			return nil, err
		}
		return m.Encode(oid, pgtype.BinaryFormatCode, v, buf[:0])
	}
}

// isoMicros parses PostgreSQL's ISO output of a timestamp in UTC
// ("2024-05-01 12:30:00.25", with "+00" when tz) to microseconds since 1970;
// ok is false for anything else (BC years, infinities, other offsets).
func isoMicros(t []byte, tz bool) (int64, bool) {
	if tz {
		if len(t) < 22 || string(t[len(t)-3:]) != "+00" {
			return 0, false
		}
		t = t[:len(t)-3]
	}
	if len(t) < 19 || t[4] != '-' || t[7] != '-' || t[10] != ' ' || t[13] != ':' || t[16] != ':' {
		return 0, false
	}
	num := func(b []byte) (int, bool) {
		n := 0
		for _, c := range b {
			if c < '0' || c > '9' {
				return 0, false
			}
			n = n*10 + int(c-'0')
		}
		return n, true
	}
	y, ok1 := num(t[0:4])
	mo, ok2 := num(t[5:7])
	d, ok3 := num(t[8:10])
	h, ok4 := num(t[11:13])
	mi, ok5 := num(t[14:16])
	s, ok6 := num(t[17:19])
	if !(ok1 && ok2 && ok3 && ok4 && ok5 && ok6) {
		return 0, false
	}
	us := 0
	if frac := t[19:]; len(frac) > 0 {
		if frac[0] != '.' || len(frac) > 7 || len(frac) < 2 {
			return 0, false
		}
		n, ok := num(frac[1:])
		if !ok {
			return 0, false
		}
		for i := len(frac) - 1; i < 6; i++ {
			n *= 10
		}
		us = n
	}
	return time.Date(y, time.Month(mo), d, h, mi, s, us*1000, time.UTC).UnixMicro(), true
}

// numericWire encodes numeric output text ("-12.50") in numeric's binary
// form: base-10000 digits with a weight, a sign and the display scale.
// ok is false for anything but plain decimal digits (NaN, infinities).
func numericWire(t, buf []byte) ([]byte, bool) {
	neg := len(t) > 0 && t[0] == '-'
	if neg {
		t = t[1:]
	}
	intPart, frac := t, []byte(nil)
	for i, c := range t {
		if c == '.' {
			intPart, frac = t[:i], t[i+1:]
			break
		}
	}
	if len(intPart) == 0 {
		return nil, false
	}
	for _, c := range intPart {
		if c < '0' || c > '9' {
			return nil, false
		}
	}
	for _, c := range frac {
		if c < '0' || c > '9' {
			return nil, false
		}
	}
	// Groups of four digits around the point.
	lead := (4 - len(intPart)%4) % 4
	nInt := (len(intPart) + lead) / 4
	nFrac := (len(frac) + 3) / 4
	digits := make([]int16, 0, nInt+nFrac)
	group := func(i int) int16 { // i-th digit of the padded digit string
		var d int16
		for k := range 4 {
			j := i*4 + k - lead
			var c byte = '0'
			switch {
			case j < 0:
			case j < len(intPart):
				c = intPart[j]
			case j-len(intPart) < len(frac):
				c = frac[j-len(intPart)]
			}
			d = d*10 + int16(c-'0')
		}
		return d
	}
	for i := range nInt + nFrac {
		digits = append(digits, group(i))
	}
	weight := nInt - 1
	for len(digits) > 0 && digits[0] == 0 {
		digits = digits[1:]
		weight--
	}
	for len(digits) > 0 && digits[len(digits)-1] == 0 {
		digits = digits[:len(digits)-1]
	}
	sign := uint16(0)
	if neg && len(digits) > 0 {
		sign = 0x4000
	}
	if len(digits) == 0 {
		weight = 0
	}
	b := buf[:0]
	b = binary.BigEndian.AppendUint16(b, uint16(len(digits)))
	b = binary.BigEndian.AppendUint16(b, uint16(int16(weight)))
	b = binary.BigEndian.AppendUint16(b, sign)
	b = binary.BigEndian.AppendUint16(b, uint16(len(frac)))
	for _, d := range digits {
		b = binary.BigEndian.AppendUint16(b, uint16(d))
	}
	return b, true
}
