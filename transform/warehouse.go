package transform

import (
	"database/sql"

	"github.com/cdwhq/cdw/internal/duck"
)

// Settings tune DuckDB for the warehouse (internal/duck owns them).
type Settings = duck.Settings

// Open opens (creating if needed) the warehouse's DuckDB file with cdw's
// session settings on every connection (duck.Open: UTC, memory and thread
// limits, spill directory; the file made private).
func Open(path string, s Settings) (*sql.DB, error) { return duck.Open(path, s) }
