package files

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"reflect"
	"sort"
	"strings"

	"github.com/cdwhq/cdw/internal/config"
)

// Parse settings: the ledger records, per file, the settings it was read
// with (a short id; the settings themselves once per ledger). When they
// change — timestamp_formats added after every row was quarantined, say —
// the files read with the old ones are read again as a new version, which
// supersedes the old rows. Before, a fixed config reloaded nothing and only
// --full-refresh helped, without a word.

// notParse are the keys that say which files to read and what to do with
// the result, not how to read a file: changing them re-reads nothing.
var notParse = map[string]bool{"path": true, "on_change": true, "max_rejected": true, "allow_empty": true}

// parseSettings returns the entity's parse settings as JSON keyed by their
// config names, and their id.
func parseSettings(o entityOptions) (id string, js json.RawMessage) {
	m := map[string]any{}
	v, t := reflect.ValueOf(o), reflect.TypeOf(o)
	for i := 0; i < t.NumField(); i++ {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ",")
		if name == "" || notParse[name] || v.Field(i).IsZero() {
			continue
		}
		val := v.Field(i).Interface()
		if n, ok := val.(config.Node); ok {
			// The value as written, not the node: a node carries its line,
			// and an edit elsewhere in cdw.yaml must not re-read every file.
			var plain any
			if n.Y == nil || n.Y.Decode(&plain) != nil {
				continue
			}
			val = plain
		}
		m[name] = val
	}
	js, err := json.Marshal(m) // map keys sorted: the same settings, the same id
	if err != nil {
		js = []byte(`{"unencodable": true}`)
	}
	sum := sha256.Sum256(js)
	return hex.EncodeToString(sum[:8]), js
}

// changedKeys names the settings that differ between two parse settings.
func changedKeys(old, cur json.RawMessage) []string {
	var a, b map[string]json.RawMessage
	if json.Unmarshal(old, &a) != nil || json.Unmarshal(cur, &b) != nil {
		return nil
	}
	var out []string
	for k, v := range a {
		if string(b[k]) != string(v) {
			out = append(out, k)
		}
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}

// recordSettings adds settings under id and drops settings no file refers
// to any more, so the ledger holds one copy per settings in use.
func (l *ledger) recordSettings(id string, js json.RawMessage) {
	if l.Settings == nil {
		l.Settings = map[string]json.RawMessage{}
	}
	l.Settings[id] = js
	used := map[string]bool{}
	for _, f := range l.Files {
		used[f.Settings] = true
	}
	for k := range l.Settings {
		if !used[k] {
			delete(l.Settings, k)
		}
	}
}
