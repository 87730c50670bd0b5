package httpapi

import (
	"context"
	"strings"
	"testing"
)

func TestConfigErrorsNameFileLineAndKey(t *testing.T) {
	t.Setenv("CDW_TEST_EMPTY", "")
	const fields = "    fields: {ticket_id: id, created_at: created_at}\n"
	for _, tc := range []struct {
		name, yaml, want string
	}{
		{"missing base_url", "entities: {tickets: {path: /t, fields: {ticket_id: id, created_at: c}}}\n",
			`cdw.yaml:1: sources.helpdesk: missing required key "base_url"`},
		{"bad base_url", "base_url: ftp://x\nentities: {tickets: {path: /t, fields: {ticket_id: id, created_at: c}}}\n",
			`cdw.yaml:1: sources.helpdesk.base_url: expected an http:// or https:// URL`},
		{"unknown key", "base_url: http://x\nretries: 3\nentities:\n  tickets:\n    path: /t\n" + fields,
			`cdw.yaml:2: sources.helpdesk: unknown key "retries"`},
		{"raw table with fields", "base_url: http://x\nentities:\n  invoices:\n    path: /t\n" + fields,
			`cdw.yaml:4: sources.helpdesk.entities.invoices: invoices is a raw table (no entity of that name: contacts, orders, tickets)`},
		{"bad entity name", "base_url: http://x\nentities:\n  Invoices:\n    path: /t\n",
			`cdw.yaml:4: sources.helpdesk.entities.Invoices: "Invoices" is neither an entity`},
		{"unknown column", "base_url: http://x\nentities:\n  tickets:\n    path: /t\n    fields: {ticket_id: id, created_at: c, mood: m}\n",
			`cdw.yaml:5: sources.helpdesk.entities.tickets.fields.mood: tickets has no column "mood"`},
		{"required column unmapped", "base_url: http://x\nentities:\n  tickets:\n    path: /t\n    fields:\n      ticket_id: id\n",
			`cdw.yaml:6: sources.helpdesk.entities.tickets.fields: required column "created_at" of tickets is not mapped`},
		{"bad pagination type", "base_url: http://x\nentities:\n  tickets:\n    path: /t\n    pagination: {type: pages}\n" + fields,
			`cdw.yaml:5: sources.helpdesk.entities.tickets.pagination.type: unknown pagination type "pages"`},
		{"cursor without next_cursor", "base_url: http://x\nentities:\n  tickets:\n    path: /t\n    pagination: {type: cursor, cursor_param: c}\n" + fields,
			`sources.helpdesk.entities.tickets.pagination: pagination type cursor needs cursor_param`},
		{"param of another type", "base_url: http://x\nentities:\n  tickets:\n    path: /t\n    pagination: {type: page, offset_param: o}\n" + fields,
			`pagination.offset_param: offset_param applies to pagination type offset only`},
		{"bad duration", "base_url: http://x\ntimeout: soon\nentities:\n  tickets:\n    path: /t\n" + fields,
			`cdw.yaml:2: sources.helpdesk.timeout: expected a duration`},
		{"bad layout", "base_url: http://x\nentities:\n  tickets:\n    path: /t\n    timestamp_layouts: [YYYY-MM-DD]\n" + fields,
			`timestamp_layouts: entry 1: "YYYY-MM-DD" is not a Go time layout`},
		{"incremental field unmapped", "base_url: http://x\nentities:\n  tickets:\n    path: /t\n    incremental: {param: since}\n" + fields,
			`cdw.yaml:5: sources.helpdesk.entities.tickets.incremental: column "updated_at" is not mapped`},
		{"incremental field not a timestamp", "base_url: http://x\nentities:\n  tickets:\n    path: /t\n    incremental: {param: since, field: status}\n    fields: {ticket_id: id, created_at: c, status: s}\n",
			`column "status" is a string, the incremental cursor needs a timestamp`},
		{"missing token env", "base_url: http://x\nauth: {type: bearer, token_env: CDW_TEST_EMPTY}\nentities:\n  tickets:\n    path: /t\n" + fields,
			`cdw.yaml:2: sources.helpdesk.auth.token_env: environment variable CDW_TEST_EMPTY is not set or empty`},
		{"unknown auth type", "base_url: http://x\nauth: {type: oauth}\nentities:\n  tickets:\n    path: /t\n" + fields,
			`sources.helpdesk.auth.type: unknown auth type "oauth"`},
		{"authorization header", "base_url: http://x\nheaders: {Authorization: Bearer abc}\nentities:\n  tickets:\n    path: /t\n" + fields,
			`sources.helpdesk.headers.Authorization: set Authorization through auth`},
		{"passthrough collides", "base_url: http://x\nentities:\n  tickets:\n    path: /t\n    passthrough: [status]\n" + fields,
			`passthrough: entry 1: "status" is empty or names a column twice`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := openSource(context.Background(), t.TempDir(), tc.yaml)
			if err == nil {
				t.Fatal("config accepted")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error\n  %v\nwant it to contain\n  %s", err, tc.want)
			}
			if !strings.HasPrefix(err.Error(), "source helpdesk: ") {
				t.Errorf("error does not name the source: %v", err)
			}
		})
	}
}

func TestConfigExampleFromREADMEOpens(t *testing.T) {
	t.Setenv("HELPDESK_TOKEN", "example-token")
	yamlText := `base_url: http://127.0.0.1:8080/api
auth: {type: bearer, token_env: HELPDESK_TOKEN}
timeout: 30s
retry: {max_attempts: 6, base_delay: 500ms, max_delay: 30s}
entities:
  tickets:
    path: /tickets
    records: data
    pagination: {type: cursor, cursor_param: cursor, next_cursor: meta.next, size_param: per_page, size: 100}
    incremental: {param: updated_since, format: rfc3339, field: updated_at, overlap: 5m}
    fields: {ticket_id: id, customer_id: requester.external_id, created_at: created_at, resolved_at: solved_at, status: status, priority: priority, category: type, satisfaction: satisfaction.score, updated_at: updated_at}
    passthrough: [requester.name, tags]
`
	src, err := openSource(context.Background(), t.TempDir(), yamlText)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	if got := src.Entities(); len(got) != 1 || got[0] != "tickets" {
		t.Errorf("Entities() = %v", got)
	}
	r, err := src.Read(context.Background(), readRequest(t, "tickets"))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	sch := r.Schema()
	if sch.NumFields() != 14 || sch.Field(12).Name != "requester_name" || sch.Field(13).Name != "tags" {
		t.Errorf("schema %v, want the 12 ticket columns plus requester_name and tags", sch)
	}
}
