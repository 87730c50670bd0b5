package postgres

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/cdwhq/cdw/extract"
	"github.com/cdwhq/cdw/internal/pgtest"
)

func TestConfigErrorsNameFileLineAndKey(t *testing.T) {
	t.Setenv("SET_PW", "x")
	const ents = "entities:\n  orders: {table: t, cursor: u, key: [id]}\n"
	for _, tc := range []struct {
		name, yaml, want string
	}{
		{"unknown key", "host: h\ndatabase: d\nuser: u\nhostname: x\n" + ents, `cdw.yaml:4: unknown key "hostname"`},
		{"missing database", "host: h\nuser: u\n" + ents, `cdw.yaml:1: missing required key "database" (or give dsn)`}, // host defaults to localhost (internal/pgconf)
		{"missing entities", "host: h\ndatabase: d\nuser: u\n", `missing required key "entities"`},
		{"unset password env", "host: h\ndatabase: d\nuser: u\npassword_env: NOT_SET_ANYWHERE_42\n" + ents,
			"cdw.yaml:4: password_env: environment variable NOT_SET_ANYWHERE_42 is not set"},
		{"bad sslmode", "host: h\ndatabase: d\nuser: u\nsslmode: maybe\n" + ents, "cdw.yaml:4: sslmode: expected one of disable"},
		{"bad port", "host: h\ndatabase: d\nuser: u\nport: 70000\n" + ents, "cdw.yaml:4: port: expected a port number"},
		{"dsn and host", "dsn: host=h dbname=d\nhost: h\n" + ents, "cdw.yaml:2: host: give either dsn or host"},
		{"negative lag", "host: h\ndatabase: d\nuser: u\nsafety_lag: -5s\n" + ents, "cdw.yaml:4: safety_lag: must not be negative"},
		{"bad lag", "host: h\ndatabase: d\nuser: u\nsafety_lag: soon\n" + ents, "cdw.yaml:4: safety_lag: expected a duration"},
		{"negative parallel", "host: h\ndatabase: d\nuser: u\nparallel: -1\n" + ents, "cdw.yaml:4: parallel: must be a positive number of connections"},
		{"bad entity name", "host: h\ndatabase: d\nuser: u\nentities:\n  Invoices: {table: t}\n", `cdw.yaml:5: entities.Invoices: "Invoices" is neither an entity`},
		{"raw table with columns", "host: h\ndatabase: d\nuser: u\nentities:\n  invoices: {table: t, columns: {a: b}}\n", `invoices is a raw table`},
		{"table and query", "host: h\ndatabase: d\nuser: u\nentities:\n  orders:\n    table: t\n    query: SELECT 1\n",
			"cdw.yaml:6: entities.orders: give exactly one of table or query"},
		{"neither table nor query", "host: h\ndatabase: d\nuser: u\nentities:\n  orders: {cursor: u}\n",
			"cdw.yaml:5: entities.orders: give exactly one of table or query"},
		{"three-part table", "host: h\ndatabase: d\nuser: u\nentities:\n  orders: {table: a.b.c}\n",
			`entities.orders.table: expected table or schema.table, found "a.b.c"`},
		{"unknown canonical column", "host: h\ndatabase: d\nuser: u\nentities:\n  orders:\n    table: t\n    columns: {order_number: no}\n",
			`cdw.yaml:7: entities.orders.columns.order_number: orders has no column "order_number" (its columns: order_id, line_no`},
		{"columns not a mapping", "host: h\ndatabase: d\nuser: u\nentities:\n  orders:\n    table: t\n    columns: [a, b]\n",
			"cdw.yaml:7: entities.orders.columns: expected a mapping of canonical column names"},
		{"key is cursor", "host: h\ndatabase: d\nuser: u\nentities:\n  orders: {table: t, cursor: u, key: [u]}\n",
			`entities.orders.key: column "u" is the cursor`},
		{"exclude mapped", "host: h\ndatabase: d\nuser: u\nentities:\n  orders: {table: t, columns: {order_id: no}, exclude: [no]}\n",
			`entities.orders.exclude: column "no" is mapped to order_id`},
		{"entity key typo", "host: h\ndatabase: d\nuser: u\nentities:\n  orders: {table: t, curser: u}\n",
			`cdw.yaml:5: entities.orders: unknown key "curser"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := openSourceErr("erp", tc.yaml)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v\nwant it to contain %q", err, tc.want)
			}
		})
	}
}

func TestPasswordNeverShows(t *testing.T) {
	const secret = "Very$ecret-PW-0987"
	t.Setenv("ERP_PG_PASSWORD", secret)

	// A password written into the DSN is refused without repeating it.
	for _, dsn := range []string{
		"postgres://reader:" + secret + "@127.0.0.1:5432/erp",
		"host=127.0.0.1 user=reader password=" + secret + " dbname=erp",
		"postgres://reader@127.0.0.1/erp?password=" + secret,
	} {
		_, err := openSourceErr("erp", "dsn: "+dsn+"\nentities:\n  orders: {table: t}\n")
		if err == nil || !strings.Contains(err.Error(), "contains a password") || strings.Contains(err.Error(), secret) {
			t.Errorf("dsn with a password: %v", err)
		}
	}

	db := pgtest.NewDB(t)
	var logs bytes.Buffer
	old := slog.Default()
	slog.SetDefault(slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	defer slog.SetDefault(old)

	for _, tc := range []struct{ name, yaml string }{
		{"refused", fmt.Sprintf("host: 127.0.0.1\nport: %d\ndatabase: erp\nuser: reader\npassword_env: ERP_PG_PASSWORD\n", closedPort(t))},
		{"refused dsn", fmt.Sprintf("dsn: postgres://reader@127.0.0.1:%d/erp\npassword_env: ERP_PG_PASSWORD\n", closedPort(t))},
		{"unknown database", fmt.Sprintf("host: 127.0.0.1\nport: %d\ndatabase: no_such_db\nuser: postgres\npassword_env: ERP_PG_PASSWORD\nsslmode: disable\n", db.Server.Port)},
		{"unknown table", strings.Replace(sourceYAML(db, "password_env: ERP_PG_PASSWORD\n", ""), "entities:\n", "", 1)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			entity := "entities:\n  orders: {table: public.no_such_table, cursor: updated_at, key: [id]}\n"
			src := openSource(t, "erp", tc.yaml+entity)
			dir := t.TempDir()
			_, err := (&extract.Extractor{Dir: dir}).Extract(context.Background(), "erp", src, "orders", false)
			if err == nil {
				t.Fatal("extract succeeded")
			}
			if strings.Contains(err.Error(), secret) {
				t.Fatalf("error leaks the password: %v", err)
			}
			if !strings.Contains(err.Error(), "source erp") {
				t.Errorf("error does not name the source: %v", err)
			}
			t.Logf("error: %v", err)
		})
	}
	if strings.Contains(logs.String(), secret) {
		t.Fatalf("logs leak the password:\n%s", logs.String())
	}
}

func TestIdentifiersAreQuotedNotPasted(t *testing.T) {
	db := pgtest.NewDB(t)
	db.Exec(t, `CREATE SCHEMA "Sales Dept";
		CREATE TABLE "Sales Dept"."Order Lines" ("Order No" text, "we""ird" int, "updated at" timestamptz, "ID" int);
		INSERT INTO "Sales Dept"."Order Lines" VALUES ('A-1', 7, now() - interval '1 hour', 1);
		CREATE TABLE victim (x int)`)
	src := openSource(t, "erp", sourceYAML(db, "", `    orders:
      table: Sales Dept.Order Lines
      cursor: updated at
      key: [ID]
      columns: {order_id: Order No, order_ts: updated at}
`))
	dir := t.TempDir()
	if res := extractOnce(t, dir, "erp", src, "orders", false); res.Rows != 1 {
		t.Fatalf("%+v", res)
	}
	d := rawDB(t, dir, "erp", "orders")
	if got := queryStrings(t, d, `SELECT order_id || ' ' || "we""ird" || ' ' || "ID" FROM raw`); len(got) != 1 || got[0] != "A-1 7 1" {
		t.Fatalf("got %q", got)
	}

	evil := openSource(t, "evil", sourceYAML(db, "", `    orders:
      table: "victim; DROP TABLE victim"
      cursor: "x) IS NOT NULL; DROP TABLE victim; --"
`))
	_, err := (&extract.Extractor{Dir: t.TempDir()}).Extract(context.Background(), "evil", evil, "orders", false)
	if err == nil || !strings.Contains(err.Error(), `relation "victim; DROP TABLE victim" does not exist`) {
		t.Fatalf("error %v", err)
	}
	if got := pgStrings(t, db, "SELECT count(*)::text FROM victim"); got[0] != "0" {
		t.Fatalf("victim: %q", got)
	}
}

func TestQuerySource(t *testing.T) {
	db := pgtest.NewDB(t)
	db.Exec(t, `CREATE TABLE customers (id int PRIMARY KEY, code text, unit text);
		CREATE TABLE orders_h (id int PRIMARY KEY, customer int REFERENCES customers, placed timestamptz, total numeric(10,2), changed timestamptz);
		INSERT INTO customers VALUES (1, 'C-001', 'retail'), (2, 'C-002', 'wholesale');
		INSERT INTO orders_h SELECT g, 1 + g % 2, timestamptz '2024-01-01' + g * interval '1 day', g * 10.5, now() - interval '1 hour' + g * interval '1 second'
		FROM generate_series(1, 20) g`)
	src := openSource(t, "shop", sourceYAML(db, "", `    orders:
      query: |
        SELECT o.id::text AS order_id, 1 AS line_no, c.code AS customer_id, o.placed AS order_ts,
               o.total AS amount, c.unit AS business_unit, o.changed AS updated_at
        FROM orders_h o JOIN customers c ON c.id = o.customer;
      cursor: updated_at
      key: [order_id]
`))
	dir := t.TempDir()
	if res := extractOnce(t, dir, "shop", src, "orders", false); res.Rows != 20 {
		t.Fatalf("%+v", res)
	}
	db.Exec(t, "UPDATE orders_h SET total = 0, changed = now() - interval '2 minutes' WHERE id = 4")
	if res := extractOnce(t, dir, "shop", src, "orders", false); res.Rows != 1 {
		t.Fatalf("second run %+v", res)
	}
	d := rawDB(t, dir, "shop", "orders")
	got := queryStrings(t, d, "SELECT concat_ws('|', order_id, customer_id, business_unit, amount) FROM raw WHERE order_id = '4' ORDER BY amount")
	if len(got) != 2 || got[0] != "4|C-001|retail|0.00" || got[1] != "4|C-001|retail|42.00" {
		t.Fatalf("got %q", got)
	}
}

func TestPassThroughClashNeedsExclude(t *testing.T) {
	db := pgtest.NewDB(t)
	db.Exec(t, `CREATE TABLE lines (id int, order_no text, amount numeric(10,2), net numeric(10,2), placed timestamptz);
		INSERT INTO lines VALUES (1, 'A', 12.00, 10.00, now())`)
	yaml := sourceYAML(db, "", `    orders:
      table: lines
      columns: {order_id: order_no, order_ts: placed, amount: net}
`)
	_, err := (&extract.Extractor{Dir: t.TempDir()}).Extract(context.Background(), "erp", openSource(t, "erp", yaml), "orders", false)
	if err == nil || !strings.Contains(err.Error(), `table lines has a column "amount" besides the one mapped to orders.amount ("net"); add it to exclude`) {
		t.Fatalf("error %v", err)
	}
	yaml = strings.Replace(yaml, "amount: net}", "amount: net}\n      exclude: [amount]", 1)
	dir := t.TempDir()
	extractOnce(t, dir, "erp", openSource(t, "erp", yaml), "orders", false)
	d := rawDB(t, dir, "erp", "orders")
	if got := queryStrings(t, d, "SELECT amount::VARCHAR FROM raw"); len(got) != 1 || got[0] != "10.00" {
		t.Fatalf("amount %q", got)
	}
}

func TestMissingRequiredColumnIsClear(t *testing.T) {
	db := pgtest.NewDB(t)
	db.Exec(t, "CREATE TABLE lines (id int, order_no text)")
	src := openSource(t, "erp", sourceYAML(db, "", "    orders: {table: lines, columns: {order_id: order_no}}\n"))
	_, err := (&extract.Extractor{Dir: t.TempDir()}).Extract(context.Background(), "erp", src, "orders", false)
	if err == nil || !strings.Contains(err.Error(), "table lines has no column order_ts, which orders requires: map one under columns") {
		t.Fatalf("error %v", err)
	}
}

// TestExcludeDropsPersonalData: an excluded column is neither passed through
// nor taken by name for the canonical column of that name.
func TestExcludeDropsPersonalData(t *testing.T) {
	db := pgtest.NewDB(t)
	db.Exec(t, `CREATE TABLE people (contact_id text, name text, email text, ssn text);
		INSERT INTO people VALUES ('P1', 'Ada', 'ada@example.com', '123-45-6789')`)
	src := openSource(t, "crm", sourceYAML(db, "", "    contacts: {table: people, exclude: [email, ssn]}\n"))
	dir := t.TempDir()
	extractOnce(t, dir, "crm", src, "contacts", false)
	d := rawDB(t, dir, "crm", "contacts")
	if got := queryStrings(t, d, "SELECT concat_ws('|', contact_id, name, coalesce(email, 'NULL')) FROM raw"); len(got) != 1 || got[0] != "P1|Ada|NULL" {
		t.Fatalf("got %q", got)
	}
	if n := queryInt(t, d, "SELECT count(*) FROM (DESCRIBE raw) WHERE column_name = 'ssn'"); n != 0 {
		t.Fatal("excluded column ssn was passed through")
	}
}
