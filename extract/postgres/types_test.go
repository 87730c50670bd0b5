package postgres

import (
	"context"
	"fmt"
	"math/big"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow/decimal128"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/cdwhq/cdw/internal/pgtest"
)

// typeCase is one column of the round-trip table: its PostgreSQL type, the
// DuckDB type raw must have, and how to render a value as text on each side
// (%[1]s is the column) so the two can be compared exactly.
type typeCase struct {
	col, pgType, duckType string
	pgText, duckText      string
	norm                  func(string) string // applied to both sides, after rendering
}

const (
	pgOut   = "CASE WHEN %[1]s IS NULL THEN NULL ELSE format('%%s', %[1]s) END" // the type's output function
	duckOut = "CAST(%[1]s AS VARCHAR)"
)

func floatNorm(bits int) func(string) string {
	return func(s string) string {
		if s == "NULL" {
			return s
		}
		f, err := strconv.ParseFloat(s, bits)
		if err != nil {
			return "unparsable " + s
		}
		return strconv.FormatFloat(f, 'g', -1, bits)
	}
}

var typeCases = []typeCase{
	{"b", "boolean", "BOOLEAN", pgOut, "CASE WHEN %[1]s THEN 't' WHEN NOT %[1]s THEN 'f' END", nil},
	{"i2", "smallint", "BIGINT", pgOut, duckOut, nil},
	{"i4", "integer", "BIGINT", pgOut, duckOut, nil},
	{"i8", "bigint", "BIGINT", pgOut, duckOut, nil},
	{"o", "oid", "BIGINT", pgOut, duckOut, nil},
	{"f4", "real", "FLOAT", pgOut, duckOut, floatNorm(32)},
	{"f8", "double precision", "DOUBLE", pgOut, duckOut, floatNorm(64)},
	{"n_money", "numeric(12,2)", "DECIMAL(12,2)", pgOut, duckOut, nil},
	{"n_wide", "numeric(38,10)", "DECIMAL(38,10)", pgOut, duckOut, nil},
	{"n_int", "numeric(18,0)", "DECIMAL(18,0)", pgOut, duckOut, nil},
	{"n_free", "numeric", "DECIMAL(38,9)", "round(%[1]s, 9)::text", duckOut, nil},
	{"n_huge", "numeric(50,5)", "VARCHAR", pgOut, duckOut, nil},
	{"t", "text", "VARCHAR", pgOut, duckOut, nil},
	{"vc", "varchar(10)", "VARCHAR", pgOut, duckOut, nil},
	{"ch", "char(5)", "VARCHAR", pgOut, duckOut, nil},
	{"u", "uuid", "VARCHAR", pgOut, duckOut, nil},
	{"j", "json", "VARCHAR", pgOut, duckOut, nil},
	{"jb", "jsonb", "VARCHAR", pgOut, duckOut, nil},
	{"d", "date", "DATE", pgOut, duckOut, nil},
	{"tm", "time", "TIME", pgOut, duckOut, nil},
	{"ts", "timestamp", "TIMESTAMP", pgOut, duckOut, nil},
	{"tstz", "timestamptz", "TIMESTAMP WITH TIME ZONE", pgOut, duckOut, nil},
	{"iv", "interval", "VARCHAR", pgOut, duckOut, nil},
	{"ta", "text[]", "VARCHAR[]", "'[' || array_to_string(%[1]s, '|', 'NULL') || ']'",
		"'[' || array_to_string(list_transform(%[1]s, x -> coalesce(x, 'NULL')), '|') || ']'", nil},
	{"ia", "integer[]", "BIGINT[]", "'[' || array_to_string(%[1]s, '|', 'NULL') || ']'",
		"'[' || array_to_string(list_transform(%[1]s, x -> coalesce(CAST(x AS VARCHAR), 'NULL')), '|') || ']'", nil},
	{"fa", "float8[]", "DOUBLE[]", "'[' || array_to_string(%[1]s, '|', 'NULL') || ']'",
		"'[' || array_to_string(list_transform(%[1]s, x -> coalesce(CAST(x AS VARCHAR), 'NULL')), '|') || ']'", nil},
	{"ba", "boolean[]", "BOOLEAN[]", "'[' || array_to_string(%[1]s, '|', 'NULL') || ']'",
		"'[' || array_to_string(list_transform(%[1]s, x -> CASE WHEN x THEN 't' WHEN NOT x THEN 'f' ELSE 'NULL' END), '|') || ']'", nil},
	{"bin", "bytea", "BLOB", "encode(%[1]s, 'hex')", "lower(hex(%[1]s))", nil},
	{"m", "mood", "VARCHAR", pgOut, duckOut, nil},
	{"ip", "inet", "VARCHAR", pgOut, duckOut, nil},
}

// typeRows are the values, one SQL row each, in typeCases order after id.
var typeRows = []string{
	`1, true, 12, 1234, 1234567890123, 42, 3.14, 0.1, 1234.56, 12.3456789012, 42, 1.5, 1.5,
	 'plain', 'short', 'ab', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '{"b": 1, "a": [1, 2]}', '{"b": 1, "a": [1, 2]}',
	 '2024-02-29', '12:34:56.789012', '2024-01-31 12:34:56.123456', '2024-01-31 12:34:56.123456+00', '1 day 02:03:04',
	 '{a,b}', '{1,2,3}', '{1.5,-2.25}', '{true,false}', '\x0001ff', 'happy', '192.168.0.1/24'`,
	// Extremes.
	`2, false, -32768, -2147483648, -9223372036854775808, 4294967295, 'NaN', 'Infinity',
	 9999999999.99, 9999999999999999999999999999.9999999999, 999999999999999999, 99999999999999999999999999999.999999999,
	 123456789012345678901234567890123456789012345.12345,
	 E'üñí©ødé ✓ "quoted" \\ back\nslash', '', '', '00000000-0000-0000-0000-000000000000', '[]', '{}',
	 'infinity', '23:59:59.999999', 'infinity', '-infinity', '-178000000 years',
	 '{}', '{}', '{}', '{}', '', 'sad', '::1'`,
	// Negative values and PostgreSQL's epoch boundaries.
	`3, NULL, -1, -1, -1, 0, '-Infinity', 1e-300,
	 -0.01, -0.0000000001, -999999999999999999, 0.000000001, -0.00001,
	 ' lead', 'tenchars10', 'abcde', 'ffffffff-ffff-ffff-ffff-ffffffffffff', 'null', 'null',
	 '1999-12-31', '00:00:00', '1999-12-31 23:59:59.999999', '2000-01-01 00:00:00.000001+00', '-1 mons -00:00:01',
	 '{"",NULL,"x y"}', '{NULL,7}', '{NULL,2.5e-300}', '{NULL,true}', '\x00', 'ok', '10.0.0.0/8'`,
	// Dates before the Unix epoch and the Arrow/DuckDB edges.
	`4, true, 32767, 2147483647, 9223372036854775807, 1, 1.17549435e-38, -1.7976931348623157e308,
	 0, 0.0000000001, 0, -99999999999999999999999999999.999999999, 0,
	 'x', NULL, NULL, NULL, 'true', '3.25',
	 '0001-01-01', NULL, '1900-02-28 00:00:00', '1970-01-01 00:00:00+00', NULL,
	 NULL, NULL, NULL, NULL, NULL, NULL, NULL`,
	// Everything NULL.
	`5` + strings.Repeat(", NULL", len(typeCases)),
}

func TestEveryTypeRoundTrips(t *testing.T) {
	db := pgtest.NewDB(t)
	var cols []string
	for _, c := range typeCases {
		cols = append(cols, c.col+" "+c.pgType)
	}
	db.Exec(t, "CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy')")
	db.Exec(t, "CREATE TABLE everything (id int PRIMARY KEY, "+strings.Join(cols, ", ")+")")
	for _, r := range typeRows {
		db.Exec(t, "INSERT INTO everything VALUES ("+r+")")
	}
	// contacts has few required columns: contact_id comes from id.
	src := openSource(t, "pg", sourceYAML(db, "", `    contacts:
      table: everything
      columns: {contact_id: id}
`))
	dir := t.TempDir()
	res := extractOnce(t, dir, "pg", src, "contacts", false)
	if res.Rows != int64(len(typeRows)) || res.Rejected != 0 {
		t.Fatalf("result %+v", res)
	}
	d := rawDB(t, dir, "pg", "contacts")

	types := map[string]string{}
	rows, err := d.Query("SELECT column_name, column_type FROM (DESCRIBE raw)")
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var n, ty string
		rows.Scan(&n, &ty)
		types[n] = ty
	}
	rows.Close()
	if types["contact_id"] != "VARCHAR" {
		t.Errorf("contact_id (canonical string from int) is %s", types["contact_id"])
	}
	for _, c := range typeCases {
		t.Run(c.col+"_"+strings.ReplaceAll(c.pgType, " ", "_"), func(t *testing.T) {
			if types[c.col] != c.duckType {
				t.Errorf("%s %s is %s in raw, want %s", c.col, c.pgType, types[c.col], c.duckType)
			}
			want := pgStrings(t, db, fmt.Sprintf("SELECT "+c.pgText+" FROM everything ORDER BY id", c.col))
			got := queryStrings(t, d, fmt.Sprintf("SELECT "+c.duckText+" FROM raw ORDER BY CAST(contact_id AS INT)", c.col))
			if c.norm != nil {
				for i := range want {
					want[i] = c.norm(want[i])
				}
				for i := range got {
					got[i] = c.norm(got[i])
				}
			}
			if !slices.Equal(got, want) {
				t.Errorf("values differ\n got %q\nwant %q", got, want)
			}
		})
	}
}

// TestNumericDecodingMatchesServer decodes numeric_send output of many values,
// random and edge, and compares with the server's own text.
func TestNumericDecodingMatchesServer(t *testing.T) {
	db := pgtest.NewDB(t)
	conn := db.Connect(t)
	ctx := context.Background()
	for _, ps := range [][2]int32{{12, 2}, {38, 10}, {18, 0}, {38, 0}, {5, 5}, {20, 4}, {38, 38}} {
		p, s := ps[0], ps[1]
		t.Run(fmt.Sprintf("numeric(%d,%d)", p, s), func(t *testing.T) {
			// Random digits at every length the type allows, both signs,
			// plus the largest and smallest magnitudes.
			q := fmt.Sprintf(`WITH v AS (
				SELECT ((SELECT coalesce(string_agg(floor(random() * 10)::int::text, ''), '0')
				         FROM generate_series(1, g %% (%[1]d + 1)) WHERE g >= 0)::numeric
				        / 10::numeric ^ %[2]d * CASE WHEN g %% 2 = 0 THEN -1 ELSE 1 END)::numeric(%[1]d,%[2]d) AS n
				FROM generate_series(0, 3000) g
				UNION ALL SELECT '%[3]s'::numeric(%[1]d,%[2]d)
				UNION ALL SELECT '-%[3]s'::numeric(%[1]d,%[2]d)
				UNION ALL SELECT '%[4]s'::numeric(%[1]d,%[2]d)
				UNION ALL SELECT 0::numeric(%[1]d,%[2]d))
				SELECT n::text, numeric_send(n) FROM v`, p, s, largest(p, s), smallest(s))
			rows, err := conn.Query(ctx, q)
			if err != nil {
				t.Fatal(err)
			}
			n := 0
			for rows.Next() {
				var text string
				var bin []byte
				if err := rows.Scan(&text, &bin); err != nil {
					t.Fatal(err)
				}
				got, err := numericUnscaled(bin, p, s)
				if err != nil {
					t.Fatalf("%s: %v", text, err)
				}
				if want := unscaledFromText(t, text, s); got != want {
					t.Fatalf("%s decoded as %s", text, got.ToString(s))
				}
				n++
			}
			if rows.Err() != nil || n < 3000 {
				t.Fatalf("%d values, %v", n, rows.Err())
			}
		})
	}
}

// largest is the largest numeric(p,s) value, smallest the smallest positive one.
func largest(p, s int32) string {
	v := strings.Repeat("9", int(p-s))
	if s > 0 {
		v += "." + strings.Repeat("9", int(s))
	}
	if p == s {
		v = "0" + v
	}
	return v
}

func smallest(s int32) string {
	if s == 0 {
		return "1"
	}
	return "0." + strings.Repeat("0", int(s-1)) + "1"
}

func unscaledFromText(t *testing.T, text string, scale int32) decimal128.Num {
	r, ok := new(big.Rat).SetString(text)
	if !ok {
		t.Fatalf("bad numeric text %q", text)
	}
	r.Mul(r, new(big.Rat).SetInt(new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(scale)), nil)))
	if !r.IsInt() {
		t.Fatalf("%s has more than %d decimals", text, scale)
	}
	return decimal128.FromBigInt(r.Num())
}

// TestNumericRefusesLoss checks the values that must be rejected, not rounded.
func TestNumericRefusesLoss(t *testing.T) {
	db := pgtest.NewDB(t)
	conn := db.Connect(t)
	for _, tc := range []struct {
		value string
		p, s  int32
		want  string
	}{
		{"'NaN'::numeric", 12, 2, "NaN"},
		{"'Infinity'::numeric", 38, 9, "infinity"},
		{"1.1234567891::numeric", 38, 9, "more than 9 decimal places"},
		{"123456789012345678901234567890::numeric", 38, 9, "more than 38 digits"},
		{"12345.6::numeric", 5, 1, "more than 5 digits"},
		{"1e20::numeric", 18, 0, "more than 18 digits"},
		{"0.000000000000000000001::numeric", 38, 20, "more than 20 decimal places"},
	} {
		var bin []byte
		if err := conn.QueryRow(context.Background(), "SELECT numeric_send("+tc.value+")").Scan(&bin); err != nil {
			t.Fatal(err)
		}
		_, err := numericUnscaled(bin, tc.p, tc.s)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s into decimal(%d,%d): error %v, want %q", tc.value, tc.p, tc.s, err, tc.want)
		}
	}
}

func TestRejectsGoToQuarantine(t *testing.T) {
	db := pgtest.NewDB(t)
	db.Exec(t, `CREATE TABLE tickets_src (
		ticket_id int, created_at timestamptz, amount numeric(10,2), tags text[][], updated_at timestamptz);
		INSERT INTO tickets_src VALUES
		  (1, '2024-01-01', 1.50, '{a}', now() - interval '1 hour'),
		  (2, '2024-01-02', 'NaN', '{b}', now() - interval '1 hour'),
		  (3, NULL, 2.00, '{c}', now() - interval '1 hour'),
		  (4, '2024-01-04', 3.00, '{{a,b},{c,d}}', now() - interval '1 hour'),
		  (5, '2024-01-05', 4.00, NULL, now() - interval '1 hour')`)
	src := openSource(t, "help", sourceYAML(db, "", `    tickets:
      table: tickets_src
      cursor: updated_at
`))
	dir := t.TempDir()
	res := extractOnce(t, dir, "help", src, "tickets", false)
	if res.Rows != 2 || res.Rejected != 3 {
		t.Fatalf("result %+v, want 2 rows and 3 rejected", res)
	}
	st := readState(t, dir, "help", "tickets")
	if len(st.Quarantine) != 1 {
		t.Fatalf("quarantine files: %+v", st.Quarantine)
	}
	d := rawDB(t, dir, "help", "tickets")
	got := queryStrings(t, d, "SELECT concat_ws(' | ', file, line, reason, raw) FROM read_parquet(?) ORDER BY line",
		dir+"/"+st.Quarantine[0].Path)
	want := []string{
		"table tickets_src | 2 | column amount: NaN has no decimal representation for decimal(10,2) | updated_at=",
		"table tickets_src | 3 | column created_at: is null, but the column is required | updated_at=",
		"table tickets_src | 4 | column tags: is a 2-dimensional array; only one dimension maps onto a list",
	}
	if len(got) != len(want) {
		t.Fatalf("quarantine rows %q", got)
	}
	for i := range want {
		if !strings.HasPrefix(got[i], want[i]) {
			t.Errorf("quarantine row %d\n got %q\nwant prefix %q", i, got[i], want[i])
		}
	}
	if !strings.Contains(got[0], "ticket_id=2, amount=0x") {
		t.Errorf("raw of a rejected row does not show its key and value: %q", got[0])
	}
	// The cursor moved past the rejected rows too: they are in quarantine.
	if p := statePosition(t, dir, "help", "tickets"); *p.After[1] != "5" {
		t.Errorf("cursor %+v", p.After)
	}
}

func TestCompatibleRules(t *testing.T) {
	num := func(p, s int32) field { return field{OID: pgtype.NumericOID, Mod: (p<<16 | s) + 4} }
	f := func(oid uint32) field { return field{OID: oid, Mod: -1} }
	for _, tc := range []struct {
		name     string
		old, new field
		ok       bool
	}{
		{"int4→int8", f(pgtype.Int4OID), f(pgtype.Int8OID), true},
		{"int8→int4", f(pgtype.Int8OID), f(pgtype.Int4OID), true},
		{"text→varchar", f(pgtype.TextOID), f(pgtype.VarcharOID), true},
		{"json→jsonb", f(pgtype.JSONOID), f(pgtype.JSONBOID), true},
		{"float4→float8", f(pgtype.Float4OID), f(pgtype.Float8OID), true},
		{"float8→float4", f(pgtype.Float8OID), f(pgtype.Float4OID), false},
		{"numeric(12,2)→numeric(14,2)", num(12, 2), num(14, 2), true},
		{"numeric(12,2)→numeric(10,2)", num(12, 2), num(10, 2), true},
		{"numeric(12,2)→numeric(12,1)", num(12, 2), num(12, 1), false},
		{"numeric(12,2)→numeric", num(12, 2), f(pgtype.NumericOID), true},
		{"numeric→numeric(12,2)", f(pgtype.NumericOID), num(12, 2), false},
		{"numeric→text", num(12, 2), f(pgtype.TextOID), false},
		{"text→int4", f(pgtype.TextOID), f(pgtype.Int4OID), false},
		{"int4→numeric", f(pgtype.Int4OID), num(12, 0), false},
		{"timestamp→timestamptz", f(pgtype.TimestampOID), f(pgtype.TimestamptzOID), false},
		{"date→timestamp", f(pgtype.DateOID), f(pgtype.TimestampOID), false},
		{"text[]→varchar[]", f(pgtype.TextArrayOID), f(pgtype.VarcharArrayOID), true},
		{"int4[]→text[]", f(pgtype.Int4ArrayOID), f(pgtype.TextArrayOID), false},
	} {
		if got := compatible(tc.old, tc.new); got != tc.ok {
			t.Errorf("%s: compatible = %v, want %v", tc.name, got, tc.ok)
		}
	}
}

// TestCursorTextRoundTrips renders binary values the way checkpoints do and
// has PostgreSQL read them back: they must be equal, edge values included.
func TestCursorTextRoundTrips(t *testing.T) {
	db := pgtest.NewDB(t)
	conn := db.Connect(t)
	ctx := context.Background()
	for _, tc := range []struct {
		typ    string
		oid    uint32
		values []string
	}{
		{"timestamptz", pgtype.TimestamptzOID, []string{"2024-01-01 10:00:00.123456+00", "1999-12-31 23:59:59.999999+00",
			"1999-12-31 23:59:59.5+00", "2000-01-01 00:00:00+00", "1970-01-01 00:00:00+00", "0001-01-01 00:00:00+00",
			"0044-03-15 12:00:00.000001+00 BC", "4713-01-01 00:00:00+00 BC", "294276-12-31 23:59:59.999999+00", "infinity", "-infinity"}},
		{"timestamp", pgtype.TimestampOID, []string{"2024-06-30 23:59:59.999999", "1899-01-01 00:00:00.000001", "0001-12-31 23:59:59 BC",
			"12345-06-07 08:09:10", "infinity", "-infinity"}},
		{"date", pgtype.DateOID, []string{"2024-02-29", "1999-12-31", "0001-01-01 BC", "4713-01-01 BC", "5874897-12-31", "infinity", "-infinity"}},
		{"int2", pgtype.Int2OID, []string{"-32768", "32767", "0"}},
		{"int4", pgtype.Int4OID, []string{"-2147483648", "2147483647"}},
		{"int8", pgtype.Int8OID, []string{"-9223372036854775808", "9223372036854775807", "42"}},
		{"uuid", pgtype.UUIDOID, []string{"a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", "00000000-0000-0000-0000-000000000000"}},
		{"text", pgtype.TextOID, []string{"", "it's \"quoted\"", "üñí©ødé"}},
		{"varchar(5)", pgtype.VarcharOID, []string{"abc"}},
		{"char(5)", pgtype.BPCharOID, []string{"ab"}},
	} {
		for _, v := range tc.values {
			var bin []byte
			if err := conn.QueryRow(ctx, "SELECT "+sendFunc(tc.typ)+"($1::"+tc.typ+")", v).Scan(&bin); err != nil {
				t.Fatalf("%s %q: %v", tc.typ, v, err)
			}
			text, err := cursorText(tc.oid, bin)
			if err != nil {
				t.Fatalf("%s %q: %v", tc.typ, v, err)
			}
			var same bool
			if err := conn.QueryRow(ctx, "SELECT $1::"+tc.typ+" = $2::"+tc.typ, text, v).Scan(&same); err != nil || !same {
				t.Errorf("%s %q rendered as %q, which PostgreSQL reads as a different value (%v)", tc.typ, v, text, err)
			}
		}
	}
}

func sendFunc(typ string) string {
	switch {
	case strings.HasPrefix(typ, "varchar"):
		return "varcharsend"
	case strings.HasPrefix(typ, "char"):
		return "bpcharsend"
	case typ == "text":
		return "textsend"
	}
	if strings.HasPrefix(typ, "int") {
		return typ + "send"
	}
	return typ + "_send"
}
