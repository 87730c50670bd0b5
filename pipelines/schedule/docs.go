package schedule

import (
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"sync"

	"github.com/cdwhq/cdw/pipelines"
)

// docsSite serves the documentation site at /docs/. The site is built on
// the first request and again when the warehouse has changed since (a run
// of this process or another's), so a page shows the last finished run.
type docsSite struct {
	runner *pipelines.Runner
	log    *slog.Logger

	mu    sync.Mutex
	key   string // the warehouse file's size and modification time at the build
	files fs.FS
}

func (d *docsSite) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	files, err := d.current(r)
	if err != nil {
		d.log.Error("building the docs", "err", err)
		http.Error(w, "cdw: building the docs failed: "+err.Error(), http.StatusInternalServerError)
		return
	}
	http.StripPrefix("/docs", http.FileServerFS(files)).ServeHTTP(w, r)
}

func (d *docsSite) current(r *http.Request) (fs.FS, error) {
	key := ""
	if st, err := os.Stat(filepath.Join(d.runner.Cfg.Warehouse, "warehouse.duckdb")); err == nil {
		key = fmt.Sprint(st.Size(), st.ModTime().UnixNano())
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.files != nil && d.key == key {
		return d.files, nil
	}
	site, _, err := d.runner.Docs(r.Context())
	if err != nil {
		return nil, err
	}
	files, err := site.FS()
	if err != nil {
		return nil, err
	}
	d.files, d.key = files, key
	return files, nil
}
