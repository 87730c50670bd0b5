// Package duck owns cdw's use of DuckDB: opening a database file with cdw's
// session settings, quoting SQL identifiers and literals, and listing a
// database's tables. Every wing imports it instead of keeping its own copy.
package duck

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/duckdb/duckdb-go/v2"

	"github.com/cdwhq/cdw/internal/durable"
)

// Settings tune DuckDB for the warehouse (the duckdb: section of cdw.yaml).
type Settings struct {
	MemoryLimit string // e.g. "4GB"; DuckDB spills to TempDir beyond it
	Threads     int    // 0 = DuckDB's default (all cores)
	TempDir     string // spill directory; default <database dir>/tmp
	ReadOnly    bool
}

// Boot is the SQL run on every new connection of a database at path: UTC time
// zone, so dates in marts do not depend on the machine's zone, plus the memory
// and thread limits and (when writable) the spill directory.
func (s Settings) Boot(path string) []string {
	boot := []string{"SET TimeZone = 'UTC'"}
	if s.MemoryLimit != "" {
		boot = append(boot, "SET memory_limit = "+Literal(s.MemoryLimit))
	}
	if s.Threads > 0 {
		boot = append(boot, fmt.Sprintf("SET threads = %d", s.Threads))
	}
	if !s.ReadOnly {
		tmp := s.TempDir
		if tmp == "" {
			tmp = filepath.Join(filepath.Dir(path), "tmp")
		}
		boot = append(boot, "SET temp_directory = "+Literal(tmp))
	}
	return boot
}

// Open opens (creating if needed) a DuckDB database file with the settings
// applied to every connection. A writable file is made private (durable.FilePerm):
// DuckDB creates it by the umask, and it holds customer data.
func Open(path string, s Settings) (*sql.DB, error) {
	if err := os.MkdirAll(filepath.Dir(path), durable.DirPerm); err != nil {
		return nil, fmt.Errorf("creating %s: %w", filepath.Dir(path), err)
	}
	dsn := path
	if s.ReadOnly {
		dsn += "?access_mode=read_only"
	}
	boot := s.Boot(path)
	conn, err := duckdb.NewConnector(dsn, func(ex driver.ExecerContext) error {
		for _, q := range boot {
			if _, err := ex.ExecContext(context.Background(), q, nil); err != nil {
				return fmt.Errorf("%s: %w", q, err)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("opening DuckDB %s: %w", path, err)
	}
	if !s.ReadOnly {
		os.Chmod(path, durable.FilePerm)
	}
	return sql.OpenDB(conn), nil
}

// OpenMemory opens an in-memory DuckDB on one connection, so that ATTACHed
// files and temporary tables are seen by every statement.
func OpenMemory() (*sql.DB, error) {
	db, err := sql.Open("duckdb", "")
	if err != nil {
		return nil, fmt.Errorf("opening in-memory DuckDB: %w", err)
	}
	db.SetMaxOpenConns(1)
	return db, nil
}

// Ident quotes an identifier, or a dotted name given as parts
// (Ident("main", "orders") = "main"."orders"). It works for DuckDB and
// PostgreSQL alike: both double a double quote inside one.
func Ident(parts ...string) string {
	var b strings.Builder
	for i, p := range parts {
		if i > 0 {
			b.WriteByte('.')
		}
		b.WriteByte('"')
		b.WriteString(strings.ReplaceAll(p, `"`, `""`))
		b.WriteByte('"')
	}
	return b.String()
}

// Idents quotes each name and joins them with ", " for a column list.
func Idents(names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = Ident(n)
	}
	return strings.Join(q, ", ")
}

// Literal quotes a string literal (DuckDB and PostgreSQL with
// standard_conforming_strings, the default since 9.1).
func Literal(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// Literals quotes each string and joins them with ", " for an IN list.
func Literals(ss []string) string {
	q := make([]string, len(ss))
	for i, s := range ss {
		q[i] = Literal(s)
	}
	return strings.Join(q, ", ")
}

// Querier is what Tables needs: a *sql.DB, *sql.Conn or *sql.Tx.
type Querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// Tables lists the base tables (not views) of one schema of an attached
// database, sorted by name; database "" means the current one. It reads
// duckdb_tables(), which unlike information_schema.tables is not a join over
// every attached database's tables and views.
func Tables(ctx context.Context, q Querier, database, schema string) ([]string, error) {
	return list(ctx, q, `SELECT table_name FROM duckdb_tables()
		WHERE database_name = coalesce(nullif(?, ''), current_database()) AND schema_name = ? ORDER BY 1`, database, schema)
}

// Relations lists the tables and the (user-defined) views of one schema of
// an attached database, sorted by name; database "" means the current one.
func Relations(ctx context.Context, q Querier, database, schema string) ([]string, error) {
	return list(ctx, q, `SELECT table_name FROM duckdb_tables()
		WHERE database_name = coalesce(nullif($1, ''), current_database()) AND schema_name = $2
		UNION ALL SELECT view_name FROM duckdb_views()
		WHERE NOT internal AND database_name = coalesce(nullif($1, ''), current_database()) AND schema_name = $2
		ORDER BY 1`, database, schema)
}

func list(ctx context.Context, q Querier, query, database, schema string) ([]string, error) {
	where := Ident(database, schema)
	if database == "" {
		where = Ident(schema)
	}
	rows, err := q.QueryContext(ctx, query, database, schema)
	if err != nil {
		return nil, fmt.Errorf("listing relations of %s: %w", where, err)
	}
	defer rows.Close()
	var names []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			return nil, fmt.Errorf("listing relations of %s: %w", where, err)
		}
		names = append(names, n)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("listing relations of %s: %w", where, err)
	}
	return names, nil
}
