package extract

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/compute"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"

	"github.com/cdwhq/cdw/internal/failpoint"
)

// DefaultCompactTarget is the size compaction merges small raw files up to.
const DefaultCompactTarget = 128 << 20

// CompactBatch is the batch name a compaction's commit carries (the Iceberg
// snapshot summary's cdw.batch).
const CompactBatch = "compact"

// compactSuffix ends the name of a merged file: <newest input>c.parquet.
const compactSuffix = "c.parquet"

// IsCompacted reports whether a raw file is the output of a compaction.
func IsCompacted(p string) bool { return strings.HasSuffix(p, compactSuffix) }

// CompactResult reports one entity's compaction.
type CompactResult struct {
	Source, Entity string
	Inputs         int   // small files merged
	Outputs        int   // files they became
	Rows           int64 // rows moved (the same before and after)
	Bytes          int64 // size of the inputs
}

// Compact merges the entity's small raw files (under target/2 bytes, 0:
// DefaultCompactTarget) into files of up to about target bytes, each
// sorted by the entity's key and then its event time, and commits the
// swap once: one state commit (and, through Committed, one Iceberg rewrite
// commit) replaces the inputs by the outputs; the inputs are deleted after
// both. A crash before the state commit leaves orphan outputs, which the
// next start removes; a crash after it is reconciled on start, as an
// extract's is. Quarantine files are not touched.
//
// Staging keeps the latest version of a key by updated_at, then the later
// file (by path), then the later line. So that the file order still holds
// after compaction, only runs of consecutive files of one directory
// (event day), unit (source file version), raw format and schema are
// merged, an output is named after its newest input (it sorts where that
// input did), and an output ends before a file that holds a key the
// output already has from another file.
func (x *Extractor) Compact(ctx context.Context, source, entity string, target int64) (CompactResult, error) {
	res := CompactResult{Source: source, Entity: entity}
	if target <= 0 {
		target = DefaultCompactTarget
	}
	ent, store, st, err := x.openEntity(source, entity)
	if err != nil {
		return res, err
	}
	if st.Refresh != nil {
		x.log().Info("not compacting: a full refresh is in progress", "source", source, "entity", entity)
		return res, nil
	}
	runs, err := x.compactRuns(st, target)
	if err != nil {
		return res, err
	}
	replaced := map[string]RawFile{} // input path → output
	var written []string
	fail := func(err error) (CompactResult, error) {
		for _, p := range written {
			os.Remove(p)
		}
		return res, err
	}
	for _, run := range runs {
		outs, err := x.mergeRun(ctx, ent, run, target, &written)
		if err != nil {
			return fail(fmt.Errorf("compacting %s.%s: %w", source, entity, err))
		}
		for _, o := range outs {
			for _, in := range o.inputs {
				replaced[in.Path] = o.file
				res.Bytes += in.size
			}
			res.Inputs += len(o.inputs)
			res.Rows += o.file.Rows
			res.Outputs++
		}
		failpoint.Hit("compact.mid-write") // outputs renamed into place, state not yet committed
	}
	if res.Outputs == 0 {
		return res, nil
	}
	st.Files = swapCompacted(st.Files, replaced)
	failpoint.Hit("compact.before-commit")
	if err := store.Commit(st); err != nil {
		return fail(err)
	}
	failpoint.Hit("compact.after-commit") // state committed, Iceberg not yet
	if x.Committed != nil {
		if err := x.Committed(st, CompactBatch); err != nil {
			return res, err
		}
	}
	failpoint.Hit("compact.before-delete") // both committed, inputs not yet deleted
	for p := range replaced {
		if err := os.Remove(filepath.Join(x.Dir, filepath.FromSlash(p))); err != nil && !errors.Is(err, fs.ErrNotExist) {
			x.log().Warn("removing a compacted raw file", "file", p, "err", err)
		}
	}
	x.log().Info("compacted", "source", source, "entity", entity, "files", res.Inputs, "into", res.Outputs, "rows", res.Rows)
	return res, nil
}

// swapCompacted puts each output where its first input was and drops the
// other inputs.
func swapCompacted(files []RawFile, replaced map[string]RawFile) []RawFile {
	out := files[:0:0]
	placed := map[string]bool{}
	for _, f := range files {
		o, ok := replaced[f.Path]
		switch {
		case !ok:
			out = append(out, f)
		case !placed[o.Path]:
			placed[o.Path] = true
			out = append(out, o)
		}
	}
	return out
}

// compactInput is a raw file compaction may merge.
type compactInput struct {
	RawFile
	size   int64
	schema *arrow.Schema
}

// compactRuns lists the runs of consecutive small files that may be merged:
// the committed files of each directory in path (batch id) order, cut at
// every file that is large or differs from its predecessor in unit, format
// or schema. Runs of one file are dropped.
func (x *Extractor) compactRuns(st *EntityState, target int64) ([][]compactInput, error) {
	byDir := map[string][]RawFile{}
	for _, f := range st.Files {
		d := path.Dir(f.Path)
		byDir[d] = append(byDir[d], f)
	}
	dirs := make([]string, 0, len(byDir))
	for d := range byDir {
		dirs = append(dirs, d)
	}
	slices.Sort(dirs)
	var runs [][]compactInput
	for _, d := range dirs {
		files := byDir[d]
		slices.SortFunc(files, func(a, b RawFile) int { return cmp.Compare(a.Path, b.Path) })
		var run []compactInput
		flush := func() {
			if len(run) > 1 {
				runs = append(runs, run)
			}
			run = nil
		}
		for _, f := range files {
			p := filepath.Join(x.Dir, filepath.FromSlash(f.Path))
			fi, err := os.Stat(p)
			if err != nil {
				return nil, fmt.Errorf("compacting %s.%s: committed raw file: %w", st.Source, st.Entity, err)
			}
			if fi.Size() >= target/2 {
				flush()
				continue
			}
			sc, err := parquetSchema(p)
			if err != nil {
				return nil, err
			}
			in := compactInput{RawFile: f, size: fi.Size(), schema: sc}
			if len(run) > 0 {
				last := run[len(run)-1]
				if last.Unit != f.Unit || last.Format != f.Format || !last.schema.Equal(sc) {
					flush()
				}
			}
			run = append(run, in)
		}
		flush()
	}
	return runs, nil
}

// compactOutput is one merged file and the inputs it replaces.
type compactOutput struct {
	file   RawFile
	inputs []compactInput
}

// mergeRun merges one run into outputs of up to target bytes (of input),
// each ending before an input that repeats a key of another input of it.
// Paths of written outputs are appended to written.
func (x *Extractor) mergeRun(ctx context.Context, ent Entity, run []compactInput, target int64, written *[]string) ([]compactOutput, error) {
	var outs []compactOutput
	var cur []compactInput
	var recs []arrow.RecordBatch
	var size int64
	keys := map[string]int{} // key → index of the input in cur that has it
	release := func() {
		for _, r := range recs {
			r.Release()
		}
		recs, cur, size, keys = nil, nil, 0, map[string]int{}
	}
	defer release()
	flush := func() error {
		if len(cur) > 1 {
			o, err := x.writeMerged(ctx, ent, cur, recs)
			if err != nil {
				return err
			}
			*written = append(*written, filepath.Join(x.Dir, filepath.FromSlash(o.file.Path)))
			outs = append(outs, o)
		}
		release()
		return nil
	}
	for _, in := range run {
		rec, err := readRaw(ctx, filepath.Join(x.Dir, filepath.FromSlash(in.Path)))
		if err != nil {
			return nil, err
		}
		ks := rowKeys(rec, ent.Key)
		repeats := false
		for _, k := range ks {
			if i, ok := keys[k]; ok && i != len(cur) {
				repeats = true
				break
			}
		}
		if repeats || len(cur) > 0 && size+in.size > target {
			if err := flush(); err != nil {
				rec.Release()
				return nil, err
			}
		}
		for _, k := range ks {
			keys[k] = len(cur)
		}
		cur, recs, size = append(cur, in), append(recs, rec), size+in.size
	}
	if err := flush(); err != nil {
		return nil, err
	}
	return outs, nil
}

// writeMerged writes the rows of recs, sorted, as the file named after the
// newest input.
func (x *Extractor) writeMerged(ctx context.Context, ent Entity, inputs []compactInput, recs []arrow.RecordBatch) (compactOutput, error) {
	newest := inputs[len(inputs)-1]
	rel := strings.TrimSuffix(newest.Path, ".parquet") + compactSuffix
	all, err := concatRecords(recs)
	if err != nil {
		return compactOutput{}, err
	}
	defer all.Release()
	sorted, err := sortRecord(ctx, all, append(slices.Clone(ent.Key), ent.Event))
	if err != nil {
		return compactOutput{}, err
	}
	defer sorted.Release()
	pf, err := CreateParquet(filepath.Join(x.Dir, filepath.FromSlash(rel)), sorted.Schema())
	if err != nil {
		return compactOutput{}, err
	}
	for off := int64(0); off < sorted.NumRows(); off += RowGroupRows {
		s := sorted.NewSlice(off, min(off+RowGroupRows, sorted.NumRows()))
		err := pf.Write(s)
		s.Release()
		if err != nil {
			pf.Abort()
			return compactOutput{}, err
		}
	}
	if err := pf.Finish(); err != nil {
		return compactOutput{}, err
	}
	f := newest.RawFile
	f.Path, f.Rows = rel, sorted.NumRows()
	return compactOutput{file: f, inputs: inputs}, nil
}

// parquetSchema is the Arrow schema a raw file was written with.
func parquetSchema(p string) (*arrow.Schema, error) {
	r, err := file.OpenParquetFile(p, false)
	if err != nil {
		return nil, fmt.Errorf("reading raw file %s: %w", p, err)
	}
	defer r.Close()
	fr, err := pqarrow.NewFileReader(r, pqarrow.ArrowReadProperties{}, memory.DefaultAllocator)
	if err != nil {
		return nil, fmt.Errorf("reading raw file %s: %w", p, err)
	}
	sc, err := fr.Schema()
	if err != nil {
		return nil, fmt.Errorf("reading raw file %s: %w", p, err)
	}
	return sc, nil
}

// readRaw reads a whole raw file as one record.
func readRaw(ctx context.Context, p string) (arrow.RecordBatch, error) {
	r, err := file.OpenParquetFile(p, false)
	if err != nil {
		return nil, fmt.Errorf("reading raw file %s: %w", p, err)
	}
	defer r.Close()
	fr, err := pqarrow.NewFileReader(r, pqarrow.ArrowReadProperties{BatchSize: 1 << 20}, memory.DefaultAllocator)
	if err != nil {
		return nil, fmt.Errorf("reading raw file %s: %w", p, err)
	}
	tbl, err := fr.ReadTable(ctx)
	if err != nil {
		return nil, fmt.Errorf("reading raw file %s: %w", p, err)
	}
	defer tbl.Release()
	cols := make([]arrow.Array, tbl.NumCols())
	for i := range cols {
		a, err := array.Concatenate(tbl.Column(i).Data().Chunks(), memory.DefaultAllocator)
		if err != nil {
			for _, c := range cols[:i] {
				c.Release()
			}
			return nil, fmt.Errorf("reading raw file %s: %w", p, err)
		}
		cols[i] = a
	}
	rec := array.NewRecordBatch(tbl.Schema(), cols, tbl.NumRows())
	for _, c := range cols {
		c.Release()
	}
	return rec, nil
}

// concatRecords joins records of one schema into one.
func concatRecords(recs []arrow.RecordBatch) (arrow.RecordBatch, error) {
	sc := recs[0].Schema()
	cols := make([]arrow.Array, sc.NumFields())
	var rows int64
	for _, r := range recs {
		rows += r.NumRows()
	}
	for i := range cols {
		parts := make([]arrow.Array, len(recs))
		for j, r := range recs {
			parts[j] = r.Column(i)
		}
		a, err := array.Concatenate(parts, memory.DefaultAllocator)
		if err != nil {
			for _, c := range cols[:i] {
				c.Release()
			}
			return nil, fmt.Errorf("merging column %s: %w", sc.Field(i).Name, err)
		}
		cols[i] = a
	}
	rec := array.NewRecordBatch(sc, cols, rows)
	for _, c := range cols {
		c.Release()
	}
	return rec, nil
}

// sortRecord orders rec's rows by the columns named (those it has; nulls
// first), keeping the order of equal rows.
func sortRecord(ctx context.Context, rec arrow.RecordBatch, by []string) (arrow.RecordBatch, error) {
	var cols []arrow.Array
	for _, name := range by {
		if name == "" {
			continue
		}
		if idx := rec.Schema().FieldIndices(name); len(idx) > 0 {
			cols = append(cols, rec.Column(idx[0]))
		}
	}
	n := int(rec.NumRows())
	perm := make([]int, n)
	for i := range perm {
		perm[i] = i
	}
	if len(cols) > 0 {
		slices.SortStableFunc(perm, func(a, b int) int {
			for _, c := range cols {
				if d := compareAt(c, a, b); d != 0 {
					return d
				}
			}
			return 0
		})
	}
	ib := array.NewInt64Builder(memory.DefaultAllocator)
	defer ib.Release()
	for _, p := range perm {
		ib.Append(int64(p))
	}
	idx := ib.NewArray()
	defer idx.Release()
	out := make([]arrow.Array, rec.NumCols())
	for i, c := range rec.Columns() {
		a, err := compute.TakeArray(ctx, c, idx)
		if err != nil {
			for _, o := range out[:i] {
				o.Release()
			}
			return nil, fmt.Errorf("sorting column %s: %w", rec.Schema().Field(i).Name, err)
		}
		out[i] = a
	}
	sorted := array.NewRecordBatch(rec.Schema(), out, rec.NumRows())
	for _, o := range out {
		o.Release()
	}
	return sorted, nil
}

// compareAt orders two values of one column, nulls first.
func compareAt(c arrow.Array, a, b int) int {
	na, nb := c.IsNull(a), c.IsNull(b)
	switch {
	case na && nb:
		return 0
	case na:
		return -1
	case nb:
		return 1
	}
	switch v := c.(type) {
	case *array.String:
		return strings.Compare(v.Value(a), v.Value(b))
	case *array.Int64:
		return cmp.Compare(v.Value(a), v.Value(b))
	case *array.Timestamp:
		return cmp.Compare(v.Value(a), v.Value(b))
	case *array.Float64:
		return cmp.Compare(v.Value(a), v.Value(b))
	case *array.Decimal128:
		return v.Value(a).Cmp(v.Value(b))
	default:
		return strings.Compare(c.ValueStr(a), c.ValueStr(b))
	}
}

// rowKeys are the distinct keys of rec's rows ("" for none: an entity
// without a key has no versions to keep in order).
func rowKeys(rec arrow.RecordBatch, key []string) []string {
	var cols []arrow.Array
	for _, k := range key {
		idx := rec.Schema().FieldIndices(k)
		if len(idx) == 0 {
			return nil
		}
		cols = append(cols, rec.Column(idx[0]))
	}
	if len(cols) == 0 {
		return nil
	}
	seen := map[string]bool{}
	var out []string
	var sb strings.Builder
	for i := 0; i < int(rec.NumRows()); i++ {
		sb.Reset()
		for j, c := range cols {
			if j > 0 {
				sb.WriteString(KeySeparator)
			}
			if c.IsNull(i) {
				sb.WriteString("\x00")
			} else {
				sb.WriteString(c.ValueStr(i))
			}
		}
		if k := sb.String(); !seen[k] {
			seen[k] = true
			out = append(out, k)
		}
	}
	return out
}
