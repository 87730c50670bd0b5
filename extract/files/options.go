package files

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/cdwhq/cdw/extract"
	"github.com/cdwhq/cdw/internal/config"
)

// options is a files source's config.
type options struct {
	Entities map[string]config.Node `yaml:"entities" required:"true"`
}

// entityOptions configures how one entity is read from files.
type entityOptions struct {
	Path      string            `yaml:"path" required:"true"` // glob, relative to the config file
	Format    string            `yaml:"format"`               // csv (default), tsv, fixed
	Delimiter string            `yaml:"delimiter"`            // csv only; default "," (tsv: tab)
	Header    *bool             `yaml:"header"`               // csv: first line names columns (default true)
	Encoding  string            `yaml:"encoding"`             // auto (default), utf-8, gbk, gb18030
	Gzip      string            `yaml:"gzip"`                 // auto (default: by .gz suffix), true, false
	SkipLines int               `yaml:"skip_lines"`           // lines to skip before the header / data
	Columns   config.Node       `yaml:"columns"`              // canonical column → source column, a list of them (composite key) or a constant; required but for raw tables
	OnNew     string            `yaml:"on_new_columns"`       // keep (default), ignore or fail: unmapped source columns
	Extra     map[string]string `yaml:"extra"`                // pass-through columns: raw name → source column
	Fields    []fixedField      `yaml:"fields"`               // fixed: the record layout
	Timezone  string            `yaml:"timezone"`             // for timestamps without a zone; default UTC
	Formats   []string          `yaml:"timestamp_formats"`
	Decimal   string            `yaml:"decimal_separator"` // auto (default: detected per column), "." or ","
	OnChange  string            `yaml:"on_change"`         // reload (default) or reject
	// ExtraFields: a CSV row with more (non-empty) fields than the header
	// is a reject (default), or keep puts the extras in _extra.
	ExtraFields string `yaml:"extra_fields"`
	// MaxRejected is the reject budget per extract: "1%" (default), "0",
	// "100%", or a row count.
	MaxRejected string `yaml:"max_rejected"`
	// AllowEmpty makes a path that matches no file a normal, empty extract
	// instead of an error.
	AllowEmpty bool `yaml:"allow_empty"`
}

// fixedField is one column of a fixed-width layout: 1-based start, width in
// characters (not bytes, so GBK text lines up as the exporter meant).
type fixedField struct {
	Name  string `yaml:"name" required:"true"`
	Start int    `yaml:"start" required:"true"`
	Width int    `yaml:"width" required:"true"`
}

// plan is a validated entityOptions.
type plan struct {
	entity     extract.Entity
	glob       string
	format     string
	delim      rune
	header     bool
	encoding   string
	gzip       string
	skip       int
	columns    []mapped // canonical and extra columns in output order
	fields     []fixedField
	loc        *time.Location
	userTS     *tsGroup   // timestamp_formats, nil when not set
	decimal    *numFormat // decimal_separator, nil = detect per column
	onChange   string
	lineNoCol  int // index in columns of orders.line_no when it is unmapped, else -1
	extraCol   int // index in columns of _extra under extra_fields: keep, else -1
	budget     extract.Budget
	allowEmpty bool
	settingsID string          // parseSettings
	settings   json.RawMessage // parseSettings
	raw        bool            // a raw table: every source column, types inferred per file
	onNew      string          // keep, ignore or fail
	// qtyCol, priceCol index orders.quantity and unit_price when amount is
	// unmapped (staging then uses their product as the amount), else -1.
	qtyCol, priceCol int
}

// mapped is one output column and the source column it comes from.
type mapped struct {
	name   string
	typ    extract.Type
	req    bool
	source string // header / fixed field name; "" = not in source (NULL)
	// parts, when not nil, are the source columns of a composite key,
	// joined with extract.KeySeparator; source then names them for messages.
	parts []string
	// constant, when not nil, is the value of every row (quantity: 1,
	// channel: {value: online}); source then shows it for messages.
	constant []byte
}

// constantPrefix marks a constant in the map sourceColumns returns.
const constantPrefix = "\x00="

// sourceColumns decodes the columns mapping: canonical column → a source
// column, or a list of source columns whose values are joined into one key.
func sourceColumns(ent extract.Entity, n config.Node, header bool) (map[string][]string, error) {
	if n.Y == nil || n.Y.Kind != yaml.MappingNode {
		return nil, n.Errorf("expected a mapping of canonical column to source column, e.g. {order_id: InvoiceNo}")
	}
	out := map[string][]string{}
	for _, canon := range n.Keys() {
		vn := n.Get(canon)
		c, ok := ent.Column(canon)
		if !ok {
			return nil, vn.Errorf("%s has no column %q (columns: %s)", ent.Name, canon, columnNames(ent))
		}
		if _, dup := out[canon]; dup {
			return nil, vn.Errorf("key given twice")
		}
		var parts []string
		switch vn.Y.Kind {
		case yaml.ScalarNode:
			parts = []string{vn.Y.Value}
			switch vn.Y.ShortTag() {
			case "!!int", "!!float", "!!bool":
				// An unquoted number is a constant (quantity: 1); headerless
				// files map columns by position, so they write {value: 1}.
				if header {
					parts = []string{constantPrefix + vn.Y.Value}
				}
			}
		case yaml.MappingNode:
			if _, ok, err := extract.MappingSQL(vn, c); ok || err != nil {
				// Computed in the raw view (pipelines), from the columns
				// this file lands: nothing to read here.
				if err != nil {
					return nil, err
				}
				continue
			}
			var cv struct {
				Value *string `yaml:"value" required:"true"`
			}
			if err := vn.Decode(&cv); err != nil {
				return nil, err
			}
			parts = []string{constantPrefix + *cv.Value}
		case yaml.SequenceNode:
			for _, item := range vn.Y.Content {
				if item.Kind != yaml.ScalarNode {
					return nil, vn.Errorf("expected a list of source column names, e.g. [customer, day]")
				}
				parts = append(parts, item.Value)
			}
		default:
			return nil, vn.Errorf("expected a source column name, a list of them for a composite key (e.g. [customer, day]), a constant ({value: online}) or an expression ({sql: \"price * qty\"})")
		}
		for i, part := range parts {
			if part == "" {
				return nil, vn.Errorf("empty source column name")
			}
			if slices.Contains(parts[:i], part) {
				return nil, vn.Errorf("source column %q listed twice", part)
			}
		}
		if len(parts) == 0 {
			return nil, vn.Errorf("expected at least one source column")
		}
		if len(parts) > 1 && c.Type != extract.String {
			return nil, vn.Errorf("%s is a %s column; only text columns such as ids take a list of source columns", canon, c.Type)
		}
		out[canon] = parts
	}
	return out, nil
}

func newPlan(baseDir string, ent extract.Entity, n config.Node) (*plan, error) {
	var o entityOptions
	if err := n.Decode(&o); err != nil {
		return nil, err
	}
	p := &plan{entity: ent, header: true, encoding: "auto", gzip: "auto", onChange: "reload", loc: time.UTC, lineNoCol: -1, extraCol: -1, qtyCol: -1, priceCol: -1}
	p.settingsID, p.settings = parseSettings(o)
	if err := p.setLayout(baseDir, o, n); err != nil {
		return nil, err
	}
	if err := p.setParsing(o, n); err != nil {
		return nil, err
	}
	p.fields = o.Fields
	for _, f := range o.Fields {
		if f.Start < 1 || f.Width < 1 {
			return nil, n.Get("fields").Errorf("field %q: start and width must be at least 1", f.Name)
		}
	}
	p.onNew = "keep"
	switch o.OnNew {
	case "", "keep", "ignore", "fail":
		if o.OnNew != "" {
			p.onNew = o.OnNew
		}
	default:
		return nil, n.Get("on_new_columns").Errorf("on_new_columns must be keep, ignore or fail, got %q", o.OnNew)
	}
	if ent.Raw {
		if o.Columns.Y != nil || len(o.Extra) > 0 {
			return nil, n.Errorf("%s is a raw table (no entity of that name: %s): its columns land as the file has them; map them in a SQL model, or name a canonical entity", ent.Name, strings.Join(extract.EntityNames(), ", "))
		}
		p.raw = true
		return p, nil
	}
	if err := p.mapColumns(ent, o, n); err != nil {
		return nil, err
	}
	if err := p.addExtras(ent, o, n); err != nil {
		return nil, err
	}
	return p, nil
}

// setLayout reads the keys that say where the files are and how their bytes
// split into rows and fields: path, format, delimiter, header, encoding,
// gzip and skip_lines.
func (p *plan) setLayout(baseDir string, o entityOptions, n config.Node) error {
	p.glob = o.Path
	if !filepath.IsAbs(p.glob) {
		p.glob = filepath.Join(baseDir, p.glob)
	}
	if _, err := filepath.Match(p.glob, ""); err != nil {
		return n.Get("path").Errorf("bad file pattern %q: %v", o.Path, err)
	}
	p.format = o.Format
	switch o.Format {
	case "", "csv":
		p.format, p.delim = "csv", ','
	case "tsv":
		p.delim = '\t'
	case "fixed":
		if len(o.Fields) == 0 {
			return n.Errorf("format fixed needs fields: [{name, start, width}, …]")
		}
		p.header = false
	default:
		return n.Get("format").Errorf("unknown format %q (use csv, tsv or fixed)", o.Format)
	}
	if o.Delimiter != "" {
		r := []rune(o.Delimiter)
		if o.Delimiter == `\t` {
			r = []rune{'\t'}
		}
		if len(r) != 1 || p.format == "fixed" {
			return n.Get("delimiter").Errorf("delimiter must be one character (csv/tsv only), got %q", o.Delimiter)
		}
		p.delim = r[0]
	}
	if o.Header != nil {
		if p.format == "fixed" && *o.Header {
			return n.Get("header").Errorf("fixed-width files have no header; use skip_lines")
		}
		p.header = *o.Header
	}
	switch o.Encoding {
	case "", "auto":
	case "utf-8", "utf8", "UTF-8":
		p.encoding = "utf-8"
	case "gbk", "GBK", "gb2312", "GB2312":
		p.encoding = "gbk"
	case "gb18030", "GB18030":
		p.encoding = "gb18030"
	default:
		return n.Get("encoding").Errorf("unknown encoding %q (use auto, utf-8, gbk or gb18030)", o.Encoding)
	}
	switch o.Gzip {
	case "", "auto", "true", "false":
		if o.Gzip != "" {
			p.gzip = o.Gzip
		}
	default:
		return n.Get("gzip").Errorf("gzip must be auto, true or false")
	}
	if o.SkipLines < 0 {
		return n.Get("skip_lines").Errorf("must not be negative")
	}
	p.skip = o.SkipLines
	return nil
}

// setParsing reads the keys that say how values are read and what is
// tolerated: max_rejected, on_change, timezone, decimal_separator and
// timestamp_formats.
func (p *plan) setParsing(o entityOptions, n config.Node) error {
	p.budget, p.allowEmpty = extract.DefaultBudget, o.AllowEmpty
	if o.MaxRejected != "" {
		b, err := extract.ParseBudget(o.MaxRejected)
		if err != nil {
			return n.Get("max_rejected").Errorf("%v", err)
		}
		p.budget = b
	}
	switch o.OnChange {
	case "", "reload", "reject":
		if o.OnChange != "" {
			p.onChange = o.OnChange
		}
	default:
		return n.Get("on_change").Errorf("on_change must be reload or reject, got %q", o.OnChange)
	}
	if o.Timezone != "" {
		loc, err := time.LoadLocation(o.Timezone)
		if err != nil {
			return n.Get("timezone").Errorf("unknown time zone %q", o.Timezone)
		}
		p.loc = loc
	}
	switch o.Decimal {
	case "", "auto":
	case ".", ",":
		p.decimal = &numFormat{decimal: o.Decimal[0]}
	default:
		return n.Get("decimal_separator").Errorf("decimal_separator must be auto, \".\" or \",\", got %q", o.Decimal)
	}
	if len(o.Formats) > 0 {
		for i, l := range o.Formats {
			if !validLayout(l) {
				return n.Get("timestamp_formats").Errorf("entry %d: %q is not a Go time layout (write the reference time, e.g. 2006-01-02 15:04:05)", i+1, l)
			}
		}
		// ISO 8601 is read besides the given layouts: it cannot be mistaken for
		// another layout, and a fix for the odd rows must not reject the ISO ones.
		p.userTS = &tsGroup{name: "timestamp_formats " + strings.Join(o.Formats, ", "), layouts: o.Formats, iso: true, suggest: o.Formats[0]}
	}
	return nil
}

// mapColumns maps the canonical entity's columns onto the file's columns
// (or fields, or constants) as the columns key says.
func (p *plan) mapColumns(ent extract.Entity, o entityOptions, n config.Node) error {
	if o.Columns.Y == nil {
		return n.Errorf("missing required key \"columns\"")
	}
	cols, err := sourceColumns(ent, o.Columns, p.header)
	if err != nil {
		return err
	}
	fieldNames := map[string]bool{}
	for _, f := range p.fields {
		fieldNames[f.Name] = true
	}
	for _, c := range ent.Columns {
		parts := cols[c.Name]
		if c.Required && len(parts) == 0 {
			return n.Get("columns").Errorf("required column %q of %s is not mapped", c.Name, ent.Name)
		}
		if len(parts) == 1 && strings.HasPrefix(parts[0], constantPrefix) {
			v := strings.TrimPrefix(parts[0], constantPrefix)
			if ent.Name == "orders" && c.Name == "line_no" {
				return n.Get("columns").Errorf("line_no cannot be a constant: it tells the lines of an order apart")
			}
			p.columns = append(p.columns, mapped{name: c.Name, typ: c.Type, req: c.Required, source: "constant " + strconv.Quote(v), constant: []byte(v)})
			continue
		}
		for _, src := range parts {
			if p.format == "fixed" && !fieldNames[src] {
				return n.Get("columns").Errorf("column %q maps to %q, which is not one of the fixed-width fields", c.Name, src)
			}
		}
		if ent.Name == "orders" && c.Name == "line_no" && len(parts) == 0 {
			p.lineNoCol = len(p.columns)
		}
		m := mapped{name: c.Name, typ: c.Type, req: c.Required}
		switch len(parts) {
		case 0:
		case 1:
			m.source = parts[0]
		default:
			m.source, m.parts = strings.Join(parts, "+"), parts
		}
		p.columns = append(p.columns, m)
	}
	if ent.Name == "orders" && len(cols["amount"]) == 0 && len(cols["quantity"]) > 0 && len(cols["unit_price"]) > 0 {
		for i, c := range p.columns {
			switch c.name {
			case "quantity":
				p.qtyCol = i
			case "unit_price":
				p.priceCol = i
			}
		}
	}
	return nil
}

// addExtras appends the columns beyond the entity's: the extra key's named
// columns and, with extra_fields: keep, one column for surplus fields.
func (p *plan) addExtras(ent extract.Entity, o entityOptions, n config.Node) error {
	extras := make([]string, 0, len(o.Extra))
	for name := range o.Extra {
		extras = append(extras, name)
	}
	sort.Strings(extras)
	for _, name := range extras {
		src := o.Extra[name]
		if _, clash := ent.Column(name); clash {
			return n.Get("extra").Errorf("%q is already a column of %s; map it under columns", name, ent.Name)
		}
		if !validName(name) {
			return n.Get("extra").Errorf("column name %q: use lower case letters, digits and _", name)
		}
		p.columns = append(p.columns, mapped{name: name, typ: extract.String, source: src})
	}
	switch o.ExtraFields {
	case "", "reject":
	case "keep":
		if p.format == "fixed" {
			return n.Get("extra_fields").Errorf("extra_fields applies to csv and tsv, not fixed-width files")
		}
		p.extraCol = len(p.columns)
		p.columns = append(p.columns, mapped{name: colExtra, typ: extract.String})
	default:
		return n.Get("extra_fields").Errorf("extra_fields must be reject or keep, got %q", o.ExtraFields)
	}
	return nil
}

func columnNames(e extract.Entity) string {
	s := ""
	for i, c := range e.Columns {
		if i > 0 {
			s += ", "
		}
		s += c.Name
	}
	return s
}

func validName(s string) bool {
	if s == "" || s[0] == '_' {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_') {
			return false
		}
	}
	return true
}

// validLayout reports whether a Go layout formats a time other than the
// reference time differently from itself and parses it back, which catches
// YYYY-MM-DD and other non-layouts.
func validLayout(l string) bool {
	s := time.Date(2021, 3, 14, 15, 9, 26, 0, time.UTC).Format(l)
	if s == l {
		return false
	}
	_, err := time.Parse(l, s)
	return err == nil
}

func (p *plan) String() string { return fmt.Sprintf("%s %s", p.format, p.glob) }
