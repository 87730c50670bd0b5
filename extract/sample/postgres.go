package sample

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"math/big"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"
)

// The PostgreSQL tables LoadPostgres creates: orders is narrow (13 columns),
// tickets is wide (40 columns of numeric, jsonb, text[], timestamptz, uuid and
// boolean) so extract benchmarks see both shapes.
const pgSchema = `
DROP TABLE IF EXISTS orders, tickets, crm_contacts, web_signups;
CREATE TABLE orders (
    order_no bigint NOT NULL, line int NOT NULL, customer text, ordered_at timestamptz NOT NULL,
    status text, sku text, category text, qty int, unit_price numeric(12,2), cost numeric(12,2),
    business_unit text, channel text, updated_at timestamptz NOT NULL);
CREATE TABLE tickets (
    ticket_id text NOT NULL, customer text, created_at timestamptz NOT NULL, resolved_at timestamptz,
    status text, priority text, category text, csat smallint, business_unit text, channel text,
    customer_type text, order_no bigint, updated_at timestamptz NOT NULL, ticket_uuid uuid,
    subject text, description text, tags text[], custom jsonb, agent_id int, team text,
    sla_hours numeric(6,2), first_response_at timestamptz, reopened boolean, escalated boolean,
    language text, country text, product_sku text, refund_amount numeric(12,2), cost numeric(12,2),
    satisfaction_comment text, source text, contact_email text, contact_phone text, due_at timestamptz,
    closed_by text, resolution_code text, time_spent_minutes int, is_warranty boolean,
    attachments int, score double precision);
CREATE TABLE crm_contacts (
    contact_id text NOT NULL, customer_no text, name text, email text, phone text, company text,
    type text, business_unit text, channel text, country text, created date, last_contact date,
    updated timestamptz);
CREATE TABLE web_signups (signup_id text NOT NULL, email text, mobile text, full_name text, signed_up_at timestamptz);
`

// pgApplyUpdates keeps the latest version of each order line.
const pgApplyUpdates = `
DELETE FROM orders o USING orders n
WHERE n.order_no = o.order_no AND n.line = o.line AND n.updated_at > o.updated_at`

// Indexes are built after the load (faster than maintaining them row by row);
// (updated_at, key) serves the incremental cursor of the postgres source.
const pgIndexes = `
ALTER TABLE orders ADD PRIMARY KEY (order_no, line);
CREATE INDEX orders_cursor ON orders (updated_at, order_no, line);
ALTER TABLE tickets ADD PRIMARY KEY (ticket_id);
CREATE INDEX tickets_cursor ON tickets (updated_at, ticket_id);
ALTER TABLE crm_contacts ADD PRIMARY KEY (contact_id);
ALTER TABLE web_signups ADD PRIMARY KEY (signup_id);
ANALYZE;
`

var (
	orderCols   = []string{"order_no", "line", "customer", "ordered_at", "status", "sku", "category", "qty", "unit_price", "cost", "business_unit", "channel", "updated_at"}
	ticketCols  = []string{"ticket_id", "customer", "created_at", "resolved_at", "status", "priority", "category", "csat", "business_unit", "channel", "customer_type", "order_no", "updated_at", "ticket_uuid", "subject", "description", "tags", "custom", "agent_id", "team", "sla_hours", "first_response_at", "reopened", "escalated", "language", "country", "product_sku", "refund_amount", "cost", "satisfaction_comment", "source", "contact_email", "contact_phone", "due_at", "closed_by", "resolution_code", "time_spent_minutes", "is_warranty", "attachments", "score"}
	contactCols = []string{"contact_id", "customer_no", "name", "email", "phone", "company", "type", "business_unit", "channel", "country", "created", "last_contact", "updated"}
	signupCols  = []string{"signup_id", "email", "mobile", "full_name", "signed_up_at"}
)

// LoadPostgres (re)creates the tables orders, tickets, crm_contacts and
// web_signups in the database at dsn and fills them with COPY: the generator
// runs in one goroutine and each table is copied on its own connection.
func LoadPostgres(ctx context.Context, dsn string, o Options) (Counts, error) {
	pool, err := pgxpool.New(ctx, dsn)
	if err != nil {
		return Counts{}, fmt.Errorf("connecting to PostgreSQL: %w", err)
	}
	defer pool.Close()
	if _, err := pool.Exec(ctx, pgSchema); err != nil {
		return Counts{}, fmt.Errorf("creating tables: %w", err)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	tables := []struct {
		name string
		cols []string
	}{{"orders", orderCols}, {"tickets", ticketCols}, {"crm_contacts", contactCols}, {"web_signups", signupCols}}
	sink := &pgSink{ch: make([]chan [][]any, len(tables)), cur: make([][][]any, len(tables)), ctx: ctx, seed: o.withDefaults().Seed}
	errs := make(chan error, len(tables))
	for i, t := range tables {
		sink.ch[i] = make(chan [][]any, 4)
		go func() {
			_, err := pool.CopyFrom(ctx, pgx.Identifier{t.name}, t.cols, &chanSource{ch: sink.ch[i]})
			if err != nil {
				err = fmt.Errorf("copying into %s: %w", t.name, err)
				cancel()
				for range sink.ch[i] { // unblock the generator
				}
			}
			errs <- err
		}()
	}
	n, genErr := Generate(o, sink)
	sink.close()
	for range tables {
		if err := <-errs; err != nil && genErr == nil {
			genErr = err
		}
	}
	if genErr != nil {
		return n, genErr
	}
	// A table holds the current state of each order line: an update the
	// generator emits as a second, later version replaces the first.
	tag, err := pool.Exec(ctx, pgApplyUpdates)
	if err != nil {
		return n, fmt.Errorf("applying order line updates: %w", err)
	}
	n.OrderLines -= int(tag.RowsAffected())
	if _, err := pool.Exec(ctx, pgIndexes); err != nil {
		return n, fmt.Errorf("indexing tables: %w", err)
	}
	return n, nil
}

// pgBatch is how many rows travel to a COPY goroutine at a time.
const pgBatch = 4096

// pgSink turns rows into COPY values and hands them over in batches.
type pgSink struct {
	ch   []chan [][]any
	cur  [][][]any
	ctx  context.Context
	seed uint64
}

func (s *pgSink) add(i int, row []any) error {
	if s.cur[i] == nil {
		s.cur[i] = make([][]any, 0, pgBatch)
	}
	s.cur[i] = append(s.cur[i], row)
	if len(s.cur[i]) < pgBatch {
		return nil
	}
	select {
	case s.ch[i] <- s.cur[i]:
	case <-s.ctx.Done():
		return fmt.Errorf("loading PostgreSQL: %w", context.Cause(s.ctx))
	}
	s.cur[i] = nil
	return nil
}

func (s *pgSink) close() {
	for i, ch := range s.ch {
		if len(s.cur[i]) > 0 {
			select {
			case ch <- s.cur[i]:
			case <-s.ctx.Done():
			}
		}
		close(ch)
	}
}

func (s *pgSink) Order(o *OrderLine) error {
	return s.add(0, []any{o.OrderNo, o.Line, o.Customer, o.OrderedAt, o.Status, o.SKU, o.Category, o.Qty,
		money(o.UnitPrice), money(o.Cost), o.Unit, o.Channel, o.UpdatedAt})
}

// Ticket fills the wide columns from a per-ticket hash, so they are
// deterministic without changing the random stream of the narrow data.
func (s *pgSink) Ticket(t *Ticket) error {
	h := func(k uint64) float64 { return unitHash(s.seed, uint64(t.No), k) }
	var id [16]byte
	binary.BigEndian.PutUint64(id[:8], uint64(h(1)*(1<<53)))
	binary.BigEndian.PutUint64(id[8:], uint64(t.No))
	id[6] = id[6]&0x0f | 0x40 // version 4 layout
	id[8] = id[8]&0x3f | 0x80
	ticketID := "T" + pad(int(t.No), 6)
	resolved, csat, firstResp := nullTime(t.Resolved), any(nil), any(nil)
	if t.CSAT > 0 {
		csat = int16(t.CSAT)
	}
	if !t.Resolved.IsZero() {
		firstResp = t.Created.Add(time.Duration(h(2)*float64(t.Resolved.Sub(t.Created))) + time.Minute)
	}
	tags := []string{t.Category, t.Priority}
	if h(3) < 0.3 {
		tags = append(tags, "vip")
	}
	custom := `{"channel":"` + t.Channel + `","visits":` + strconv.Itoa(int(h(4)*5)) + `,"warranty_months":` + strconv.Itoa(12*int(1+h(5)*3)) + `}`
	refund := any(nil)
	if t.Category == "return" || t.Category == "complaint" {
		refund = money(math.Round(h(6)*30000) / 100)
	}
	comment := any(nil)
	if t.CSAT > 0 && t.CSAT <= 2 {
		comment = "customer unhappy with " + t.Category + " handling"
	}
	sources := [...]string{"email", "phone", "web", "chat"}
	codes := [...]string{"fixed", "replaced", "refunded", "explained", "no_fault_found"}
	return s.add(1, []any{ticketID, t.Customer, t.Created, resolved, t.Status, t.Priority, t.Category, csat, t.Unit, t.Channel,
		t.CustomerType, t.OrderNo, t.Updated, id, t.Category + " about order " + strconv.FormatInt(t.OrderNo, 10),
		"Customer " + t.Customer + " reported a " + t.Priority + " priority " + t.Category + " issue with order " + strconv.FormatInt(t.OrderNo, 10) + ".",
		tags, custom, 1000 + int32(h(7)*200), [...]string{"first-level", "field-service", "returns"}[int(h(8)*3)],
		money(float64([...]int{72, 24, 8, 4}[prioIndex(t.Priority)])), firstResp, h(9) < 0.05, t.Priority == "urgent" || h(10) < 0.02,
		"de", "DE", "SKU-" + strconv.Itoa(100+int(h(11)*600)), refund, money(math.Round(h(12)*15000) / 100), comment,
		sources[int(h(13)*4)], "customer" + t.Customer[1:] + "@example.com", nil, t.Created.Add(time.Duration([...]int{72, 24, 8, 4}[prioIndex(t.Priority)]) * time.Hour),
		nilIf(t.Status != "resolved", "agent"+strconv.Itoa(int(h(14)*50))), nilIf(t.Status != "resolved", codes[int(h(15)*5)]),
		int32(5 + h(16)*240), h(17) < 0.4, int32(h(18) * 4), h(19) * 100})
}

func (s *pgSink) Contact(c *Contact) error {
	return s.add(2, []any{"CRM-" + pad(c.No, 5), c.Customer, c.Name, c.Email, c.Phone, nilIf(c.Company == "", c.Company), c.Type,
		c.Unit, c.Channel, c.Country, date(c.Created), nullDate(c.LastContact), c.Created})
}

func (s *pgSink) Signup(u *Signup) error {
	return s.add(3, []any{"W" + pad(u.No, 6), u.Email, u.Mobile, u.Name, u.SignedUp})
}

func prioIndex(p string) int {
	for i, q := range priorities {
		if q == p {
			return i
		}
	}
	return 1
}

// money is an exact numeric with two decimals.
func money(f float64) pgtype.Numeric {
	return pgtype.Numeric{Int: big.NewInt(int64(math.Round(f * 100))), Exp: -2, Valid: true}
}

func nullTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t
}

func date(t time.Time) pgtype.Date {
	return pgtype.Date{Time: t.UTC().Truncate(24 * time.Hour), Valid: true}
}

func nullDate(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return date(t)
}

func nilIf(cond bool, v any) any {
	if cond {
		return nil
	}
	return v
}

// chanSource feeds pgx CopyFrom from batches arriving on a channel.
type chanSource struct {
	ch    chan [][]any
	batch [][]any
	i     int
}

func (c *chanSource) Next() bool {
	c.i++
	for c.i >= len(c.batch) {
		b, ok := <-c.ch
		if !ok {
			return false
		}
		c.batch, c.i = b, 0
	}
	return true
}

func (c *chanSource) Values() ([]any, error) { return c.batch[c.i], nil }
func (c *chanSource) Err() error             { return nil }
