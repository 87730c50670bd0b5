package transform

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

// Settings tune DuckDB for the warehouse.
type Settings struct {
	MemoryLimit string // e.g. "4GB"; DuckDB spills to TempDir beyond it
	Threads     int    // 0 = DuckDB's default (all cores)
	TempDir     string // spill directory; default <warehouse dir>/tmp
	ReadOnly    bool
}

// Open opens (creating if needed) a DuckDB database file with cdw's session
// settings on every connection: UTC time zone, so dates in marts do not depend
// on the machine's zone, plus the memory and thread limits.
func Open(path string, s Settings) (*sql.DB, error) {
	if err := os.MkdirAll(filepath.Dir(path), durable.DirPerm); err != nil {
		return nil, fmt.Errorf("creating %s: %w", filepath.Dir(path), err)
	}
	dsn := path
	if s.ReadOnly {
		dsn += "?access_mode=read_only"
	}
	boot := []string{"SET TimeZone = 'UTC'"}
	if s.MemoryLimit != "" {
		boot = append(boot, "SET memory_limit = "+sqlString(s.MemoryLimit))
	}
	if s.Threads > 0 {
		boot = append(boot, fmt.Sprintf("SET threads = %d", s.Threads))
	}
	if !s.ReadOnly {
		tmp := s.TempDir
		if tmp == "" {
			tmp = filepath.Join(filepath.Dir(path), "tmp")
		}
		boot = append(boot, "SET temp_directory = "+sqlString(tmp))
	}
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
	if !s.ReadOnly { // DuckDB creates the file by the umask (0644); it holds customer data
		os.Chmod(path, durable.FilePerm)
	}
	return sql.OpenDB(conn), nil
}

func sqlString(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }
