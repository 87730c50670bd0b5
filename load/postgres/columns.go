package postgres

import (
	"context"
	"database/sql"
	"fmt"
	"math/big"
	"regexp"
	"strings"
	"time"

	"github.com/duckdb/duckdb-go/v2"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/cdwhq/cdw/internal/duck"
)

// column is one mart column: how DuckDB gives it and how PostgreSQL stores it.
type column struct {
	name string
	duck string                   // DuckDB type, as information_schema shows it
	pg   string                   // PostgreSQL type in CREATE TABLE
	expr string                   // DuckDB expression selecting it
	toPG func(v any) (any, error) // converts the scanned Go value for pgx; nil: as is
}

var decimalType = regexp.MustCompile(`^DECIMAL\((\d+),\s*(\d+)\)$`)

// martColumns reads a mart's columns from the warehouse and maps their types.
func martColumns(ctx context.Context, db *sql.DB, mart string) ([]column, error) {
	rows, err := db.QueryContext(ctx, `SELECT column_name, data_type FROM information_schema.columns
		WHERE table_catalog = current_database() AND table_schema = 'main' AND table_name = ?
		ORDER BY ordinal_position`, mart)
	if err != nil {
		return nil, fmt.Errorf("reading columns of mart %s: %w", mart, err)
	}
	defer rows.Close()
	var cols []column
	for rows.Next() {
		var c column
		if err := rows.Scan(&c.name, &c.duck); err != nil {
			return nil, fmt.Errorf("reading columns of mart %s: %w", mart, err)
		}
		mapColumn(&c)
		cols = append(cols, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reading columns of mart %s: %w", mart, err)
	}
	if len(cols) == 0 {
		return nil, fmt.Errorf("mart %s: no such table or view in the warehouse", mart)
	}
	return cols, nil
}

// mapColumn picks the PostgreSQL type and the conversion for a DuckDB type.
// Nested types (lists, structs, maps) become jsonb; types PostgreSQL has no
// match for (ENUM, BIT, …) are sent as their text form.
func mapColumn(c *column) {
	q := duck.Ident(c.name)
	c.expr = q
	t := strings.ToUpper(c.duck)
	switch t {
	case "VARCHAR":
		c.pg = "text"
	case "BOOLEAN":
		c.pg = "boolean"
	case "TINYINT", "SMALLINT", "UTINYINT":
		c.pg = "smallint"
	case "INTEGER", "USMALLINT":
		c.pg = "integer"
	case "BIGINT", "UINTEGER":
		c.pg = "bigint"
	case "UBIGINT":
		c.pg, c.toPG = "numeric(20,0)", uintToNumeric
	case "HUGEINT", "UHUGEINT":
		c.pg, c.toPG = "numeric(39,0)", bigToNumeric
	case "FLOAT":
		c.pg = "real"
	case "DOUBLE":
		c.pg = "double precision"
	case "DATE":
		c.pg = "date"
	case "TIMESTAMP", "TIMESTAMP_S", "TIMESTAMP_MS", "TIMESTAMP_NS":
		c.pg = "timestamp"
	case "TIMESTAMP WITH TIME ZONE":
		c.pg = "timestamptz"
	case "TIME":
		c.pg, c.toPG = "time", timeOfDay
	case "INTERVAL":
		c.pg, c.toPG = "interval", interval
	case "UUID":
		c.pg, c.expr, c.toPG = "uuid", "CAST("+q+" AS VARCHAR)", uuid
	case "BLOB":
		c.pg = "bytea"
	case "VARCHAR[]":
		c.pg, c.toPG = "text[]", textArray
	case "JSON":
		c.pg = "jsonb"
	default:
		if m := decimalType.FindStringSubmatch(t); m != nil {
			c.pg, c.toPG = fmt.Sprintf("numeric(%s,%s)", m[1], m[2]), decimalToNumeric
			return
		}
		if strings.HasSuffix(t, "]") || strings.HasPrefix(t, "STRUCT") || strings.HasPrefix(t, "MAP") || strings.HasPrefix(t, "UNION") {
			c.pg, c.expr = "jsonb", "CAST(to_json("+q+") AS VARCHAR)"
			return
		}
		c.pg, c.expr = "text", "CAST("+q+" AS VARCHAR)"
	}
}

func decimalToNumeric(v any) (any, error) {
	d, ok := v.(duckdb.Decimal)
	if !ok {
		return nil, fmt.Errorf("expected a DECIMAL value, got %T", v)
	}
	return pgtype.Numeric{Int: d.Value, Exp: -int32(d.Scale), Valid: true}, nil
}

func uintToNumeric(v any) (any, error) {
	u, ok := v.(uint64)
	if !ok {
		return nil, fmt.Errorf("expected a UBIGINT value, got %T", v)
	}
	return pgtype.Numeric{Int: new(big.Int).SetUint64(u), Valid: true}, nil
}

func bigToNumeric(v any) (any, error) {
	b, ok := v.(*big.Int)
	if !ok {
		return nil, fmt.Errorf("expected a HUGEINT value, got %T", v)
	}
	return pgtype.Numeric{Int: b, Valid: true}, nil
}

func timeOfDay(v any) (any, error) {
	t, ok := v.(time.Time)
	if !ok {
		return nil, fmt.Errorf("expected a TIME value, got %T", v)
	}
	us := int64(t.Hour())*3600e6 + int64(t.Minute())*60e6 + int64(t.Second())*1e6 + int64(t.Nanosecond())/1e3
	return pgtype.Time{Microseconds: us, Valid: true}, nil
}

func interval(v any) (any, error) {
	iv, ok := v.(duckdb.Interval)
	if !ok {
		return nil, fmt.Errorf("expected an INTERVAL value, got %T", v)
	}
	return pgtype.Interval{Microseconds: iv.Micros, Days: iv.Days, Months: iv.Months, Valid: true}, nil
}

func uuid(v any) (any, error) {
	var u pgtype.UUID
	if err := u.Scan(v); err != nil {
		return nil, fmt.Errorf("reading UUID: %w", err)
	}
	return u, nil
}

func textArray(v any) (any, error) {
	items, ok := v.([]any)
	if !ok {
		return nil, fmt.Errorf("expected a VARCHAR[] value, got %T", v)
	}
	out := make([]pgtype.Text, len(items))
	for i, it := range items {
		if it == nil {
			continue
		}
		s, ok := it.(string)
		if !ok {
			return nil, fmt.Errorf("expected text in a VARCHAR[] value, got %T", it)
		}
		out[i] = pgtype.Text{String: s, Valid: true}
	}
	return out, nil
}

// rowSource streams a mart from DuckDB into pgx's COPY, one row at a time,
// so memory stays bounded whatever the mart's size.
type rowSource struct {
	mart string
	rows *sql.Rows
	cols []column
	raw  []any
	ptrs []any
	out  []any
	n    int64
	err  error
}

func newRowSource(mart string, rows *sql.Rows, cols []column) *rowSource {
	r := &rowSource{mart: mart, rows: rows, cols: cols, raw: make([]any, len(cols)), ptrs: make([]any, len(cols)), out: make([]any, len(cols))}
	for i := range r.raw {
		r.ptrs[i] = &r.raw[i]
	}
	return r
}

func (r *rowSource) Next() bool {
	if r.err != nil || !r.rows.Next() {
		return false
	}
	if err := r.rows.Scan(r.ptrs...); err != nil {
		r.err = fmt.Errorf("reading mart %s row %d: %w", r.mart, r.n+1, err)
		return false
	}
	r.n++
	for i, v := range r.raw {
		if v == nil || r.cols[i].toPG == nil {
			r.out[i] = v
			continue
		}
		pv, err := r.cols[i].toPG(v)
		if err != nil {
			r.err = fmt.Errorf("mart %s row %d column %s: %w", r.mart, r.n, r.cols[i].name, err)
			return false
		}
		r.out[i] = pv
	}
	return true
}

func (r *rowSource) Values() ([]any, error) { return r.out, nil }

func (r *rowSource) Err() error {
	if r.err != nil {
		return r.err
	}
	if err := r.rows.Err(); err != nil {
		return fmt.Errorf("reading mart %s: %w", r.mart, err)
	}
	return nil
}
