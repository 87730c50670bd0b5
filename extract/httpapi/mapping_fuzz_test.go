package httpapi

import (
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow/memory"
)

// FuzzMapPage feeds arbitrary response bodies through the page decoding and
// record mapping a read does: no panic, every failure is an error with a
// message, and a page maps to at most as many rows as it has records.
func FuzzMapPage(f *testing.F) {
	f.Add([]byte(`{"data":[{"id":"T1","requester":{"external_id":"C1"},"created_at":"2024-01-02T10:00:00Z","updated_at":1700000000,"satisfaction":{"score":4}}]}`))
	src, err := openSource(f.Context(), f.TempDir(), `base_url: http://127.0.0.1:1/api
entities:
  tickets:
    path: /tickets
    records: data
    timestamp_layouts: ["2006-01-02 15:04:05", "02.01.2006"]
    epoch: seconds
    passthrough: [tags, requester.name]
    fields: {ticket_id: id, customer_id: requester.external_id, created_at: created_at, resolved_at: solved_at, status: status, priority: priority, category: type, satisfaction: satisfaction.score, updated_at: updated_at}
`)
	if err != nil {
		f.Fatal(err)
	}
	m := src.(*Source).spec.entities[0].mapper
	f.Fuzz(func(t *testing.T, body []byte) {
		doc, err := decodeJSON(body)
		if err != nil {
			if strings.TrimSpace(err.Error()) == "" {
				t.Fatal("empty decode error")
			}
			return
		}
		records, err := pageRecords(doc, []string{"data"})
		if err != nil {
			if strings.TrimSpace(err.Error()) == "" {
				t.Fatal("empty page error")
			}
			return
		}
		rb := newRowBuilder(m, memory.DefaultAllocator)
		defer rb.release()
		vals := make([]value, len(m.cols))
		mapped := 0
		for _, rec := range records {
			if err := m.mapRecord(rec, vals); err != nil {
				if strings.TrimSpace(err.Error()) == "" {
					t.Fatal("empty mapping error")
				}
				continue
			}
			rb.append(vals)
			mapped++
		}
		var rows int64
		if rec := rb.flush(); rec != nil { // nil when no record mapped
			rows = rec.NumRows()
			rec.Release()
		}
		if int(rows) != mapped || mapped > len(records) {
			t.Fatalf("%d records, %d mapped, %d rows", len(records), mapped, rows)
		}
	})
}
