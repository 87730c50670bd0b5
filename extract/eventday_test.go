package extract

import (
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// TestSplitByDay cuts a record into one per UTC day of its timestamp column
// (before 1970 too), nulls in a day of their own, in order of first
// appearance, and passes a one-day record on as it is.
func TestSplitByDay(t *testing.T) {
	sc := arrow.NewSchema([]arrow.Field{
		{Name: "id", Type: arrow.PrimitiveTypes.Int64},
		{Name: "ts", Type: Timestamp.Arrow(), Nullable: true},
	}, nil)
	build := func(ts []string) arrow.RecordBatch {
		b := array.NewRecordBuilder(memory.DefaultAllocator, sc)
		defer b.Release()
		for i, s := range ts {
			b.Field(0).(*array.Int64Builder).Append(int64(i))
			if s == "" {
				b.Field(1).AppendNull()
				continue
			}
			v, err := time.Parse(time.RFC3339, s)
			if err != nil {
				t.Fatal(err)
			}
			b.Field(1).(*array.TimestampBuilder).Append(arrow.Timestamp(v.UnixMicro()))
		}
		return b.NewRecordBatch()
	}
	rec := build([]string{"2011-01-02T23:59:59Z", "1969-12-31T23:00:00Z", "", "2011-01-02T00:00:00Z", "2011-01-03T00:00:00Z", "1969-12-31T00:00:00Z"})
	defer rec.Release()
	parts, err := splitByDay(rec, 1)
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		day string
		ids []int64
	}{{"2011-01-02", []int64{0, 3}}, {"1969-12-31", []int64{1, 5}}, {NullDay, []int64{2}}, {"2011-01-03", []int64{4}}}
	if len(parts) != len(want) {
		t.Fatalf("%d parts, want %d", len(parts), len(want))
	}
	for i, p := range parts {
		ids := p.rec.Column(0).(*array.Int64).Int64Values()
		if p.day != want[i].day || len(ids) != len(want[i].ids) || ids[0] != want[i].ids[0] || ids[len(ids)-1] != want[i].ids[len(ids)-1] {
			t.Errorf("part %d: %s %v, want %s %v", i, p.day, ids, want[i].day, want[i].ids)
		}
		p.rec.Release()
	}
	one := build([]string{"2011-01-02T01:00:00Z", "2011-01-02T02:00:00Z"})
	defer one.Release()
	parts, err = splitByDay(one, 1)
	if err != nil {
		t.Fatal(err)
	}
	if len(parts) != 1 || parts[0].rec != one || parts[0].day != "2011-01-02" {
		t.Fatalf("a one-day record was copied or misnamed: %v", parts)
	}
	parts[0].rec.Release()
}
