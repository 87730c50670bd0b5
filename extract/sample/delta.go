package sample

import (
	"fmt"
	"time"
)

// WriteDelta writes path, an orders CSV holding the change set a day after
// o's data ends: about fraction/2 of the existing order lines again with a
// changed status and newer updated_at, and as many brand-new lines (new order
// numbers, ordered on the day after End). Lines are chosen by hash while the
// same stream is regenerated, so the delta matches the full files written with
// the same options. It is what an incremental benchmark extracts.
func WriteDelta(path string, o Options, fraction float64) (changed, added int, err error) {
	if fraction <= 0 || fraction >= 1 {
		return 0, 0, fmt.Errorf("delta fraction %v is not between 0 and 1", fraction)
	}
	o = o.withDefaults()
	w, err := newCSV(path, orderHeader)
	if err != nil {
		return 0, 0, err
	}
	d := &deltaSink{w: &csvSink{orders: w}, o: o, fraction: fraction}
	_, err = Generate(o, d)
	if cerr := w.Close(); err == nil {
		err = cerr
	}
	return d.changed, d.added, err
}

// deltaSink keeps the order lines picked for the change set and drops the rest.
type deltaSink struct {
	w              *csvSink
	o              Options
	fraction       float64
	changed, added int
	seen           map[[2]int64]bool // lines already changed (updates repeat a key)
}

// newOrderOffset moves new orders' numbers clear of every generated one.
const newOrderOffset = 1_000_000_000

func (d *deltaSink) Order(l *OrderLine) error {
	h := unitHash(d.o.Seed^0xde17a, uint64(l.OrderNo), uint64(l.Line))
	if h >= d.fraction {
		return nil
	}
	next := d.o.End.Add(24 * time.Hour)
	c := *l
	if h < d.fraction/2 {
		if d.seen == nil {
			d.seen = map[[2]int64]bool{}
		}
		key := [2]int64{l.OrderNo, int64(l.Line)}
		if d.seen[key] {
			return nil
		}
		d.seen[key] = true
		c.Status = "returned"
		c.UpdatedAt = next.Add(time.Hour)
		d.changed++
	} else {
		c.OrderNo += newOrderOffset
		c.OrderedAt = next.Add(time.Duration(8*3600+int(h*1e9)%36000) * time.Second)
		c.UpdatedAt = c.OrderedAt
		c.Status = "completed"
		d.added++
	}
	return d.w.Order(&c)
}

func (d *deltaSink) Ticket(*Ticket) error   { return nil }
func (d *deltaSink) Contact(*Contact) error { return nil }
func (d *deltaSink) Signup(*Signup) error   { return nil }
