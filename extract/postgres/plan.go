package postgres

import (
	"context"
	_ "embed"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/cdwhq/cdw/extract"
	"github.com/cdwhq/cdw/internal/duck"
)

// formatTypesSQL names the types of described columns as PostgreSQL spells
// them (numeric(12,2), character varying(40), …).
//
//go:embed sql/format_types.sql
var formatTypesSQL string

// plan is how one read turns source rows into the entity's Arrow records.
type plan struct {
	ent     *entityConfig
	mode    string
	by      []string // cursor column then key (incremental), or key (full)
	byOIDs  []uint32 // their types
	lag     bool     // the cursor is a timestamp: rows younger than the safety lag wait
	outs    []outCol
	schema  *arrow.Schema
	columns []field // source columns read, remembered in the checkpoint
	notes   []string

	// The snapshot horizon (horizon.go), for incremental reads of tables.
	xmax    string // the read's snapshot xmax, to widen row xids against
	horizon string // committed with the read's positions
	seenIn  string // resuming a split read: only rows this horizon saw
	// commitEmpty: a read that finds nothing still commits its position
	// (it ends a split read cut short, or records a first horizon).
	commitEmpty bool
	changes     string // full read of a table: its change fingerprint (changes.go)
}

// outCol is one column of the records.
type outCol struct {
	name     string
	src      *field   // nil: a canonical column the source lacks, always NULL
	parts    []string // a composite key: src is its text, computed from these source columns
	spec     colSpec
	required bool
}

// describe asks the server for the entity's columns without reading rows.
func describe(ctx context.Context, conn *pgx.Conn, ec *entityConfig) ([]field, error) {
	sd, err := conn.PgConn().Prepare(ctx, "", "SELECT * FROM "+ec.from(), nil)
	if err != nil {
		return nil, fmt.Errorf("describing %s: %w", ec.what(), err)
	}
	fields := make([]field, len(sd.Fields))
	oids := make([]int64, len(sd.Fields))
	mods := make([]int32, len(sd.Fields))
	for i, fd := range sd.Fields {
		fields[i] = field{Name: fd.Name, OID: fd.DataTypeOID, Mod: fd.TypeModifier}
		oids[i], mods[i] = int64(fd.DataTypeOID), fd.TypeModifier
	}
	rows, err := conn.Query(ctx, formatTypesSQL, oids, mods)
	if err != nil {
		return nil, fmt.Errorf("naming column types of %s: %w", ec.what(), err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil || len(names) != len(fields) {
		return nil, fmt.Errorf("naming column types of %s: %d names for %d columns: %v", ec.what(), len(names), len(fields), err)
	}
	for i := range fields {
		fields[i].Type = names[i]
	}
	return fields, nil
}

// makePlan maps the described source columns onto the entity: canonical
// columns first (in the entity's order), then the source's other columns
// under their own names. prev is the committed position, whose remembered
// columns the new ones are checked against.
func makePlan(ec *entityConfig, fields []field, prev *position) (*plan, error) {
	p := &plan{ent: ec, mode: modeFull}
	byName := map[string]int{}
	for i, f := range fields {
		if _, dup := byName[f.Name]; dup {
			return nil, fmt.Errorf("%s returns two columns named %q; give them distinct names", ec.what(), f.Name)
		}
		byName[f.Name] = i
	}
	has := func(name string) (*field, bool) {
		i, ok := byName[name]
		if !ok {
			return nil, false
		}
		return &fields[i], true
	}
	// Type changes first: they explain a mapping that no longer fits better
	// than the mapping error would.
	if err := checkTypes(ec, fields, prev); err != nil {
		return nil, err
	}
	used, keyRead, err := p.mapCanonical(fields, has)
	if err != nil {
		return nil, err
	}
	if err := p.passThrough(fields, has, used, keyRead); err != nil {
		return nil, err
	}
	if err := p.setOrder(fields, has, used); err != nil {
		return nil, err
	}
	for i := range fields {
		if used[fields[i].Name] || keyRead[fields[i].Name] {
			p.columns = append(p.columns, fields[i])
		}
	}
	p.noteSchemaChanges(prev)
	af := make([]arrow.Field, len(p.outs))
	for i, o := range p.outs {
		af[i] = arrow.Field{Name: o.name, Type: o.spec.arrow, Nullable: true}
	}
	p.schema = arrow.NewSchema(af, nil)
	return p, nil
}

// mapCanonical adds the entity's columns to the plan, in the entity's order:
// each from its mapped source column, composite key parts, or by name. It
// returns the source columns it took and the key parts it reads.
func (p *plan) mapCanonical(fields []field, has func(string) (*field, bool)) (used, keyRead map[string]bool, err error) {
	ec := p.ent
	explicit := map[string]bool{}
	for _, src := range ec.columns {
		explicit[src] = true
	}
	used = map[string]bool{}
	keyRead = map[string]bool{} // parts of composite keys, read but also passed through
	for _, c := range ec.entity.Columns {
		if parts, ok := ec.parts[c.Name]; ok {
			for _, part := range parts {
				if _, ok := has(part); !ok {
					return nil, nil, fmt.Errorf("columns.%s: %s has no column %q (its columns: %s)", c.Name, ec.what(), part, fieldNames(fields))
				}
				keyRead[part] = true
			}
			src := &field{Name: strings.Join(parts, "+"), OID: pgtype.TextOID, Type: "text"}
			p.outs = append(p.outs, outCol{name: c.Name, src: src, parts: parts, spec: colSpec{conv: convText, arrow: c.Type.Arrow()}, required: c.Required})
			continue
		}
		name, mapped := ec.columns[c.Name]
		if !mapped {
			name = c.Name
		}
		f, ok := has(name)
		if ok && !mapped && (explicit[name] || ec.exclude[name]) {
			ok = false // mapped to another column, or excluded: not taken by name
		}
		switch {
		case !ok && mapped:
			return nil, nil, fmt.Errorf("columns.%s: %s has no column %q (its columns: %s)", c.Name, ec.what(), name, fieldNames(fields))
		case !ok && c.Required:
			return nil, nil, fmt.Errorf("%s has no column %s, which %s requires: map one under columns, e.g. columns: {%s: your_column}",
				ec.what(), c.Name, ec.entity.Name, c.Name)
		case !ok:
			p.outs = append(p.outs, outCol{name: c.Name, spec: colSpec{arrow: c.Type.Arrow()}})
			continue
		}
		spec, err := canonicalSpec(*f, c)
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %w", ec.what(), err)
		}
		p.outs = append(p.outs, outCol{name: c.Name, src: f, spec: spec, required: c.Required})
		used[f.Name] = true
	}
	return used, keyRead, nil
}

// passThrough adds the source's other columns under their own names, and
// notes excluded columns the source does not have.
func (p *plan) passThrough(fields []field, has func(string) (*field, bool), used, keyRead map[string]bool) error {
	ec := p.ent
	for i := range fields {
		f := &fields[i]
		if used[f.Name] || ec.exclude[f.Name] {
			continue
		}
		if _, clash := ec.entity.Column(f.Name); clash && keyRead[f.Name] {
			continue // a key part named like a canonical column: read into the key only
		}
		if _, clash := ec.entity.Column(f.Name); clash {
			return fmt.Errorf("%s has a column %q besides the one mapped to %s.%s (%q); add it to exclude, or map it to another name in a query:",
				ec.what(), f.Name, ec.entity.Name, f.Name, ec.columns[f.Name])
		}
		p.outs = append(p.outs, outCol{name: f.Name, src: f, spec: nativeSpec(*f)})
		used[f.Name] = true
	}
	for x := range ec.exclude {
		if _, ok := has(x); !ok {
			p.notes = append(p.notes, fmt.Sprintf("exclude lists %q, which %s does not have", x, ec.what()))
		}
	}
	return nil
}

// setOrder sets the order rows are read in: the cursor (incremental mode)
// then the key, defaulting to the entity's key through the column mapping.
func (p *plan) setOrder(fields []field, has func(string) (*field, bool), used map[string]bool) error {
	ec := p.ent
	if ec.cursor != "" {
		p.mode = modeIncremental
		f, ok := has(ec.cursor)
		if !ok {
			return fmt.Errorf("cursor: %s has no column %q (its columns: %s)", ec.what(), ec.cursor, fieldNames(fields))
		}
		switch f.OID {
		case pgtype.TimestamptzOID, pgtype.TimestampOID:
			p.lag = true
		case pgtype.Int2OID, pgtype.Int4OID, pgtype.Int8OID:
		default:
			return fmt.Errorf("cursor: column %q of %s has type %s; the cursor must be a timestamp or an integer that grows on every change", f.Name, ec.what(), f.Type)
		}
		p.by = []string{ec.cursor}
		used[f.Name] = true
	}
	key := ec.key
	if key == nil {
		// Default: the entity's key, through the column mapping.
		for _, k := range ec.entity.Key {
			if parts, ok := ec.parts[k]; ok {
				key = append(key, parts...) // the parts, which an index can serve
				continue
			}
			name, mapped := ec.columns[k]
			if !mapped {
				name = k
			}
			if _, ok := has(name); ok {
				key = append(key, name)
			}
		}
	}
	for _, k := range key {
		if _, ok := has(k); !ok {
			return fmt.Errorf("key: %s has no column %q (its columns: %s)", ec.what(), k, fieldNames(fields))
		}
		used[k] = true
	}
	if p.mode == modeIncremental && len(key) == 0 {
		return fmt.Errorf("key: %s has none of the %s key columns (%s); name the columns that identify a row under key",
			ec.what(), ec.entity.Name, strings.Join(ec.entity.Key, ", "))
	}
	p.by = append(p.by, key...)
	for _, b := range p.by {
		f, _ := has(b)
		p.byOIDs = append(p.byOIDs, f.OID)
	}
	return nil
}

// checkTypes compares the source columns with those of the rows already
// committed: a type change that would lose data stops the entity.
func checkTypes(ec *entityConfig, fields []field, prev *position) error {
	if prev == nil {
		return nil
	}
	old := map[string]field{}
	for _, f := range prev.Columns {
		old[f.Name] = f
	}
	for _, f := range fields {
		o, seen := old[f.Name]
		if !seen || ec.exclude[f.Name] || compatible(o, f) {
			continue
		}
		return fmt.Errorf("%w: %s column %s changed type from %s to %s, which would lose data next to the raw rows already read as %s; "+
			"change it back at the source or cast it in a query:, or run a full refresh to rewrite raw with the new type",
			extract.ErrSchemaChanged, ec.what(), f.Name, o.Type, f.Type, o.Type)
	}
	return nil
}

// noteSchemaChanges notes columns added or no longer read since the last read.
func (p *plan) noteSchemaChanges(prev *position) {
	if prev == nil {
		return
	}
	old := map[string]bool{}
	for _, f := range prev.Columns {
		old[f.Name] = true
	}
	now := map[string]bool{}
	for _, f := range p.columns {
		now[f.Name] = true
		if !old[f.Name] {
			p.notes = append(p.notes, fmt.Sprintf("new column %s %s: earlier raw files read it as NULL", f.Name, f.Type))
		}
	}
	var gone []string
	for name := range old {
		if !now[name] {
			gone = append(gone, name)
		}
	}
	sort.Strings(gone)
	for _, name := range gone {
		p.notes = append(p.notes, fmt.Sprintf("column %s is no longer read: new raw rows have it NULL", name))
	}
}

// readColumn is one column of the streaming query.
type readColumn struct {
	name   string // source column
	expr   string // SQL computing the value instead (composite keys)
	format int16
}

// selectColumns lists the streaming query's columns: the mapped columns, then
// the By columns that are not among them already in the right format (a
// cursor or key that is also a mapped column is read once). byIdx says where
// each By value is; byText whether it comes as text.
func (p *plan) selectColumns() (cols []readColumn, byIdx []int, byText []bool) {
	for _, o := range p.outs {
		switch {
		case o.parts != nil:
			cols = append(cols, readColumn{name: o.src.Name, expr: keySQL(o.parts), format: o.spec.format()})
		case o.src != nil:
			cols = append(cols, readColumn{name: o.src.Name, format: o.spec.format()})
		}
	}
	mapped := len(cols)
	for i, b := range p.by {
		// Checkpoint values: binary when cursorText can render them, so the
		// server does not format every row's cursor and key as text.
		format := int16(pgtype.TextFormatCode)
		if cursorTextable(p.byOIDs[i]) {
			format = pgtype.BinaryFormatCode
		}
		idx := slices.IndexFunc(cols[:mapped], func(c readColumn) bool { return c.name == b && c.expr == "" && c.format == format })
		if idx < 0 {
			idx = len(cols)
			cols = append(cols, readColumn{name: b, format: format})
		}
		byIdx = append(byIdx, idx)
		byText = append(byText, format == pgtype.TextFormatCode)
	}
	return cols, byIdx, byText
}

// keySQL joins a composite key's parts as text with extract.KeySeparator.
// A part that is NULL, empty or contains the separator makes the key NULL,
// which rejects the row (key columns are required): two different part lists
// never give the same key.
func keySQL(parts []string) string {
	var bad, join []string
	for _, part := range parts {
		t := duck.Ident(part) + "::text"
		bad = append(bad, fmt.Sprintf("coalesce(%s, '') = '' OR strpos(%s, chr(31)) > 0", t, t))
		join = append(join, t)
	}
	return "CASE WHEN " + strings.Join(bad, " OR ") + " THEN NULL ELSE " + strings.Join(join, " || chr(31) || ") + " END"
}

// selectSQL is the streaming query over cols (selectColumns) for one span.
// Identifiers are quoted; values are parameters.
func (p *plan) selectSQL(cols []readColumn, sp span, cutoff []byte) (string, [][]byte) {
	names := make([]string, len(cols))
	for i, c := range cols {
		names[i] = duck.Ident(c.name)
		if c.expr != "" {
			names[i] = c.expr
		}
	}
	where, args := p.where(sp, cutoff)
	sql := "SELECT " + strings.Join(names, ", ") + " FROM " + p.ent.from() + where
	if len(p.by) > 0 {
		sql += " ORDER BY " + duck.Idents(p.by)
	}
	return sql, args
}

// countSQL counts what selectSQL would return.
func (p *plan) countSQL(sp span, cutoff []byte) (string, [][]byte) {
	where, args := p.where(sp, cutoff)
	return "SELECT count(*) FROM " + p.ent.from() + where, args
}

// cutoffSQL computes the newest cursor value a read takes: rows younger than
// the safety lag wait for the next read. now() is the start of the read's
// transaction, whose snapshot the rows come from; the value is passed on to
// every query of the read, so the parts of a split read, each in its own
// transaction on the same snapshot, use the same one.
const cutoffSQL = "SELECT (now() - $1::interval)::text"

// lagArg is the safety lag as an interval parameter.
func lagArg(lag time.Duration) []byte {
	return []byte(strconv.FormatInt(lag.Microseconds(), 10) + " microseconds")
}

// where selects the rows of one span and, for a timestamp cursor, not younger
// than the cutoff (cutoffSQL):
//
//	WHERE ("updated_at", "id") > ($1, $2) AND ("updated_at", "id") <= ($3, $4)
//	  AND "updated_at" <= $5::timestamptz
func (p *plan) where(sp span, cutoff []byte) (string, [][]byte) {
	var conds []string
	var args [][]byte
	if p.mode == modeIncremental {
		conds = append(conds, duck.Ident(p.by[0])+" IS NOT NULL")
	}
	bound := func(op string, vals []*string) {
		if len(vals) == 0 {
			return
		}
		ph := make([]string, len(vals))
		for i, v := range vals {
			args = append(args, textArg(v))
			ph[i] = "$" + strconv.Itoa(len(args))
		}
		conds = append(conds, "("+duck.Idents(p.by)+") "+op+" ("+strings.Join(ph, ", ")+")")
	}
	bound(">", sp.After)
	bound("<=", sp.Upto)
	unseen := func(h string) string {
		args = append(args, []byte(p.xmax), []byte(h), xminLow(h))
		n := len(args)
		return unseenSQL("$"+strconv.Itoa(n-2), "$"+strconv.Itoa(n-1), "$"+strconv.Itoa(n))
	}
	if sp.Unseen != "" {
		conds = append(conds, unseen(sp.Unseen))
	}
	if p.seenIn != "" {
		conds = append(conds, "NOT "+unseen(p.seenIn))
	}
	if p.lag {
		args = append(args, cutoff)
		conds = append(conds, duck.Ident(p.by[0])+" <= $"+strconv.Itoa(len(args))+"::timestamptz")
	}
	if len(conds) == 0 {
		return "", nil
	}
	return " WHERE " + strings.Join(conds, " AND "), args
}

func textArg(v *string) []byte {
	if v == nil {
		return nil // SQL NULL
	}
	return []byte(*v)
}

func fieldNames(fields []field) string {
	names := make([]string, len(fields))
	for i, f := range fields {
		names[i] = f.Name
	}
	return strings.Join(names, ", ")
}
