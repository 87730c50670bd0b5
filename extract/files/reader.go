package files

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"golang.org/x/text/encoding/simplifiedchinese"
	"golang.org/x/text/transform"

	"github.com/cdwhq/cdw/extract"
)

// Lineage columns added to every row so a raw row can be traced to its file and line.
const (
	colFile = "_source_file"
	colLine = "_source_line"
	// colExtra holds, under extra_fields: keep, the fields of a row beyond
	// the header's, as a JSON array of strings.
	colExtra = "_extra"
)

func (p *plan) schema() *arrow.Schema {
	fields := make([]arrow.Field, 0, len(p.columns)+2)
	for _, c := range p.columns {
		fields = append(fields, arrow.Field{Name: c.name, Type: c.typ.Arrow(), Nullable: true})
	}
	fields = append(fields,
		arrow.Field{Name: colFile, Type: fileNameType, Nullable: true},
		arrow.Field{Name: colLine, Type: arrow.PrimitiveTypes.Int64, Nullable: true})
	return arrow.NewSchema(fields, nil)
}

// reader streams the pending files of one read.
type reader struct {
	src       *Source
	base      *plan           // the entity's plan as configured
	kept      map[string]bool // unmapped columns already logged as kept
	plan      *plan           // the plan of the current file: base, shaped to its columns
	schema    *arrow.Schema
	ledger    ledger
	pending   []string
	batchRows int

	cur *openFile // file being read, nil between files
}

// openFile is one file being read.
type openFile struct {
	path     string
	info     os.FileInfo
	f        *os.File
	hash     hash.Hash
	hashed   io.Reader           // the file through the hash
	pipe     *csvPipeline        // CSV: parses blocks in parallel
	pending  []arrow.RecordBatch // records of the last block not handed over yet
	rows     *fixedRows          // fixed width: read line by line
	comma    []byte              // CSV delimiter, UTF-8 encoded
	entry    fileEntry
	colIdx   []int        // per plan column: index in the source record, -1 = absent
	partIdx  [][]int      // per plan column: indexes of a composite key's parts, else nil
	need     int          // fields a CSV record needs: the highest colIdx + 1
	ts       []*tsGroup   // per plan column: how its timestamps are written (detected from a sample)
	num      []*numFormat // per plan column: how its numbers are written (detected from a sample)
	sample   [][]string   // CSV: the first records, for detection and raw types
	header   [][]byte     // the CSV header as read, to recognise it repeated inside the file
	headers  int64        // header rows repeated inside the file, skipped
	rounded  int64        // rows with a number rounded to the warehouse's 4 decimal places
	roundEx  string       // the first of them
	width    int          // fields of the header; 0 = no header
	fileName arrow.Array
	loaded   int64
	refused  int64
	seen     map[int64]uint32 // content keys of the file so far: numberRepeats
}

// close stops reading the file.
func (of *openFile) close() {
	if of.pipe != nil {
		of.pipe.stop()
		of.pipe = nil
	}
	for _, rec := range of.pending {
		rec.Release()
	}
	of.pending = nil
	of.f.Close()
	if of.fileName != nil {
		of.fileName.Release()
		of.fileName = nil
	}
}

func (r *reader) Schema() *arrow.Schema { return r.schema }

func (r *reader) Close() error {
	if r.cur != nil {
		r.cur.close()
		r.cur = nil
	}
	return nil
}

// Next returns up to batchRows rows of the current file; at the end of a file
// it returns the rest with a checkpoint that records the file in the ledger.
func (r *reader) Next(ctx context.Context) (extract.Chunk, error) {
	for r.cur == nil {
		if len(r.pending) == 0 {
			return extract.Chunk{}, io.EOF
		}
		path := r.pending[0]
		r.pending = r.pending[1:]
		of, refuse, err := r.openNext(path)
		if err != nil {
			return extract.Chunk{}, err
		}
		if refuse != nil {
			return *refuse, nil
		}
		r.cur = of
	}
	if r.cur.pipe != nil {
		return r.nextBlock(ctx)
	}
	return r.nextFixed(ctx)
}

// nextBlock hands over the next parsed block of a CSV file, and at the end of
// the file a chunk with the checkpoint that records it in the ledger.
func (r *reader) nextBlock(ctx context.Context) (extract.Chunk, error) {
	of := r.cur
	if len(of.pending) > 0 {
		rec := of.pending[0]
		of.pending = of.pending[1:]
		return extract.Chunk{Rows: rec}, nil
	}
	res, ok, err := of.pipe.next(ctx)
	if err != nil {
		return extract.Chunk{}, err
	}
	if !ok {
		cp, err := r.finishFile()
		if err != nil {
			return extract.Chunk{}, err
		}
		return extract.Chunk{Checkpoint: cp, Unit: of.path}, nil
	}
	for _, rec := range res.recs {
		r.plan.numberRepeats(of, rec)
	}
	if res.err != nil {
		return extract.Chunk{}, fmt.Errorf("reading %s: %w", of.path, res.err)
	}
	of.loaded += res.rows
	of.headers += res.headers
	of.addRounded(res.rounded, res.roundEx)
	of.refused += int64(len(res.rejects))
	ch := extract.Chunk{Rejects: res.rejects}
	if len(res.recs) > 0 {
		ch.Rows, of.pending = res.recs[0], res.recs[1:]
	}
	return ch, nil
}

// nextFixed returns up to batchRows rows of a fixed-width file; at the end of
// the file it returns the rest with the checkpoint.
func (r *reader) nextFixed(ctx context.Context) (extract.Chunk, error) {
	rb := r.plan.rowsBuilder(r.schema)
	var rejects []extract.Reject
	n := 0
	of := r.cur
	var fields [][]byte
	for n < r.batchRows {
		if n%4096 == 0 && ctx.Err() != nil {
			return extract.Chunk{}, ctx.Err()
		}
		text, line, err := of.rows.next()
		if errors.Is(err, io.EOF) {
			rec := rb.record(of.fileName)
			r.plan.numberRepeats(of, rec)
			of.addRounded(rb.takeRounded())
			cp, err := r.finishFile()
			if err != nil {
				if rec != nil {
					rec.Release()
				}
				return extract.Chunk{}, err
			}
			return extract.Chunk{Rows: rec, Rejects: rejects, Checkpoint: cp, Unit: of.path}, nil
		}
		if err != nil {
			return extract.Chunk{}, fmt.Errorf("reading %s line %d: %w", of.path, line, err)
		}
		fields = fields[:0]
		for _, t := range text {
			fields = append(fields, []byte(t))
		}
		if reason := r.plan.convert(of, fields, line, rb, false); reason != "" {
			rejects = append(rejects, extract.Reject{File: of.path, Line: line, Reason: reason, Raw: rawLine(fields, r.plan.delim)})
			of.refused++
			continue
		}
		n++
		of.loaded++
	}
	rec := rb.record(of.fileName)
	r.plan.numberRepeats(of, rec)
	of.addRounded(rb.takeRounded())
	return extract.Chunk{Rows: rec, Rejects: rejects}, nil
}

func (of *openFile) addRounded(n int64, ex string) {
	if of.rounded == 0 {
		of.roundEx = ex
	}
	of.rounded += n
}

// openNext decides whether path needs loading (new or changed) and opens it.
// It returns (nil, nil, nil) for a file already loaded, and a chunk carrying a
// whole-file reject when a changed file is refused by policy.
func (r *reader) openNext(path string) (*openFile, *extract.Chunk, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, nil, fmt.Errorf("reading %s: %w", path, err)
	}
	prev, seen := r.ledger.Files[path]
	resettled := seen && prev.Settings != "" && prev.Settings != r.plan.settingsID
	if seen && !resettled && prev.Size == fi.Size() && prev.ModTime.Equal(fi.ModTime()) {
		return nil, nil, nil
	}
	entry := fileEntry{Version: 1}
	if seen {
		sum, err := hashFile(path)
		if err != nil {
			return nil, nil, err
		}
		if resettled && sum == prev.SHA256 {
			entry.Version = prev.Version + 1
			r.src.log.Info("reading a file again as a new version: its parse settings changed", "file", path, "version", entry.Version,
				"changed", strings.Join(changedKeys(r.ledger.Settings[prev.Settings], r.plan.settings), ","))
			return r.open(path, fi, entry)
		}
		if sum == prev.SHA256 || sum == prev.RefusedSHA256 {
			// Touched, not changed (or already refused): note the new mtime only.
			prev.Size, prev.ModTime = fi.Size(), fi.ModTime()
			r.ledger.Files[path] = prev
			return nil, nil, nil
		}
		if r.plan.onChange == "reject" {
			prev.RefusedSHA256 = sum
			r.ledger.Files[path] = prev
			reason := fmt.Sprintf("file changed since it was loaded at %s; not reloaded because on_change is reject (set on_change: reload to load it as version %d)",
				prev.LoadedAt.Format(time.RFC3339), prev.Version+1)
			r.src.log.Warn("changed file refused", "file", path, "reason", reason)
			cp, err := json.Marshal(r.ledger)
			if err != nil {
				return nil, nil, err
			}
			return nil, &extract.Chunk{Rejects: []extract.Reject{{File: path, Reason: reason}}, Checkpoint: cp}, nil
		}
		entry.Version = prev.Version + 1
		r.src.log.Info("reloading changed file as a new version", "file", path, "version", entry.Version)
	}
	return r.open(path, fi, entry)
}

// open starts reading a file that needs loading.
func (r *reader) open(path string, fi os.FileInfo, entry fileEntry) (*openFile, *extract.Chunk, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, fmt.Errorf("opening %s: %w", path, err)
	}
	of := &openFile{path: path, info: fi, f: f, hash: sha256.New(), entry: entry, comma: []byte(string(r.plan.delim)), fileName: newFileName(path)}
	of.hashed = io.TeeReader(f, of.hash)
	if err := r.startRows(of); err != nil {
		of.close()
		return nil, nil, err
	}
	return of, nil, nil
}

// finishFile drains the file through the hash and returns the checkpoint.
func (r *reader) finishFile() (json.RawMessage, error) {
	of := r.cur
	r.cur = nil
	defer of.close()
	if of.pipe != nil {
		of.pipe.stop() // it has read to the end: this only waits for its goroutines
		of.pipe = nil
	}
	if _, err := io.Copy(io.Discard, of.hashed); err != nil {
		return nil, fmt.Errorf("reading %s: %w", of.path, err)
	}
	if of.headers > 0 {
		r.src.log.Info("skipped header rows repeated inside the file", "file", of.path, "rows", of.headers)
	}
	if of.rounded > 0 {
		// Money is DECIMAL(18,4): more places are rounded, and said so
		// (float artefacts such as 16.950000000000003 are the usual cause).
		r.src.log.Warn("numbers with more than 4 decimal places rounded to 4", "file", of.path, "rows", of.rounded, "first", of.roundEx)
	}
	of.entry.Size, of.entry.ModTime = of.info.Size(), of.info.ModTime()
	of.entry.SHA256 = hex.EncodeToString(of.hash.Sum(nil))
	of.entry.Rows, of.entry.Rejected = of.loaded, of.refused
	of.entry.LoadedAt = time.Now().UTC()
	of.entry.Settings = r.plan.settingsID
	r.ledger.Files[of.path] = of.entry
	r.ledger.recordSettings(r.plan.settingsID, r.plan.settings)
	return json.Marshal(r.ledger)
}

func hashFile(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("opening %s: %w", path, err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("hashing %s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// startRows sets up decompression, decoding and the record parser, and checks
// the header against the mapping.
func (r *reader) startRows(of *openFile) error {
	tr, skipped, err := r.openText(of)
	if err != nil {
		return err
	}
	if r.plan.format == "fixed" {
		return r.startFixed(of, tr, skipped)
	}
	sp := newSplitter(tr, of.comma, skipped)
	if !r.plan.header {
		return r.startHeaderless(of, sp)
	}
	return r.startWithHeader(of, sp)
}

// openText opens the file's text: gunzipped if it is gzip, decoded to UTF-8,
// and past the skip_lines it starts with (it returns how many it skipped).
func (r *reader) openText(of *openFile) (*bufio.Reader, int64, error) {
	p := r.plan
	var in io.Reader = of.hashed
	gz := p.gzip == "true" || (p.gzip == "auto" && strings.HasSuffix(strings.ToLower(of.path), ".gz"))
	if gz {
		zr, err := gzip.NewReader(in)
		if err != nil {
			return nil, 0, fmt.Errorf("%s: not a gzip file (set gzip: false if it is plain text): %w", of.path, err)
		}
		in = zr
	}
	br := bufio.NewReaderSize(in, 1<<20)
	text, enc, why, err := p.decode(of.path, br)
	if err != nil {
		return nil, 0, err
	}
	if why != "" {
		level := slog.LevelInfo
		if why == "valid UTF-8" {
			level = slog.LevelDebug
		}
		r.src.log.Log(context.Background(), level, "encoding chosen", "file", of.path, "encoding", enc, "why", why)
	}
	tr := bufio.NewReaderSize(text, 1<<20)
	var skipped int64
	for ; skipped < int64(p.skip); skipped++ {
		if _, err := tr.ReadString('\n'); err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			return nil, 0, fmt.Errorf("reading %s: %w", of.path, err)
		}
	}
	return tr, skipped, nil
}

// startFixed starts a fixed-width file: its fields are named by the
// fields key, so the file is shaped from a sample of its lines.
func (r *reader) startFixed(of *openFile, tr *bufio.Reader, skipped int64) error {
	p := r.plan
	of.rows = &fixedRows{s: bufio.NewScanner(tr), line: skipped, fields: p.fields, path: of.path}
	of.rows.s.Buffer(make([]byte, 64*1024), 16*1024*1024)
	sample, err := of.rows.sample(sampleRows)
	if err != nil {
		return err
	}
	of.sample = sample
	names := make([]string, len(p.fields))
	for i, f := range p.fields {
		names[i] = f.Name
	}
	if err := r.shapeFile(of, names, func(i int) string { return names[i] }, newHeaderColumns(names)); err != nil {
		return err
	}
	p = r.plan
	idx := map[string]int{}
	for i, f := range p.fields {
		idx[f.Name] = i
	}
	of.colIdx = p.indexes(of, func(name string) int {
		if i, ok := idx[name]; ok {
			return i
		}
		return -1
	})
	return r.detect(of, sample)
}

// startHeaderless starts a csv/tsv file without a header: columns are named
// by position, and the first block is both the sample and the first data.
func (r *reader) startHeaderless(of *openFile, sp *splitter) error {
	p := r.plan
	first, err := sp.next()
	if errors.Is(err, io.EOF) {
		of.colIdx = p.indexes(of, func(name string) int { return headerIndex(name) })
		r.startPipeline(of, sp, nil)
		return nil
	}
	if err != nil {
		return fmt.Errorf("reading %s: %w", of.path, err)
	}
	of.sample = of.sampleCSV(first)
	if p.raw && len(of.sample) > 0 {
		// Headerless: columns are named by position, as many as the
		// first record has.
		names := make([]string, len(of.sample[0]))
		for i := range names {
			names[i] = fmt.Sprintf("column_%d", i+1)
		}
		if err := r.shapeFile(of, names, func(i int) string { return strconv.Itoa(i + 1) }, headerColumns{}); err != nil {
			return err
		}
		p = r.plan
	}
	of.colIdx = p.indexes(of, func(name string) int { return headerIndex(name) })
	of.need = of.needFields()
	if err := r.detect(of, of.sample); err != nil {
		return err
	}
	of.sample = nil
	r.startPipeline(of, sp, first)
	return nil
}

// startWithHeader starts a csv/tsv file whose first record is its header:
// the header names the columns the mapping finds, and the rest of its block
// is data.
func (r *reader) startWithHeader(of *openFile, sp *splitter) error {
	p := r.plan
	var first *block
	var hdr []string
	for hdr == nil {
		b, err := sp.next()
		if errors.Is(err, io.EOF) {
			of.colIdx = p.indexes(of, func(string) int { return -1 })
			r.startPipeline(of, sp, nil)
			return nil // an empty file is a file with no rows
		}
		if err != nil {
			return fmt.Errorf("reading %s: %w", of.path, err)
		}
		hp := newCSVParser(b.buf, b.line, of.comma)
		fields, line, err, ok := hp.next()
		if !ok {
			continue // a block of empty lines
		}
		if err != nil {
			return fmt.Errorf("%s line %d: reading header: %w", of.path, line, err)
		}
		for _, f := range fields {
			hdr = append(hdr, string(f))
		}
		b.buf, b.line = b.buf[hp.pos:], hp.line
		first = b
	}
	of.header = make([][]byte, len(hdr))
	for i, h := range hdr {
		of.header[i] = []byte(h)
	}
	if first != nil {
		of.sample = of.sampleCSV(first)
	}
	hc := newHeaderColumns(hdr)
	if err := r.shapeFile(of, hdr, func(i int) string { return "#" + strconv.Itoa(i+1) }, hc); err != nil {
		return err
	}
	p = r.plan
	var missing, ambiguous []string
	of.colIdx = p.indexes(of, func(name string) int {
		i, err := hc.find(name)
		switch {
		case err != nil:
			ambiguous = append(ambiguous, err.Error())
		case i < 0:
			missing = append(missing, name)
		}
		return i
	})
	if len(ambiguous) > 0 {
		return fmt.Errorf("%s: %s", of.path, strings.Join(ambiguous, "; "))
	}
	if len(missing) > 0 {
		hint := ""
		if len(hdr) == 1 {
			hint = fmt.Sprintf("; the header has a single column, so the delimiter is probably not %q", string(p.delim))
		}
		return fmt.Errorf("%s: column(s) %s not found in header [%s]%s", of.path,
			strings.Join(quoteAll(missing), ", "), strings.Join(hdr, ", "), hint)
	}
	of.need = of.needFields()
	if err := r.detect(of, of.sample); err != nil {
		return err
	}
	of.width = len(hdr)
	of.sample = nil
	r.startPipeline(of, sp, first)
	return nil
}

// sampleCSV returns up to sampleRows records from the start of a block,
// without the header rows repeated in it.
func (of *openFile) sampleCSV(b *block) [][]string {
	hp := newCSVParser(b.buf, b.line, of.comma)
	var out [][]string
	for len(out) < sampleRows {
		fields, _, err, ok := hp.next()
		if !ok {
			break
		}
		if err != nil || (of.header != nil && sameRecord(fields, of.header)) {
			continue
		}
		rec := make([]string, len(fields))
		for i, f := range fields {
			rec[i] = string(f)
		}
		out = append(out, rec)
	}
	return out
}

// detect decides, from a sample of the file's records, how each timestamp
// column is written, and logs what it found per column.
func (r *reader) detect(of *openFile, sample [][]string) error {
	p := r.plan
	var numCols, numSampled []int
	var votes []numVote
	for i, c := range p.columns {
		idx := of.colIdx[i]
		if c.constant != nil && c.typ == extract.Timestamp {
			g, _, err := detectLayout([]string{string(c.constant)}, p.userTS, p.loc)
			if err != nil {
				return fmt.Errorf("column %q (%s): %w", c.name, c.source, err)
			}
			of.ts[i] = g
			continue
		}
		if idx < 0 || (c.typ != extract.Timestamp && c.typ != extract.Float && c.typ != extract.Decimal && c.typ != extract.Int) {
			continue
		}
		var values []string
		for _, rec := range sample {
			if idx < len(rec) {
				if v := strings.TrimSpace(rec[idx]); v != "" {
					values = append(values, v)
				}
			}
		}
		if c.typ != extract.Timestamp {
			if p.decimal == nil {
				v, err := voteNumbers(values)
				if err != nil {
					return fmt.Errorf("%s: column %q (%s): %w", of.path, c.name, c.source, err)
				}
				numCols, votes = append(numCols, i), append(votes, v)
				numSampled = append(numSampled, len(values))
			}
			continue
		}
		g, fit, err := detectLayout(values, p.userTS, p.loc)
		if err != nil {
			return fmt.Errorf("%s: column %q (%s): %w", of.path, c.name, c.source, err)
		}
		of.ts[i] = g
		r.src.log.Info("detected timestamp layout", "file", of.path, "column", c.name, "source", c.source,
			"layout", g.name, "sampled", len(values), "fit", fit)
	}
	formats, errs := decideNumbers(votes)
	for k, i := range numCols {
		c := p.columns[i]
		if errs[k] != nil {
			return fmt.Errorf("%s: column %q (%s): %w", of.path, c.name, c.source, errs[k])
		}
		of.num[i] = formats[k]
		if votes[k].mark != 0 || formats[k].decimal == ',' {
			r.src.log.Info("detected number format", "file", of.path, "column", c.name, "source", c.source,
				"format", formats[k].String(), "sampled", numSampled[k])
		}
	}
	return nil
}

// indexes maps every mapped column to its source position, and the parts of
// composite keys to theirs (of.partIdx).
func (p *plan) indexes(of *openFile, find func(string) int) []int {
	idx := make([]int, len(p.columns))
	of.partIdx = make([][]int, len(p.columns))
	of.ts = make([]*tsGroup, len(p.columns))
	of.num = make([]*numFormat, len(p.columns))
	for i := range of.num {
		of.num[i] = &numFormat{decimal: '.'}
		if p.decimal != nil {
			of.num[i] = p.decimal
		}
	}
	for i, c := range p.columns {
		idx[i] = -1
		switch {
		case c.constant != nil:
		case c.parts != nil:
			for _, part := range c.parts {
				of.partIdx[i] = append(of.partIdx[i], find(part))
			}
		case c.source != "":
			idx[i] = find(c.source)
		}
	}
	return idx
}

// needFields is how many fields a CSV record needs: the highest source
// position of a mapped column or key part, plus one.
func (of *openFile) needFields() int {
	m := maxIndex(of.colIdx)
	for _, parts := range of.partIdx {
		m = max(m, maxIndex(parts))
	}
	return m + 1
}

// headerIndex lets headerless CSV map columns by 1-based position ("1", "2"…).
func headerIndex(name string) int {
	var n int
	if _, err := fmt.Sscanf(name, "%d", &n); err != nil || n < 1 {
		return -1
	}
	return n - 1
}

func quoteAll(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = fmt.Sprintf("%q", s)
	}
	return out
}

// decode strips a UTF-8 BOM and converts GBK/GB18030 to UTF-8. With
// encoding auto, detectEncoding chooses from the first 64 KiB; why says
// what it chose and why ("" when the encoding was declared or a BOM said).
func (p *plan) decode(path string, br *bufio.Reader) (text io.Reader, enc, why string, err error) {
	head, err := br.Peek(64 * 1024)
	if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, bufio.ErrBufferFull) {
		return nil, "", "", fmt.Errorf("reading %s: %w", path, err)
	}
	if bytes.HasPrefix(head, []byte{0xEF, 0xBB, 0xBF}) {
		br.Discard(3)
		return br, "utf-8", "", nil
	}
	if bytes.HasPrefix(head, []byte{0xFF, 0xFE}) || bytes.HasPrefix(head, []byte{0xFE, 0xFF}) {
		return nil, "", "", fmt.Errorf("%s is UTF-16 encoded; export it as UTF-8, GBK or GB18030", path)
	}
	enc = p.encoding
	if enc == "auto" {
		enc, why = detectEncoding(head)
	}
	switch enc {
	case "gbk":
		return transform.NewReader(br, simplifiedchinese.GBK.NewDecoder()), enc, why, nil
	case "gb18030":
		return transform.NewReader(br, simplifiedchinese.GB18030.NewDecoder()), enc, why, nil
	}
	return br, enc, why, nil
}

// fixedRows cuts lines into fields by character position.
type fixedRows struct {
	s      *bufio.Scanner
	line   int64
	fields []fixedField
	path   string
	out    []string

	ahead      [][]string // records read by sample, not handed out yet
	aheadLines []int64
	eof        bool
}

// sample reads up to n records ahead and keeps them for next.
func (f *fixedRows) sample(n int) ([][]string, error) {
	var out [][]string
	for len(out) < n {
		rec, line, err := f.scan()
		if errors.Is(err, io.EOF) {
			f.eof = true
			break
		}
		if err != nil {
			return nil, err
		}
		rec = slices.Clone(rec)
		out = append(out, rec)
		f.ahead = append(f.ahead, rec)
		f.aheadLines = append(f.aheadLines, line)
	}
	return out, nil
}

func (f *fixedRows) next() ([]string, int64, error) {
	if len(f.ahead) > 0 {
		rec, line := f.ahead[0], f.aheadLines[0]
		f.ahead, f.aheadLines = f.ahead[1:], f.aheadLines[1:]
		return rec, line, nil
	}
	if f.eof {
		return nil, 0, io.EOF
	}
	return f.scan()
}

func (f *fixedRows) scan() ([]string, int64, error) {
	for f.s.Scan() {
		f.line++
		text := strings.TrimRight(f.s.Text(), "\r")
		if strings.TrimSpace(text) == "" {
			continue
		}
		runes := []rune(text)
		if cap(f.out) < len(f.fields) {
			f.out = make([]string, len(f.fields))
		}
		f.out = f.out[:len(f.fields)]
		for i, fd := range f.fields {
			start, end := fd.Start-1, fd.Start-1+fd.Width
			if start >= len(runes) {
				f.out[i] = ""
				continue
			}
			if end > len(runes) {
				end = len(runes)
			}
			f.out[i] = strings.TrimSpace(string(runes[start:end]))
		}
		return f.out, f.line, nil
	}
	if err := f.s.Err(); err != nil {
		return nil, f.line + 1, fmt.Errorf("reading %s: %w", f.path, err)
	}
	return nil, 0, io.EOF
}

func rawLine(fields [][]byte, delim rune) string {
	s := string(bytes.Join(fields, []byte(string(delim))))
	if len(s) > 1000 {
		s = s[:1000] + "…"
	}
	return strings.ToValidUTF8(s, "\uFFFD")
}
