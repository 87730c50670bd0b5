package extract

import "strings"

// advice maps a fragment of a reject reason to what to change. The
// fragments are the files source's reasons, which are most of them;
// reasons of other sources get the generic advice.
var advice = []struct{ fragment, fix string }{
	{"is not a timestamp", "add the column's layout to timestamp_formats (a Go layout such as \"2006/01/02 15:04:05.000\"), or timezone if it lacks a zone"},
	{"not valid text in the file's encoding", "set encoding (utf-8, gbk or gb18030) to what the file is written in, or convert it to UTF-8"},
	{"the header has", "check the quoting of the file, or set extra_fields: keep to keep the extra fields in _extra"},
	{"expected at least", "check delimiter and quoting: the row has fewer fields than the mapped columns need"},
	{"is empty", "map the required column to a column that is filled, or fix the rows in the source"},
	{"is not a finite number", "fix the value in the source: NaN and Inf are no amounts"},
	{"is out of range", "fix the value in the source, or check the column mapping (an id mapped as an amount?)"},
	{"not a number", "map a numeric column, or fix the values (decimal point, no currency signs)"},
	{"not a whole number", "map a whole-number column, or fix the values"},
	{"not a boolean", "use true/false, yes/no or 1/0 in the column"},
	{"on_change is reject", "set on_change: reload to load the changed file as a new version"},
}

// Advice says what to change about rejects with this reason, or "" when
// cdw knows nothing better than looking at the rows.
func Advice(reason string) string {
	for _, a := range advice {
		if strings.Contains(reason, a.fragment) {
			return a.fix
		}
	}
	return ""
}
