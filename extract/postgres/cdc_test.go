package postgres

import (
	"context"
	"errors"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"gopkg.in/yaml.v3"

	"github.com/cdwhq/cdw/extract"
	"github.com/cdwhq/cdw/internal/duck"
	"github.com/cdwhq/cdw/internal/pgtest"
)

// cdcDDL is a ticket table with a column stored out of line (TOAST,
// uncompressed so a few kB are enough) and types the stream converts from
// text: integers, numeric, timestamptz, bool, arrays, jsonb, uuid, bytea.
const cdcDDL = `
CREATE TABLE support_tickets (
	id          int PRIMARY KEY,
	customer_id text,
	created_at  timestamptz NOT NULL,
	status      text,
	priority    text,
	satisfaction int,
	amount      numeric(10,2),
	urgent      bool,
	tags        text[],
	meta        jsonb,
	ref         uuid,
	blob        bytea,
	body        text,
	updated_at  timestamptz NOT NULL
);
ALTER TABLE support_tickets ALTER body SET STORAGE EXTERNAL;`

const cdcEntity = `    tickets:
      table: support_tickets
      mode: cdc
      columns: {ticket_id: id}
`

// insertTickets adds tickets from..to, each with a 6 kB body (out of line).
func insertTickets(t *testing.T, db *pgtest.DB, from, to int) {
	t.Helper()
	db.Exec(t, fmt.Sprintf(`INSERT INTO support_tickets
		SELECT g, 'C' || (g %% 7), timestamptz '2024-03-01 10:00:00+00' + g * interval '1 hour', 'open', 'normal', 1 + g %% 5,
		       g * 1.25, g %% 2 = 0, ARRAY['a' || g, NULL, 'b'], jsonb_build_object('n', g), md5(g::text)::uuid,
		       decode(md5(g::text), 'hex'), repeat(md5(g::text), 200), timestamptz '2024-03-02 00:00:00+00' + g * interval '1 second'
		FROM generate_series(%d, %d) g`, from, to))
}

// latestQuery picks the latest version of each ticket as staging does
// (updated_at, then file, then the change's place) and drops tombstones.
const latestQuery = `SELECT concat_ws('|', ticket_id, customer_id, strftime(created_at, '%Y-%m-%d %H:%M:%S'), status, priority,
	satisfaction, amount, urgent, array_to_string(tags, ','), meta, ref, hex(blob), md5(body), strftime(updated_at, '%Y-%m-%d %H:%M:%S')) FROM (
	SELECT *, row_number() OVER (PARTITION BY ticket_id ORDER BY updated_at DESC NULLS LAST, filename DESC, _source_line DESC NULLS LAST) AS rn
	FROM raw) WHERE rn = 1 AND NOT coalesce(deleted, false) ORDER BY ticket_id::INT`

// tableQuery renders the table the way latestQuery renders raw.
const tableQuery = `SELECT concat_ws('|', id, customer_id, to_char(created_at, 'YYYY-MM-DD HH24:MI:SS'), status, priority,
	satisfaction, amount, CASE WHEN urgent THEN 'true' WHEN NOT urgent THEN 'false' END, array_to_string(tags, ','),
	meta::text, ref, upper(encode(blob, 'hex')), md5(body), to_char(updated_at, 'YYYY-MM-DD HH24:MI:SS')) FROM support_tickets ORDER BY id`

// duckWithFiles is duck with each row's file name (filename), as the raw views have _file.
func rawMatchesTable(t *testing.T, dir string, db *pgtest.DB) {
	t.Helper()
	d := rawDB(t, dir, "erp", "tickets")
	if _, err := d.Exec("CREATE OR REPLACE VIEW raw AS SELECT * FROM read_parquet([" + quotedFiles(t, dir) + "], union_by_name = true, filename = true)"); err != nil {
		t.Fatal(err)
	}
	q := latestQuery
	if n := queryInt(t, d, "SELECT count(*) FROM (DESCRIBE raw) WHERE column_name = '_source_line'"); n == 0 {
		q = strings.Replace(q, ", _source_line DESC NULLS LAST", "", 1) // snapshot files only
	}
	got := queryStrings(t, d, q)
	want := pgStrings(t, db, tableQuery)
	if !slices.Equal(got, want) {
		for i := range min(len(got), len(want)) {
			if got[i] != want[i] {
				t.Fatalf("latest versions in raw differ from the table at row %d (%d vs %d rows):\n got %s\nwant %s", i, len(got), len(want), got[i], want[i])
			}
		}
		t.Fatalf("latest versions in raw: %d rows; the table: %d", len(got), len(want))
	}
}

func quotedFiles(t *testing.T, dir string) string {
	files := committedFiles(t, dir, "erp", "tickets")
	return duck.Literals(files)
}

// slotState is the slot's confirmed position, or "" when there is none.
func slotState(t *testing.T, db *pgtest.DB, slot string) string {
	t.Helper()
	v := pgStrings(t, db, "SELECT confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = '"+slot+"'")
	if len(v) == 0 {
		return ""
	}
	return v[0]
}

// TestCDCStreamsEveryChange loads a table from the slot's snapshot, then
// streams inserts, updates that leave a TOAST column alone, hard deletes,
// and a transaction that changes one row several times: raw holds each
// committed version once, its latest versions are the table, and the slot
// is confirmed exactly up to the committed position.
func TestCDCStreamsEveryChange(t *testing.T) {
	db := pgtest.NewDB(t)
	db.Exec(t, cdcDDL)
	insertTickets(t, db, 1, 100)
	src := openSource(t, "erp", sourceYAML(db, "", cdcEntity))
	dir := t.TempDir()

	res := extractOnce(t, dir, "erp", src, "tickets", false)
	if res.Rows != 100 || res.Files != 1 {
		t.Fatalf("initial load %+v, want 100 rows in 1 file", res)
	}
	pos := statePosition(t, dir, "erp", "tickets")
	if pos.Mode != modeCDC || pos.Slot != "cdw_erp_tickets" || pos.LSN == "" {
		t.Fatalf("committed position %+v, want the slot's", pos)
	}
	if got := pgStrings(t, db, "SELECT relreplident::text FROM pg_class WHERE relname = 'support_tickets'"); got[0] != "f" {
		t.Fatalf("replica identity %s, want f (FULL)", got[0])
	}
	rawMatchesTable(t, dir, db)

	// Updates leave body alone: pgoutput sends it as unchanged TOAST.
	db.Exec(t, "UPDATE support_tickets SET status = 'pending', updated_at = updated_at + interval '1 day' WHERE id <= 10")
	db.Exec(t, "DELETE FROM support_tickets WHERE id BETWEEN 91 AND 95")
	insertTickets(t, db, 101, 103)
	db.Exec(t, `BEGIN;
		UPDATE support_tickets SET status = 'resolved', updated_at = updated_at + interval '2 days' WHERE id = 50;
		UPDATE support_tickets SET priority = 'high' WHERE id = 50;
		UPDATE support_tickets SET satisfaction = NULL, tags = '{}', meta = NULL WHERE id = 51;
		DELETE FROM support_tickets WHERE id = 52;
		COMMIT`)
	res = extractOnce(t, dir, "erp", src, "tickets", false)
	if want := int64(10 + 5 + 3 + 4); res.Rows != want {
		t.Fatalf("stream read %d row versions, want %d", res.Rows, want)
	}
	rawMatchesTable(t, dir, db)

	d := rawDB(t, dir, "erp", "tickets")
	got := queryStrings(t, d, "SELECT _cdw_op || ':' || count(*) FROM raw WHERE _cdw_op IS NOT NULL GROUP BY _cdw_op ORDER BY _cdw_op")
	if want := []string{"delete:6", "insert:3", "update:13"}; !slices.Equal(got, want) {
		t.Fatalf("operations %v, want %v", got, want)
	}
	// Unchanged TOAST values came from the old row, and tombstones carry the row.
	if n := queryInt(t, d, "SELECT count(*) FROM raw WHERE _cdw_op IS NOT NULL AND (body IS NULL OR length(body) <> 6400)"); n != 0 {
		t.Fatalf("%d streamed versions lack their 6400-character body", n)
	}
	if n := queryInt(t, d, "SELECT count(*) FROM raw WHERE _cdw_op = 'delete' AND deleted AND updated_at IS NOT NULL"); n != 6 {
		t.Fatalf("%d tombstones with deleted = true and the row's updated_at, want 6", n)
	}
	// One transaction: one commit LSN, its versions in order.
	if got := queryStrings(t, d, "SELECT string_agg(_cdw_op || ' ' || ticket_id, ',' ORDER BY _source_line) FROM raw WHERE ticket_id IN ('50', '51', '52') AND _cdw_op IS NOT NULL GROUP BY _cdw_lsn"); len(got) != 1 ||
		got[0] != "update 50,update 50,update 51,delete 52" {
		t.Fatalf("the four-change transaction landed as %v", got)
	}
	committed := statePosition(t, dir, "erp", "tickets").LSN
	if got := slotState(t, db, "cdw_erp_tickets"); got != committed {
		t.Fatalf("slot confirmed up to %s, the committed position is %s", got, committed)
	}

	// Nothing new: nothing added.
	files := len(committedFiles(t, dir, "erp", "tickets"))
	if res = extractOnce(t, dir, "erp", src, "tickets", false); res.Rows != 0 || len(committedFiles(t, dir, "erp", "tickets")) != files {
		t.Fatalf("a read with no changes: %+v, %d files (had %d)", res, len(committedFiles(t, dir, "erp", "tickets")), files)
	}
}

// TestCDCSchemaChangesMidStream adds, drops and retypes columns between and
// inside streamed transactions: new columns land (earlier versions read
// them as NULL), a widening type change goes on, and one that would lose
// data stops the entity with ErrSchemaChanged, the position before it kept.
func TestCDCSchemaChangesMidStream(t *testing.T) {
	db := pgtest.NewDB(t)
	db.Exec(t, cdcDDL)
	insertTickets(t, db, 1, 20)
	src := openSource(t, "erp", sourceYAML(db, "", cdcEntity))
	dir := t.TempDir()
	extractOnce(t, dir, "erp", src, "tickets", false)

	db.Exec(t, "UPDATE support_tickets SET status = 'a' WHERE id = 1")
	db.Exec(t, `BEGIN;
		UPDATE support_tickets SET status = 'b' WHERE id = 2;
		ALTER TABLE support_tickets ADD COLUMN region text;
		UPDATE support_tickets SET region = 'north', status = 'c' WHERE id = 3;
		COMMIT`)
	db.Exec(t, "ALTER TABLE support_tickets DROP COLUMN priority")
	db.Exec(t, "UPDATE support_tickets SET status = 'd' WHERE id = 4")
	db.Exec(t, "ALTER TABLE support_tickets ALTER satisfaction TYPE bigint")
	db.Exec(t, "UPDATE support_tickets SET satisfaction = 5000000000 WHERE id = 5")
	res := extractOnce(t, dir, "erp", src, "tickets", false)
	if res.Rows != 5 {
		t.Fatalf("read %d versions across the schema changes, want 5", res.Rows)
	}
	d := rawDB(t, dir, "erp", "tickets")
	got := queryStrings(t, d, "SELECT concat_ws('|', ticket_id, status, coalesce(region, '-'), coalesce(priority, '-'), satisfaction) FROM raw WHERE _cdw_op IS NOT NULL ORDER BY _cdw_lsn, _source_line")
	want := []string{"1|a|-|normal|2", "2|b|-|normal|3", "3|c|north|normal|4", "4|d|-|-|5", "5|open|-|-|5000000000"}
	if !slices.Equal(got, want) {
		t.Fatalf("versions across schema changes:\n%s", strings.Join(got, "\n"))
	}
	before := statePosition(t, dir, "erp", "tickets").LSN
	db.Exec(t, "UPDATE support_tickets SET status = 'e' WHERE id = 6")
	db.Exec(t, "ALTER TABLE support_tickets ALTER amount TYPE numeric(10,0)")
	db.Exec(t, "UPDATE support_tickets SET status = 'f' WHERE id = 7")
	_, err := (&extract.Extractor{Dir: dir}).Extract(context.Background(), "erp", src, "tickets", false)
	if !errors.Is(err, extract.ErrSchemaChanged) || !strings.Contains(err.Error(), "amount") {
		t.Fatalf("a lossy type change: %v, want ErrSchemaChanged naming amount", err)
	}
	after := statePosition(t, dir, "erp", "tickets").LSN
	if after == before {
		t.Fatalf("the change before the lossy ALTER was not committed (position still %s)", after)
	}
	if n := queryInt(t, rawDB(t, dir, "erp", "tickets"), "SELECT count(*) FROM raw WHERE status = 'f'"); n != 0 {
		t.Fatalf("the change after the lossy ALTER landed")
	}
}

// TestCDCDropSlot: --drop-slot removes the slot and the publication; the
// next read says a full refresh is needed, and that reloads the table from
// a new slot, replacing raw.
func TestCDCDropSlot(t *testing.T) {
	db := pgtest.NewDB(t)
	db.Exec(t, cdcDDL)
	insertTickets(t, db, 1, 30)
	src := openSource(t, "erp", sourceYAML(db, "", cdcEntity))
	dir := t.TempDir()
	extractOnce(t, dir, "erp", src, "tickets", false)
	gone, err := src.(*Source).DropSlot(context.Background(), "tickets")
	if err != nil || !slices.Equal(gone, []string{"replication slot cdw_erp_tickets", "publication cdw_erp_tickets"}) {
		t.Fatalf("DropSlot: %v %v", gone, err)
	}
	if slotState(t, db, "cdw_erp_tickets") != "" || len(pgStrings(t, db, "SELECT pubname FROM pg_publication")) != 0 {
		t.Fatal("slot or publication left")
	}
	db.Exec(t, "DELETE FROM support_tickets WHERE id > 20")
	_, err = (&extract.Extractor{Dir: dir}).Extract(context.Background(), "erp", src, "tickets", false)
	if err == nil || !strings.Contains(err.Error(), "full refresh") {
		t.Fatalf("a read after the slot was dropped: %v, want a call for a full refresh", err)
	}
	if res := extractOnce(t, dir, "erp", src, "tickets", true); res.Rows != 20 {
		t.Fatalf("full refresh read %d rows, want 20", res.Rows)
	}
	rawMatchesTable(t, dir, db)
	if n := len(committedFiles(t, dir, "erp", "tickets")); n != 1 {
		t.Fatalf("%d raw files after the full refresh, want its 1", n)
	}
	if slotState(t, db, "cdw_erp_tickets") == "" {
		t.Fatal("the full refresh created no slot")
	}
}

// TestCDCWarnsAboutRetainedWAL: a slot holding more WAL than max_slot_wal
// is reported to the runner (the /metrics gauge) and warned about.
func TestCDCWarnsAboutRetainedWAL(t *testing.T) {
	db := pgtest.NewDB(t)
	db.Exec(t, cdcDDL)
	insertTickets(t, db, 1, 10)
	src := openSource(t, "erp", sourceYAML(db, "max_slot_wal: 64kB\n", cdcEntity))
	dir := t.TempDir()
	extractOnce(t, dir, "erp", src, "tickets", false)
	insertTickets(t, db, 11, 200) // ~1.2 MB of bodies
	res := extractOnce(t, dir, "erp", src, "tickets", false)
	if res.Slot != "cdw_erp_tickets" || res.SlotWAL < 1<<20 || res.SlotWALMax != 64_000 {
		t.Fatalf("result %+v, want the slot's retained WAL (over 1 MiB) and the 64kB limit", res)
	}
}

// TestCDCNoGapNoOverlap inserts rows, one transaction each, all through the
// initial load and the stream after it: each lands exactly once, in the
// snapshot or in the stream, whichever side of the slot's consistent point
// it committed on.
func TestCDCNoGapNoOverlap(t *testing.T) {
	db := pgtest.NewDB(t)
	db.Exec(t, cdcDDL)
	insertTickets(t, db, 1, 2000)
	src := openSource(t, "erp", sourceYAML(db, "", cdcEntity))
	dir := t.TempDir()

	conn := db.Connect(t)
	stop := make(chan struct{})
	wrote := make(chan int)
	go func() {
		n := 0
		defer func() { wrote <- n }()
		for id := 10_001; ; id++ {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := conn.Exec(context.Background(), `INSERT INTO support_tickets (id, created_at, status, updated_at) VALUES ($1, now(), 'new', now())`, id); err != nil {
				t.Error(err)
				return
			}
			n++
		}
	}()
	extractOnce(t, dir, "erp", src, "tickets", false)
	extractOnce(t, dir, "erp", src, "tickets", false)
	close(stop)
	n := <-wrote
	extractOnce(t, dir, "erp", src, "tickets", false)
	d := rawDB(t, dir, "erp", "tickets")
	var rows, distinct, snap int64
	if err := d.QueryRow("SELECT count(*), count(DISTINCT ticket_id), count(*) FILTER (WHERE _cdw_op IS NULL) FROM raw WHERE ticket_id::INT > 10000").Scan(&rows, &distinct, &snap); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d rows written during the reads: %d in the snapshot, %d streamed", n, snap, rows-snap)
	if rows != int64(n) || distinct != int64(n) {
		t.Fatalf("raw holds %d versions of %d of the %d rows written during the reads", rows, distinct, n)
	}
	rawMatchesTable(t, dir, db)
}

// TestREADMECDCExample runs README.md's mode: cdc block, its connection
// pointed at the test server: the initial load, then a delete streamed.
func TestREADMECDCExample(t *testing.T) {
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	var block string
	for _, m := range regexp.MustCompile("(?ms)^```yaml\n(.*?)^```").FindAllStringSubmatch(string(readme), -1) {
		if strings.Contains(m[1], "mode: cdc") {
			block = m[1]
		}
	}
	if block == "" {
		t.Fatal("README.md has no yaml block with mode: cdc")
	}
	var doc struct {
		Sources []map[string]any `yaml:"sources"`
	}
	if err := yaml.Unmarshal([]byte(block), &doc); err != nil || len(doc.Sources) != 1 {
		t.Fatalf("README block: %v", err)
	}
	db := pgtest.NewDB(t)
	db.Exec(t, cdcDDL)
	insertTickets(t, db, 1, 50)
	cfg, _ := pgx.ParseConfig(db.DSN)
	src := doc.Sources[0]
	delete(src, "password_env")
	src["host"], src["port"], src["database"], src["user"], src["sslmode"] = cfg.Host, cfg.Port, cfg.Database, cfg.User, "disable"
	name := src["name"].(string)
	delete(src, "name")
	delete(src, "kind")
	text, err := yaml.Marshal(src)
	if err != nil {
		t.Fatal(err)
	}
	s := openSource(t, name, string(text))
	dir := t.TempDir()
	if res := extractOnce(t, dir, name, s, "tickets", false); res.Rows != 50 {
		t.Fatalf("initial load: %+v", res)
	}
	db.Exec(t, "DELETE FROM support_tickets WHERE id = 7")
	if res := extractOnce(t, dir, name, s, "tickets", false); res.Rows != 1 {
		t.Fatalf("stream: %+v, want the tombstone", res)
	}
}
