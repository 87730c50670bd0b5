package extract

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/compute"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// NullDay is the dt= directory of rows whose event time is null (Hive's and
// Spark's name for a null partition value).
const NullDay = "__HIVE_DEFAULT_PARTITION__"

// maxOpenDays bounds the raw files a batch keeps open when it writes by
// event day: each holds up to a row group in memory. A batch reaching into
// one more day finishes the file written to longest ago (its day gets a
// second file in the same commit). Reads in cursor order touch a few days
// at a time, so this rarely splits a day.
const maxOpenDays = 8

// writeRows appends rec to the batch's open raw files: all to one when
// event days are off, else each row to the file of its event day.
func (b *batch) writeRows(rec arrow.RecordBatch) error {
	for _, f := range b.data {
		if !rec.Schema().Equal(f.schema) {
			// The source schema changed between checkpoints (a column
			// added mid-stream): the rows so far end their files, which
			// the next checkpoint commits with the new ones. Until then
			// they are orphans a crash leaves for the next run to remove.
			if err := b.finishOpen(); err != nil {
				return err
			}
			break
		}
	}
	col := -1
	if b.x.EventDays && b.ent.Event != "" {
		col = eventColumn(rec.Schema(), b.ent.Event)
	}
	if col < 0 {
		return b.writeDay("", rec)
	}
	parts, err := splitByDay(rec, col)
	if err != nil {
		return fmt.Errorf("splitting rows by event day (%s): %w", b.ent.Event, err)
	}
	for i, p := range parts {
		err := b.writeDay(p.day, p.rec)
		p.rec.Release()
		if err != nil {
			for _, q := range parts[i+1:] {
				q.rec.Release()
			}
			return err
		}
	}
	return nil
}

// writeDay writes rec to the open file of day, creating it (and finishing
// the least recently written one when maxOpenDays are open).
func (b *batch) writeDay(day string, rec arrow.RecordBatch) error {
	f := b.data[day]
	if f == nil {
		if len(b.data) >= maxOpenDays {
			if err := b.finishDay(b.oldestDay()); err != nil {
				return err
			}
		}
		// The rows' own schema: a source may shape each file of a read
		// differently (a files raw table infers types per file), and the
		// reader may already be on the next file.
		var err error
		if f, err = CreateParquet(b.x.rawPath("raw", b.st, day, ".parquet"), rec.Schema()); err != nil {
			return err
		}
		if b.data == nil {
			b.data, b.lastWrite = map[string]*ParquetFile{}, map[string]int64{}
		}
		b.data[day] = f
	}
	b.writes++
	b.lastWrite[day] = b.writes
	return f.Write(rec)
}

func (b *batch) oldestDay() string {
	oldest, at := "", int64(-1)
	for d, w := range b.lastWrite {
		if at < 0 || w < at {
			oldest, at = d, w
		}
	}
	return oldest
}

// finishDay makes day's open file durable; the next commit lists it.
func (b *batch) finishDay(day string) error {
	f := b.data[day]
	delete(b.data, day)
	delete(b.lastWrite, day)
	if err := f.Finish(); err != nil {
		return err
	}
	b.finished = append(b.finished, f)
	return nil
}

// finishOpen finishes every open file, in day order.
func (b *batch) finishOpen() error {
	days := make([]string, 0, len(b.data))
	for d := range b.data {
		days = append(days, d)
	}
	sort.Strings(days)
	for _, d := range days {
		if err := b.finishDay(d); err != nil {
			return err
		}
	}
	return nil
}

// eventColumn is the index of the timestamp column name in sc, or -1.
func eventColumn(sc *arrow.Schema, name string) int {
	idx := sc.FieldIndices(name)
	if len(idx) != 1 {
		return -1
	}
	if _, ok := sc.Field(idx[0]).Type.(*arrow.TimestampType); !ok {
		return -1
	}
	return idx[0]
}

// dayRows are the rows of one event day.
type dayRows struct {
	day string // 2006-01-02, or NullDay
	rec arrow.RecordBatch
}

// splitByDay cuts rec into one record per UTC day of its timestamp column
// col, in order of first appearance; the caller releases them. A record of
// one day is passed on as it is; otherwise each day's rows are copied
// (compute.Take), so a day's file never holds on to the whole chunk.
func splitByDay(rec arrow.RecordBatch, col int) ([]dayRows, error) {
	ts := rec.Column(col).(*array.Timestamp)
	unit := ts.DataType().(*arrow.TimestampType).Unit
	perDay := int64(86400) * int64(time.Second/unit.Multiplier())
	key := func(i int) int64 {
		if ts.IsNull(i) {
			return 1<<63 - 1
		}
		v := int64(ts.Value(i))
		d := v / perDay
		if v%perDay < 0 {
			d--
		}
		return d
	}
	n := int(rec.NumRows())
	first := key(0)
	same := true
	for i := 1; i < n && same; i++ {
		same = key(i) == first
	}
	if same {
		rec.Retain()
		return []dayRows{{day: dayName(first), rec: rec}}, nil
	}
	var order []int64
	rows := map[int64][]int64{}
	for i := 0; i < n; i++ {
		k := key(i)
		if _, ok := rows[k]; !ok {
			order = append(order, k)
		}
		rows[k] = append(rows[k], int64(i))
	}
	out := make([]dayRows, 0, len(order))
	release := func() {
		for _, p := range out {
			p.rec.Release()
		}
	}
	values := compute.NewDatum(rec) // retains rec
	defer values.Release()
	for _, k := range order {
		idx := array.NewInt64Builder(memory.DefaultAllocator)
		idx.AppendValues(rows[k], nil)
		ia := idx.NewArray()
		idx.Release()
		indices := compute.NewDatum(ia)
		ia.Release()
		d, err := compute.Take(context.Background(), *compute.DefaultTakeOptions(), values, indices)
		indices.Release()
		if err != nil {
			release()
			return nil, err
		}
		out = append(out, dayRows{day: dayName(k), rec: d.(*compute.RecordDatum).Value})
	}
	return out, nil
}

func dayName(d int64) string {
	if d == 1<<63-1 {
		return NullDay
	}
	return time.Unix(d*86400, 0).UTC().Format("2006-01-02")
}
