package postgres

import (
	"context"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"gopkg.in/yaml.v3"

	"github.com/cdwhq/cdw/extract"
	"github.com/cdwhq/cdw/internal/config"
	"github.com/cdwhq/cdw/internal/pgconf"
	"github.com/cdwhq/cdw/internal/secret"
)

// Defaults of the source-level settings.
const (
	// DefaultSafetyLag keeps rows whose cursor value is younger than this out of
	// a read: a transaction that stamped updated_at = now() but committed up to
	// this much later is still picked up by the next read instead of being
	// skipped. A warehouse refreshed every few minutes loses nothing by waiting
	// a minute, and few OLTP transactions stay open that long.
	DefaultSafetyLag = time.Minute
	// DefaultCheckpointRows is how many rows a read hands over between
	// checkpoints: each one makes a raw file durable and commits the cursor,
	// so a crash during a huge first load repeats at most this many rows.
	DefaultCheckpointRows = 1_000_000
	// DefaultConnectTimeout bounds connecting, so a dead host fails a run
	// instead of hanging it.
	DefaultConnectTimeout = pgconf.DefaultConnectTimeout
)

// options are the settings of one postgres source in cdw.yaml.
type options struct {
	pgconf.Options `yaml:",inline"` // dsn or host/port/database/user/sslmode, password_env, connect_timeout
	SafetyLag      *time.Duration   `yaml:"safety_lag"`
	CheckpointRows int64            `yaml:"checkpoint_rows"`
	Parallel       int              `yaml:"parallel"`
	Mode           string           `yaml:"mode"`         // cdc: every entity by logical replication (cdc.go)
	MaxSlotWAL     string           `yaml:"max_slot_wal"` // warn above this much WAL held by a slot, e.g. 1GB
	Entities       config.Node      `yaml:"entities" required:"true"`
}

// entityOptions configure where one entity's rows come from.
type entityOptions struct {
	Table   string      `yaml:"table"`
	Query   string      `yaml:"query"`
	Cursor  string      `yaml:"cursor"`
	Key     []string    `yaml:"key"`
	Columns config.Node `yaml:"columns"`
	Exclude []string    `yaml:"exclude"`
	Mode    string      `yaml:"mode"` // cdc, or cursor/full (the default: cursor when cursor is set)
}

// entityConfig is a validated entityOptions.
type entityConfig struct {
	entity  extract.Entity
	table   pgx.Identifier      // schema and table, or nil for a query
	query   string              // user SQL, read as a subquery
	cursor  string              // source column; "" = full mode
	key     []string            // source columns; nil = derive from the entity key
	columns map[string]string   // canonical column → source column
	parts   map[string][]string // canonical column → the source columns of a composite key
	exclude map[string]bool     // source columns not passed through
	cdc     bool                // mode: cdc (cdc.go)
}

// what names the entity's source in messages: the table, or the entity's query.
func (e *entityConfig) what() string {
	if e.table != nil {
		return "table " + strings.Join(e.table, ".")
	}
	return "the query of entity " + e.entity.Name
}

// from is the FROM item of every statement on the entity.
func (e *entityConfig) from() string {
	if e.table != nil {
		return e.table.Sanitize() + " AS src"
	}
	return "(" + e.query + ") AS src"
}

// connSettings is how to reach the server (internal/pgconf, shared with the
// postgres publisher).
type connSettings = pgconf.Settings

// parseOptions validates a source's settings; errors name file, line and key.
// It reads the password from the environment but does not connect.
func parseOptions(n config.Node) (*options, connSettings, map[string]*entityConfig, error) {
	var o options
	if err := n.Decode(&o); err != nil {
		return nil, connSettings{}, nil, err
	}
	cs, err := o.conn(n)
	if err != nil {
		return nil, connSettings{}, nil, err
	}
	if o.SafetyLag != nil && *o.SafetyLag < 0 {
		return nil, connSettings{}, nil, n.Get("safety_lag").Errorf("must not be negative")
	}
	if o.CheckpointRows < 0 {
		return nil, connSettings{}, nil, n.Get("checkpoint_rows").Errorf("must be a positive number of rows")
	}
	if o.Parallel < 0 {
		return nil, connSettings{}, nil, n.Get("parallel").Errorf("must be a positive number of connections")
	}
	if o.Mode != "" && o.Mode != modeCDC {
		return nil, connSettings{}, nil, n.Get("mode").Errorf("expected cdc (or leave it out: cursor or full per entity), found %q", o.Mode)
	}
	if o.MaxSlotWAL != "" {
		if _, err := parseSize(o.MaxSlotWAL); err != nil {
			return nil, connSettings{}, nil, n.Get("max_slot_wal").Errorf("%v", err)
		}
	}
	if o.Entities.Y == nil || o.Entities.Y.Kind != yaml.MappingNode || len(o.Entities.Keys()) == 0 {
		return nil, connSettings{}, nil, o.Entities.Errorf("expected a mapping of entity names (%s) to their table or query", strings.Join(extract.EntityNames(), ", "))
	}
	ents := map[string]*entityConfig{}
	for _, name := range o.Entities.Keys() {
		en := o.Entities.Get(name)
		ent, err := extract.ResolveEntity(name)
		if err != nil {
			return nil, connSettings{}, nil, en.Errorf("%v", err)
		}
		if ent.Raw && en.Get("columns").Y != nil {
			return nil, connSettings{}, nil, en.Get("columns").Errorf("%s is a raw table (no entity of that name: %s): its columns land as the source has them; map them in a SQL model, or name a canonical entity",
				name, strings.Join(extract.EntityNames(), ", "))
		}
		ec, err := parseEntity(en, ent, o.Mode)
		if err != nil {
			return nil, connSettings{}, nil, err
		}
		ents[name] = ec
	}
	return &o, cs, ents, nil
}

func parseEntity(n config.Node, ent extract.Entity, sourceMode string) (*entityConfig, error) {
	var eo entityOptions
	if err := n.Decode(&eo); err != nil {
		return nil, err
	}
	mode := eo.Mode
	if mode == "" {
		mode = sourceMode
	}
	ec := &entityConfig{entity: ent, columns: map[string]string{}, parts: map[string][]string{}, exclude: map[string]bool{}}
	switch {
	case (eo.Table == "") == (strings.TrimSpace(eo.Query) == ""):
		return nil, n.Errorf("give exactly one of table or query")
	case eo.Table != "":
		parts := strings.Split(eo.Table, ".")
		if len(parts) > 2 {
			return nil, n.Get("table").Errorf("expected table or schema.table, found %q", eo.Table)
		}
		for _, p := range parts {
			if err := checkName(p); err != nil {
				return nil, n.Get("table").Errorf("%q: %v", eo.Table, err)
			}
		}
		ec.table = parts
	default:
		q := strings.TrimSpace(eo.Query)
		q = strings.TrimSpace(strings.TrimRight(q, "; \t\r\n"))
		ec.query = q
	}
	if eo.Cursor != "" {
		if err := checkName(eo.Cursor); err != nil {
			return nil, n.Get("cursor").Errorf("%q: %v", eo.Cursor, err)
		}
		ec.cursor = eo.Cursor
	}
	for i, k := range eo.Key {
		if err := checkName(k); err != nil {
			return nil, n.Get("key").Errorf("%q: %v", k, err)
		}
		for _, prev := range eo.Key[:i] {
			if prev == k {
				return nil, n.Get("key").Errorf("column %q listed twice", k)
			}
		}
		if k == ec.cursor {
			return nil, n.Get("key").Errorf("column %q is the cursor; the key is what tells rows with the same cursor value apart", k)
		}
	}
	ec.key = eo.Key
	switch mode {
	case "", modeCursor, modeFull:
	case modeCDC:
		if ec.table == nil {
			return nil, n.Errorf("mode: cdc reads a table's changes from the write-ahead log; give table:, not query:")
		}
		if ec.cursor != "" {
			return nil, n.Get("cursor").Errorf("mode: cdc reads every change from the write-ahead log and has no cursor; remove cursor: or the mode")
		}
		ec.cdc = true
	default:
		return nil, n.Get("mode").Errorf("expected cdc, cursor or full, found %q", mode)
	}
	if mode == modeCursor && ec.cursor == "" {
		return nil, n.Get("mode").Errorf("mode: cursor needs cursor: (the column that grows on every change)")
	}
	if cn := eo.Columns; cn.Y != nil {
		if cn.Y.Kind != yaml.MappingNode {
			return nil, cn.Errorf("expected a mapping of canonical column names to source column names, e.g. {order_id: order_no}")
		}
		for _, canon := range cn.Keys() {
			vn := cn.Get(canon)
			if _, ok := ent.Column(canon); !ok {
				return nil, vn.Errorf("%s has no column %q (its columns: %s)", ent.Name, canon, columnNames(ent))
			}
			if vn.Y.Kind == yaml.SequenceNode {
				parts, err := keyParts(vn, ent, canon)
				if err != nil {
					return nil, err
				}
				ec.parts[canon] = parts
				continue
			}
			if vn.Y.Kind != yaml.ScalarNode || vn.Y.Value == "" {
				return nil, vn.Errorf("expected the name of a source column, or a list of them for a composite key, e.g. [customer, day]")
			}
			if err := checkName(vn.Y.Value); err != nil {
				return nil, vn.Errorf("%q: %v", vn.Y.Value, err)
			}
			ec.columns[canon] = vn.Y.Value
		}
	}
	for _, x := range eo.Exclude {
		if err := checkName(x); err != nil {
			return nil, n.Get("exclude").Errorf("%q: %v", x, err)
		}
		for canon, src := range ec.columns {
			if src == x {
				return nil, n.Get("exclude").Errorf("column %q is mapped to %s under columns; exclude only drops columns that would be passed through", x, canon)
			}
		}
		for canon, parts := range ec.parts {
			if slices.Contains(parts, x) {
				return nil, n.Get("exclude").Errorf("column %q is part of the key %s under columns; exclude only drops columns that would be passed through", x, canon)
			}
		}
		ec.exclude[x] = true
	}
	return ec, nil
}

// keyParts reads a composite key mapping such as order_id: [customer, day]:
// source columns whose text values are joined with extract.KeySeparator.
func keyParts(vn config.Node, ent extract.Entity, canon string) ([]string, error) {
	if c, _ := ent.Column(canon); c.Type != extract.String {
		return nil, vn.Errorf("%s is a %s column; only text columns such as ids take a list of source columns", canon, c.Type)
	}
	if len(vn.Y.Content) < 2 {
		return nil, vn.Errorf("a composite key needs at least two source columns (or give one column without brackets)")
	}
	var parts []string
	for _, item := range vn.Y.Content {
		if item.Kind != yaml.ScalarNode {
			return nil, vn.Errorf("expected a list of source column names, e.g. [customer, day]")
		}
		if err := checkName(item.Value); err != nil {
			return nil, vn.Errorf("%q: %v", item.Value, err)
		}
		if slices.Contains(parts, item.Value) {
			return nil, vn.Errorf("source column %q listed twice", item.Value)
		}
		parts = append(parts, item.Value)
	}
	return parts, nil
}

// checkName accepts a PostgreSQL identifier as it is stored in the catalog
// (exact case, no folding). Names are always quoted in SQL, never pasted.
func checkName(s string) error {
	switch {
	case s == "":
		return errors.New("empty name")
	case len(s) > 63:
		return errors.New("longer than PostgreSQL's 63-byte identifiers")
	case strings.ContainsRune(s, 0):
		return errors.New("contains a NUL byte")
	}
	return nil
}

func columnNames(ent extract.Entity) string {
	names := make([]string, len(ent.Columns))
	for i, c := range ent.Columns {
		names[i] = c.Name
	}
	return strings.Join(names, ", ")
}

// conn builds the connection settings (internal/pgconf). Fixed session
// settings make text output (columns read as text, cursor values) the same
// whatever the server's or the role's defaults are.
func (o *options) conn(n config.Node) (connSettings, error) {
	cs, err := pgconf.Parse(n, o.Options, "cdw")
	if err != nil {
		return cs, err
	}
	for k, v := range map[string]string{
		"TimeZone":           "UTC",
		"DateStyle":          "ISO, YMD",
		"IntervalStyle":      "postgres",
		"extra_float_digits": "3",
	} {
		cs.Config.RuntimeParams[k] = v
	}
	return cs, nil
}

// connect opens one connection. Errors name the server, database and user,
// are one line and never contain the password.
func (s *Source) connect(ctx context.Context) (*pgx.Conn, error) { return s.conn.Connect(ctx) }

// redact returns err with every secret cdw knows (the source's password
// included) removed from its message.
func (s *Source) redact(err error) error { return secret.Err(err) }
