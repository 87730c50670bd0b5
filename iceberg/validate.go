package iceberg

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
)

// ValidateV2 checks one table metadata file against the Iceberg v2 table
// spec's rules that a reader relies on: the required fields, schema ids
// (current-schema-id names a schema, field ids unique and ≤ last-column-id),
// partition spec and sort order ids, and snapshot lineage (every parent
// kept is older and has a lower sequence number, current-snapshot-id and
// the main ref name a kept snapshot, sequence numbers ≤ last-sequence-number,
// each snapshot has a manifest list that exists and a summary operation).
// Parents that expired are allowed, as the spec allows.
func ValidateV2(path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	var errs []error
	bad := func(format string, a ...any) {
		errs = append(errs, fmt.Errorf("%s: "+format, append([]any{path}, a...)...))
	}
	num := func(k string) (float64, bool) { v, ok := m[k].(float64); return v, ok }
	if v, _ := num("format-version"); v != 2 {
		bad("format-version is %v, want 2", m["format-version"])
	}
	for _, k := range []string{"table-uuid", "location", "last-sequence-number", "last-updated-ms", "last-column-id",
		"schemas", "current-schema-id", "partition-specs", "default-spec-id", "last-partition-id", "sort-orders", "default-sort-order-id"} {
		if _, ok := m[k]; !ok {
			bad("required field %s is missing", k)
		}
	}
	checkSchemas(m, bad)
	idIn := func(list, key string, want float64) bool {
		l, _ := m[list].([]any)
		for _, e := range l {
			if em, _ := e.(map[string]any); em[key] == want {
				return true
			}
		}
		return false
	}
	if v, _ := num("default-spec-id"); !idIn("partition-specs", "spec-id", v) {
		bad("default-spec-id %v names no partition spec", v)
	}
	if v, _ := num("default-sort-order-id"); !idIn("sort-orders", "order-id", v) {
		bad("default-sort-order-id %v names no sort order", v)
	}
	checkSnapshots(m, bad)
	return errors.Join(errs...)
}

// checkSchemas reports, through bad, schemas without an id, fields without
// id, name, type or required, field ids duplicated or above last-column-id,
// and a current-schema-id that names no schema.
func checkSchemas(m map[string]any, bad func(format string, a ...any)) {
	num := func(k string) (float64, bool) { v, ok := m[k].(float64); return v, ok }
	lastCol, _ := num("last-column-id")
	cur, _ := num("current-schema-id")
	schemas, _ := m["schemas"].([]any)
	found := false
	for _, s := range schemas {
		sm, _ := s.(map[string]any)
		id, ok := sm["schema-id"].(float64)
		if !ok {
			bad("a schema has no schema-id")
			continue
		}
		if id == cur {
			found = true
		}
		seen := map[float64]bool{}
		var walk func(fields []any)
		walk = func(fields []any) {
			for _, f := range fields {
				fm, _ := f.(map[string]any)
				fid, ok := fm["id"].(float64)
				if !ok || fm["name"] == nil || fm["type"] == nil || fm["required"] == nil {
					bad("schema %v: field %v lacks id, name, type or required", id, fm["name"])
					continue
				}
				if seen[fid] || fid > lastCol {
					bad("schema %v: field id %v duplicated or above last-column-id %v", id, fid, lastCol)
				}
				seen[fid] = true
				if t, ok := fm["type"].(map[string]any); ok {
					if sub, ok := t["fields"].([]any); ok {
						walk(sub)
					}
				}
			}
		}
		fields, _ := sm["fields"].([]any)
		walk(fields)
	}
	if !found {
		bad("current-schema-id %v names no schema", cur)
	}
}

// checkSnapshots reports, through bad, snapshots whose sequence numbers or
// parents are out of order, that lack a manifest list (or its file) or an
// operation, and a current snapshot that is not kept or not refs.main.
func checkSnapshots(m map[string]any, bad func(format string, a ...any)) {
	num := func(k string) (float64, bool) { v, ok := m[k].(float64); return v, ok }
	lastSeq, _ := num("last-sequence-number")
	snaps := map[float64]map[string]any{}
	list, _ := m["snapshots"].([]any)
	for _, s := range list {
		sm, _ := s.(map[string]any)
		id, _ := sm["snapshot-id"].(float64)
		snaps[id] = sm
	}
	for id, sm := range snaps {
		seq, _ := sm["sequence-number"].(float64)
		if seq > lastSeq || seq < 1 {
			bad("snapshot %v: sequence-number %v outside 1..last-sequence-number %v", id, seq, lastSeq)
		}
		if p, ok := sm["parent-snapshot-id"].(float64); ok {
			if ps, kept := snaps[p]; kept {
				pseq, _ := ps["sequence-number"].(float64)
				if pseq >= seq || ps["timestamp-ms"].(float64) > sm["timestamp-ms"].(float64) {
					bad("snapshot %v: parent %v is not older", id, p)
				}
			}
		}
		ml, _ := sm["manifest-list"].(string)
		if ml == "" {
			bad("snapshot %v has no manifest-list", id)
		} else if _, err := os.Stat(strings.TrimPrefix(ml, "file://")); err != nil {
			bad("snapshot %v: manifest list %s: %v", id, ml, err)
		}
		if sum, _ := sm["summary"].(map[string]any); sum["operation"] == nil {
			bad("snapshot %v: summary has no operation", id)
		}
	}
	if c, ok := m["current-snapshot-id"].(float64); ok && c != -1 {
		if snaps[c] == nil {
			bad("current-snapshot-id %v is not a kept snapshot", c)
		}
		refs, _ := m["refs"].(map[string]any)
		main, _ := refs["main"].(map[string]any)
		if main["snapshot-id"] != c {
			bad("refs.main %v differs from current-snapshot-id %v", main["snapshot-id"], c)
		}
	}
}
