package transform

import (
	"context"
	"database/sql"
	"fmt"
	"sort"
	"sync"
)

// GoModel is a model computed in Go rather than SQL: statistical fits such as
// the BG/NBD and Gamma-Gamma CLV models, which SQL cannot express. It sits in
// the same graph as SQL models: it names the relations it reads and creates
// one table named Name.
type GoModel struct {
	Name        string
	Deps        []string
	Description string
	Columns     []ColumnDoc
	Tags        []string
	// Build creates or replaces the table Name and returns its row count.
	// Notes are shown in the run summary (e.g. a fallback that was used).
	Build func(ctx context.Context, conn *sql.Conn, vars Vars) (rows int64, notes string, err error)
	// OutsideMemory, if set, says how many bytes Build will hold outside
	// DuckDB at most; the runner lowers DuckDB's memory_limit by that much
	// while Build runs, so that the two together stay within the limit.
	OutsideMemory func(ctx context.Context, conn *sql.Conn) (int64, error)
}

// Function registers Go scalar functions on a DuckDB connection.
type Function func(conn *sql.Conn) error

var (
	goMu      sync.Mutex
	goModels  = map[string]GoModel{}
	functions = map[string]Function{}
)

// RegisterGoModel adds a Go model to every project. Packages call it from init.
func RegisterGoModel(m GoModel) {
	goMu.Lock()
	defer goMu.Unlock()
	if _, dup := goModels[m.Name]; dup {
		panic("transform: Go model registered twice: " + m.Name)
	}
	goModels[m.Name] = m
}

// RegisterFunctions adds Go scalar functions (UDFs) that every warehouse
// connection gets, under a name used only for error messages.
func RegisterFunctions(name string, f Function) {
	goMu.Lock()
	defer goMu.Unlock()
	functions[name] = f
}

// InstallFunctions registers all Go functions on conn.
func InstallFunctions(conn *sql.Conn) error {
	goMu.Lock()
	names := make([]string, 0, len(functions))
	for n := range functions {
		names = append(names, n)
	}
	goMu.Unlock()
	sort.Strings(names)
	for _, n := range names {
		if err := functions[n](conn); err != nil {
			return fmt.Errorf("registering Go functions %s: %w", n, err)
		}
	}
	return nil
}

func registeredGoModels() []GoModel {
	goMu.Lock()
	defer goMu.Unlock()
	out := make([]GoModel, 0, len(goModels))
	for _, m := range goModels {
		out = append(out, m)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}
