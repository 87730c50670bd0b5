package main

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/cdwhq/cdw/internal/duck"
	"github.com/cdwhq/cdw/load/duckdbfile"
	"github.com/cdwhq/cdw/pipelines"
	"github.com/cdwhq/cdw/transform"
)

func init() {
	register(&command{
		name:    "query",
		summary: "Run read-only SQL over the published marts and print the result.",
		usage:   `"SQL"`,
		setup: func(fs *pflag.FlagSet) func(context.Context, []string) error {
			cfgPath := configFlag(fs)
			dir := fs.String("dir", "", "warehouse directory (instead of --config)")
			wh := fs.Bool("warehouse", false, "query warehouse.duckdb (staging, core, run records such as cdw_model_runs and cdw_test_runs) instead of the published marts; reads a copy as of the last finished run (state/snapshot/), so it never blocks a run")
			format := fs.String("format", "table", "output format: table, csv or json")
			limit := fs.Int("limit", 1000, "table format: print at most this many rows")
			return func(ctx context.Context, args []string) error {
				if len(args) != 1 {
					return errors.New(`give exactly one SQL statement in quotes, e.g. cdw query "SELECT * FROM segment_summary"`)
				}
				// With --config the query runs under the duckdb: limits of the
				// warehouse; --dir has no config, so DuckDB's defaults.
				var cfg *pipelines.Config
				var set duck.Settings
				if *dir == "" {
					var err error
					if cfg, err = pipelines.LoadConfig(*cfgPath); err != nil {
						return err
					}
					set = duck.Settings(cfg.Settings())
				}
				path, err := martsFile(cfg, *dir)
				if *wh {
					path, err = warehouseFile(cfg, *dir)
				}
				if err != nil {
					return err
				}
				return query(ctx, path, set, args[0], *format, *limit, out)
			}
		},
	})
}

// martsFile finds the published marts.duckdb of a warehouse.
func martsFile(cfg *pipelines.Config, dir string) (string, error) {
	path := duckdbfile.DefaultPath(dir)
	if dir == "" {
		var err error
		if path, err = cfg.MartsPath(); err != nil {
			return "", err
		}
	}
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("no published marts at %s: run 'cdw run' (or 'cdw demo') first", path)
	}
	return path, nil
}

// warehouseFile returns a snapshot of warehouse.duckdb (see
// pipelines.WarehouseSnapshot): opening the warehouse itself would make a
// run starting meanwhile fail on DuckDB's file lock.
func warehouseFile(cfg *pipelines.Config, dir string) (string, error) {
	if dir == "" {
		dir = cfg.Warehouse
	}
	snap, err := pipelines.WarehouseSnapshot(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("no warehouse at %s: run 'cdw run' (or 'cdw demo') first", filepath.Join(dir, "warehouse.duckdb"))
	}
	if err != nil {
		return "", err
	}
	if snap.Stale {
		fmt.Fprintf(errOut, "cdw query: a run is writing the warehouse (%s): reading it as of %s, before that run\n",
			snap.Holder, snap.AsOf.UTC().Format(time.RFC3339))
	}
	return snap.Path, nil
}

// query runs one SQL statement on a read-only connection with external access
// disabled, so a query can read the marts but cannot write files or attach
// other databases; set carries the warehouse's memory and thread limits.
func query(ctx context.Context, path string, set duck.Settings, q, format string, limit int, w io.Writer) error {
	set.ReadOnly, set.TempDir = true, ""
	db, err := duck.Open(path, set)
	if err != nil {
		return err
	}
	defer db.Close()
	conn, err := db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("opening %s: %w", path, err)
	}
	defer conn.Close()
	// The warehouse's Go functions (bgnbd_expected_purchases, clv_value, …)
	// answer any horizon without writing a model.
	if err := transform.InstallFunctions(conn); err != nil {
		return fmt.Errorf("opening %s: %w", path, err)
	}
	for _, s := range []string{"SET enable_external_access = false", "SET lock_configuration = true"} {
		if _, err := conn.ExecContext(ctx, s); err != nil {
			return fmt.Errorf("securing the query connection: %w", err)
		}
	}
	if err := oneStatement(conn, q); err != nil {
		return err
	}
	rows, err := conn.QueryContext(ctx, q)
	if err != nil {
		return fmt.Errorf("query: %w", err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return err
	}
	vals := make([]any, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	var (
		t   = &table{header: cols}
		cw  *csv.Writer
		enc *json.Encoder
		n   int
	)
	switch format {
	case "table":
	case "csv":
		cw = csv.NewWriter(w)
		cw.Write(cols)
	case "json":
		enc = json.NewEncoder(w)
	default:
		return fmt.Errorf("--format %q: use table, csv or json", format)
	}
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return fmt.Errorf("reading result: %w", err)
		}
		n++
		switch {
		case cw != nil:
			rec := make([]string, len(vals))
			for i, v := range vals {
				rec[i] = cell(v, "")
			}
			cw.Write(rec)
		case enc != nil:
			obj := make(map[string]any, len(cols))
			for i, c := range cols {
				obj[c] = jsonValue(vals[i])
			}
			if err := enc.Encode(obj); err != nil {
				return err
			}
		default:
			if n <= limit {
				rec := make([]string, len(vals))
				for i, v := range vals {
					rec[i] = cell(v, "NULL")
				}
				t.add(rec...)
			}
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("query: %w", err)
	}
	if cw != nil {
		cw.Flush()
		return cw.Error()
	}
	if enc == nil {
		t.print(w)
		more := ""
		if n > limit {
			more = fmt.Sprintf(" (%d shown; raise --limit or use --format csv)", limit)
		}
		fmt.Fprintf(w, "(%d rows)%s\n", n, more)
	}
	return nil
}

// oneStatement refuses SQL with several statements: DuckDB would run them all
// and return only the last result.
func oneStatement(conn *sql.Conn, q string) error {
	return conn.Raw(func(dc any) error {
		st, err := dc.(driver.Conn).Prepare(q)
		if err != nil {
			// duckdb-go's Prepare takes exactly one statement; other errors
			// (syntax, unknown table) are reported by the query itself.
			if strings.Contains(err.Error(), "multi-statement") {
				return errors.New("give one SQL statement: this text has several (run them one at a time; only SELECT-style reads work here)")
			}
			return nil
		}
		return st.Close()
	})
}

func cell(v any, null string) string {
	switch x := v.(type) {
	case nil:
		return null
	case time.Time:
		if x.Hour() == 0 && x.Minute() == 0 && x.Second() == 0 && x.Nanosecond() == 0 {
			return x.Format("2006-01-02")
		}
		return x.UTC().Format(time.RFC3339)
	case float64:
		return strings.TrimSuffix(strings.TrimRight(fmt.Sprintf("%.4f", x), "0"), ".")
	case []byte:
		return string(x)
	case *big.Int:
		return x.String()
	default:
		return fmt.Sprint(x)
	}
}

func jsonValue(v any) any {
	switch x := v.(type) {
	case time.Time:
		return cell(x, "")
	case []byte:
		return string(x)
	case *big.Int:
		return x.String()
	default:
		if _, ok := v.(fmt.Stringer); ok {
			return fmt.Sprint(v)
		}
		return v
	}
}
