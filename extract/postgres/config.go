package postgres

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"gopkg.in/yaml.v3"

	"github.com/cdwhq/cdw/extract"
	"github.com/cdwhq/cdw/internal/config"
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
	DefaultConnectTimeout = 15 * time.Second
)

// options are the settings of one postgres source in cdw.yaml.
type options struct {
	DSN            string         `yaml:"dsn"`
	Host           string         `yaml:"host"`
	Port           int            `yaml:"port"`
	Database       string         `yaml:"database"`
	User           string         `yaml:"user"`
	PasswordEnv    string         `yaml:"password_env"`
	SSLMode        string         `yaml:"sslmode"`
	SafetyLag      *time.Duration `yaml:"safety_lag"`
	CheckpointRows int64          `yaml:"checkpoint_rows"`
	Parallel       int            `yaml:"parallel"`
	ConnectTimeout time.Duration  `yaml:"connect_timeout"`
	Mode           string         `yaml:"mode"`         // cdc: every entity by logical replication (cdc.go)
	MaxSlotWAL     string         `yaml:"max_slot_wal"` // warn above this much WAL held by a slot, e.g. 1GB
	Entities       config.Node    `yaml:"entities" required:"true"`
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

// connSettings is how to reach the server, with the password kept apart so
// that it can be scrubbed from every message.
type connSettings struct {
	cfg      *pgx.ConnConfig
	where    string // host:port, database and user, for messages
	password string
}

var sslModes = map[string]bool{"disable": true, "allow": true, "prefer": true, "require": true, "verify-ca": true, "verify-full": true}

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
	if o.ConnectTimeout < 0 {
		return nil, connSettings{}, nil, n.Get("connect_timeout").Errorf("must not be negative")
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

// conn builds the connection settings. The password comes only from the
// environment variable named by password_env, never from the config file.
func (o *options) conn(n config.Node) (connSettings, error) {
	var cs connSettings
	if o.PasswordEnv != "" {
		pw, ok := os.LookupEnv(o.PasswordEnv)
		if !ok || pw == "" {
			return cs, n.Get("password_env").Errorf("environment variable %s is not set", o.PasswordEnv)
		}
		cs.password = pw
		secret.Add(pw)
	}
	var connString string
	if o.DSN != "" {
		for _, k := range []string{"host", "port", "database", "user", "sslmode"} {
			if n.Get(k).Y != nil {
				return cs, n.Get(k).Errorf("give either dsn or host/port/database/user/sslmode, not both")
			}
		}
		if dsnHasPassword(o.DSN) {
			// The DSN itself is not repeated: it holds the secret.
			return cs, n.Get("dsn").Errorf("contains a password; put the password in an environment variable and name it in password_env")
		}
		connString = o.DSN
	} else {
		if o.Host == "" {
			return cs, n.Errorf("missing required key \"host\" (or give dsn)")
		}
		if o.Database == "" {
			return cs, n.Errorf("missing required key \"database\" (or give dsn)")
		}
		if o.User == "" {
			return cs, n.Errorf("missing required key \"user\" (or give dsn)")
		}
		port := o.Port
		if port == 0 {
			port = 5432
		}
		if port < 1 || port > 65535 {
			return cs, n.Get("port").Errorf("expected a port number, found %d", o.Port)
		}
		ssl := o.SSLMode
		if ssl == "" {
			ssl = "prefer"
		}
		if !sslModes[ssl] {
			return cs, n.Get("sslmode").Errorf("expected one of disable, allow, prefer, require, verify-ca, verify-full; found %q", ssl)
		}
		connString = fmt.Sprintf("host=%s port=%d dbname=%s user=%s sslmode=%s",
			quoteConnValue(o.Host), port, quoteConnValue(o.Database), quoteConnValue(o.User), ssl)
	}
	cfg, err := pgx.ParseConfig(connString)
	if err != nil {
		// pgx redacts passwords it recognizes; scrub ours too.
		return cs, n.Get("dsn").Errorf("%s", redactText(err.Error(), cs.password))
	}
	if cs.password != "" {
		cfg.Password = cs.password
	}
	cfg.ConnectTimeout = DefaultConnectTimeout
	if o.ConnectTimeout > 0 {
		cfg.ConnectTimeout = o.ConnectTimeout
	}
	// Fixed session settings make text output (columns read as text, cursor
	// values) the same whatever the server's or the role's defaults are.
	for k, v := range map[string]string{
		"application_name":   "cdw",
		"TimeZone":           "UTC",
		"DateStyle":          "ISO, YMD",
		"IntervalStyle":      "postgres",
		"extra_float_digits": "3",
	} {
		cfg.RuntimeParams[k] = v
	}
	cs.cfg = cfg
	cs.where = fmt.Sprintf("%s:%d database %s as user %s", cfg.Host, cfg.Port, cfg.Database, cfg.User)
	return cs, nil
}

// dsnHasPassword reports a password in a URL (postgres://u:pw@h/db or
// ?password=) or in key=value form (password=…).
func dsnHasPassword(dsn string) bool {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		u, err := url.Parse(dsn)
		if err != nil {
			return strings.Contains(dsn, "@") // unparsable: assume the worst
		}
		if _, ok := u.User.Password(); ok {
			return true
		}
		return u.Query().Has("password")
	}
	for _, f := range strings.Fields(dsn) {
		k, _, _ := strings.Cut(f, "=")
		if strings.TrimSpace(k) == "password" {
			return true
		}
	}
	return false
}

func quoteConnValue(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
}

// connect opens one connection. Errors name the server, database and user
// and never contain the password.
func (s *Source) connect(ctx context.Context) (*pgx.Conn, error) {
	conn, err := pgx.ConnectConfig(ctx, s.conn.cfg.Copy())
	if err != nil {
		err = fmt.Errorf("connecting to PostgreSQL at %s: %w", s.conn.where, err)
		// pgx reports each attempt (sslmode=prefer tries TLS, then plain) on
		// its own line; a user-facing failure is one line.
		return nil, &textError{text: oneLine(redactText(err.Error(), s.conn.password)), cause: err}
	}
	return conn, nil
}

// textError replaces an error's text (password removed, one line) while
// keeping the chain for errors.Is and errors.As. Its cause may still hold the
// password in its own text: print the textError, not what it wraps.
type textError struct {
	text  string
	cause error
}

func (e *textError) Error() string { return e.text }
func (e *textError) Unwrap() error { return e.cause }

// redact returns err with the source's password removed from its message.
func (s *Source) redact(err error) error {
	if err == nil {
		return nil
	}
	if text := secret.Scrub(err.Error()); text != err.Error() {
		return &textError{text: text, cause: err}
	}
	return err
}

// oneLine joins the lines of a message with "; ", dropping repeated ones.
func oneLine(msg string) string {
	var parts []string
	seen := map[string]bool{}
	for _, l := range strings.Split(msg, "\n") {
		l = strings.TrimSpace(l)
		if l == "" || seen[l] {
			continue
		}
		seen[l] = true
		parts = append(parts, l)
	}
	return strings.Join(parts, " ")
}

// redactText scrubs every secret cdw knows (this password included, which
// conn registered) from text.
func redactText(text, _ string) string { return secret.Scrub(text) }
