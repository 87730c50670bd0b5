package transform

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"strings"

	"github.com/cdwhq/cdw/internal/duck"
)

// byteUnits are the size units DuckDB's memory_limit accepts.
var byteUnits = map[string]float64{
	"": 1, "b": 1, "byte": 1, "bytes": 1,
	"kb": 1e3, "mb": 1e6, "gb": 1e9, "tb": 1e12,
	"kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30, "tib": 1 << 40,
}

// parseBytes reads a memory size as DuckDB's memory_limit takes it:
// "2.5GB", "512 MiB", "1000000 bytes".
func parseBytes(s string) (int64, error) {
	t := strings.ToLower(strings.TrimSpace(s))
	i := strings.IndexFunc(t, func(r rune) bool { return (r < '0' || r > '9') && r != '.' })
	if i < 0 {
		i = len(t)
	}
	n, err := strconv.ParseFloat(t[:i], 64)
	unit, ok := byteUnits[strings.TrimSpace(t[i:])]
	if err != nil || !ok || n <= 0 {
		return 0, fmt.Errorf("memory size %q: expected a number and a unit such as 2.5GB or 512MiB", s)
	}
	return int64(n * unit), nil
}

// reserveMemory lowers DuckDB's memory_limit by need bytes until restore is
// called, which sets the configured limit back. A Go model whose own data
// (identity's union-find forest) lives outside DuckDB would otherwise sit on
// top of a buffer pool filled to the limit, and the process would exceed
// what memory_limit promised by that much. Without a configured limit there
// is nothing to keep: DuckDB's default is a share of the machine's memory.
// Only a configured limit that cannot be read is an error.
func (r *Runner) reserveMemory(ctx context.Context, conn *sql.Conn, need int64) (restore func(), err error) {
	noop := func() {}
	if r.MemoryLimit == "" || need <= 0 {
		return noop, nil
	}
	limit, err := parseBytes(r.MemoryLimit)
	if err != nil {
		return noop, err
	}
	lowered := max(limit-need, limit/2) // keep DuckDB room to work
	if _, err := conn.ExecContext(ctx, fmt.Sprintf("SET memory_limit = '%d bytes'", lowered)); err != nil {
		// DuckDB could not evict enough to meet the lower limit: build
		// anyway, as without the reservation.
		r.log().Warn("could not lower memory_limit for a Go model", "by_mib", need>>20, "err", err)
		return noop, nil
	}
	return func() {
		if _, err := conn.ExecContext(context.WithoutCancel(ctx), "SET memory_limit = "+duck.Literal(r.MemoryLimit)); err != nil {
			r.log().Warn("setting memory_limit back", "memory_limit", r.MemoryLimit, "err", err)
		}
	}, nil
}
