package files

import (
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/cdwhq/cdw/extract"
)

// shapeFile fits the plan to one file's columns (names: header names, or
// fixed-width field names, in source order; src(i) addresses column i as a
// mapping would; hc finds mapped names among them). A raw table takes every
// column with a type inferred from the sample; a canonical entity keeps the
// columns nothing maps as text columns under their own names (on_new_columns:
// keep, the default), leaves them out (ignore) or stops (fail). r.plan and
// r.schema become the file's.
func (r *reader) shapeFile(of *openFile, names []string, src func(int) string, hc headerColumns) error {
	base := r.base
	r.plan, r.schema = base, base.schema()
	taken := map[string]bool{}
	for _, c := range base.columns {
		taken[c.name] = true
	}
	var add []mapped
	if base.raw {
		for i, h := range names {
			var values []string
			for _, rec := range of.sample {
				if i < len(rec) {
					if v := strings.TrimSpace(rec[i]); v != "" {
						values = append(values, v)
					}
				}
			}
			add = append(add, mapped{name: rawColumnName(h, i, taken), typ: inferType(values), source: src(i)})
		}
	} else if base.onNew != "ignore" && hc.pos != nil {
		used := map[int]bool{}
		for _, c := range base.columns {
			for _, s := range append([]string{c.source}, c.parts...) {
				if i, err := hc.find(s); err == nil && i >= 0 && c.constant == nil {
					used[i] = true
				}
			}
		}
		var unmapped []string
		for i, h := range names {
			if used[i] {
				continue
			}
			unmapped = append(unmapped, strconv.Quote(strings.TrimSpace(h)))
			add = append(add, mapped{name: rawColumnName(h, i, taken), typ: extract.String, source: src(i)})
		}
		if len(unmapped) > 0 && base.onNew == "fail" {
			return fmt.Errorf("%s: column(s) %s are neither mapped nor in extra; map them, list them under extra, or set on_new_columns: keep (land them in raw as text) or ignore",
				of.path, strings.Join(unmapped, ", "))
		}
		var fresh []string
		for _, m := range add {
			if !r.kept[m.name] {
				r.kept[m.name] = true
				fresh = append(fresh, m.name)
			}
		}
		if len(fresh) > 0 {
			r.src.log.Info("keeping unmapped columns in raw (on_new_columns: keep; set ignore to drop them)",
				"entity", base.entity.Name, "file", of.path, "columns", strings.Join(fresh, ","))
		}
	}
	if len(add) == 0 {
		return nil
	}
	fp := *base
	fp.columns = append(append([]mapped(nil), base.columns...), add...)
	r.plan, r.schema = &fp, fp.schema()
	return nil
}

// rawColumnName makes a header name a column name models can use unquoted:
// lower case, letters, digits and _ ("Order Item ID" → order_item_id); an
// empty or repeated name gets its position or a suffix.
func rawColumnName(h string, i int, taken map[string]bool) string {
	var b strings.Builder
	for _, r := range strings.TrimSpace(h) {
		switch {
		case unicode.IsLetter(r) || unicode.IsDigit(r):
			b.WriteRune(unicode.ToLower(r))
		case b.Len() > 0 && !strings.HasSuffix(b.String(), "_"):
			b.WriteByte('_')
		}
	}
	name := strings.TrimSuffix(b.String(), "_")
	if name == "" {
		name = fmt.Sprintf("column_%d", i+1)
	}
	if name[0] >= '0' && name[0] <= '9' || name[0] == '_' {
		name = "c_" + name
	}
	out := name
	for n := 2; taken[out]; n++ {
		out = fmt.Sprintf("%s_%d", name, n)
	}
	taken[out] = true
	return out
}

// inferType is the narrowest type every sampled value has: integers (without
// leading zeros, which ids keep), decimals of at most 4 places (exact),
// other numbers, true/false, timestamps in one
// detectable layout (but not bare digits, which stay numbers), else text.
func inferType(values []string) extract.Type {
	if len(values) == 0 {
		return extract.String
	}
	ints, floats, bools, digits := true, true, true, true
	for _, v := range values {
		if _, err := strconv.ParseInt(v, 10, 64); err != nil || (len(v) > 1 && (v[0] == '0' || strings.HasPrefix(v, "-0") || v[0] == '+')) {
			ints = false
		}
		lead := strings.TrimLeft(v, "+-")
		if _, err := strconv.ParseFloat(v, 64); err != nil || strings.ContainsAny(v, "xXpPnN_") ||
			(len(lead) > 1 && lead[0] == '0' && lead[1] != '.') { // 03149: a code, not a number
			floats = false
		}
		switch strings.ToLower(v) {
		case "true", "false":
		default:
			bools = false
		}
		if strings.Trim(v, "0123456789") != "" {
			digits = false
		}
	}
	comma := false
	if !floats && !ints {
		// Decimal commas (12,50; 1.234,56), as the file's number columns are read.
		if v, err := voteNumbers(values); err == nil && v.mark == ',' {
			f, ok := &numFormat{decimal: ','}, true
			for _, s := range values {
				n, good := f.normalize(s)
				if _, err := strconv.ParseFloat(n, 64); !good || err != nil {
					ok = false
					break
				}
			}
			floats, comma = ok, ok
		}
	}
	switch {
	case ints:
		return extract.Int
	case floats:
		// Prices and amounts (at most 4 places, below 1e14) stay exact.
		f := &numFormat{decimal: '.'}
		if comma {
			f.decimal = ','
		}
		for _, s := range values {
			n, ok := f.normalize(s)
			if _, rounded, err := extract.ParseDecimal(n); !ok || rounded || err != nil || strings.ContainsAny(n, "eE") {
				return extract.Float
			}
		}
		return extract.Decimal
	case bools:
		return extract.Bool
	case !digits:
		if g, fit, err := detectLayout(values, nil, time.UTC); err == nil && fit == len(values) && g.epoch == 0 {
			return extract.Timestamp
		}
	}
	return extract.String
}
