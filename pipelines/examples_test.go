package pipelines_test

import (
	"context"
	"database/sql"
	"io"
	"io/fs"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/cdwhq/cdw/extract/extracttest"
	"github.com/cdwhq/cdw/iceberg"
	"github.com/cdwhq/cdw/internal/crashtest"
	"github.com/cdwhq/cdw/internal/datasets"
	_ "github.com/cdwhq/cdw/load/iceberg"
	"github.com/cdwhq/cdw/pipelines"
	_ "github.com/cdwhq/cdw/transform/clv"
	_ "github.com/cdwhq/cdw/transform/identity" // identity_components, which the built-in models read
)

// checkIceberg reads every raw and mart table of the warehouse's default
// Iceberg catalog through iceberg-go's scanner and compares it with the
// committed raw files and the Parquet marts.
func checkIceberg(t *testing.T, b yamlBlock, wh string) {
	t.Helper()
	s := iceberg.Default(wh)
	if d := crashtest.Diff("iceberg raw vs raw files", extracttest.Raw(t, wh), extracttest.IcebergRaw(t, s, wh)); d != "" {
		t.Errorf("%s:%d: %s", b.file, b.line, d)
	}
	marts := crashtest.IcebergTables(t, s, "marts", func(string) []string { return nil })
	if len(marts) == 0 {
		t.Errorf("%s:%d: no Iceberg marts published", b.file, b.line)
	}
	if d := crashtest.Diff("iceberg mart vs parquet mart", crashtest.ParquetMarts(t, filepath.Join(wh, "marts")), marts); d != "" {
		t.Errorf("%s:%d: %s", b.file, b.line, d)
	}
}

// yamlBlock is a ```yaml block of a README: where it is and its text.
type yamlBlock struct {
	file string
	line int
	text string
}

var fenceRe = regexp.MustCompile("(?ms)^```yaml\n(.*?)^```")

// readmeBlocks returns every yaml block of README.md and the component
// READMEs.
func readmeBlocks(t *testing.T) []yamlBlock {
	t.Helper()
	var out []yamlBlock
	err := filepath.WalkDir("..", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == ".git" || d.Name() == "node_modules" || d.Name() == "testdata") {
			return filepath.SkipDir
		}
		if d.IsDir() || d.Name() != "README.md" {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		for _, m := range fenceRe.FindAllSubmatchIndex(b, -1) {
			out = append(out, yamlBlock{file: p, line: 1 + strings.Count(string(b[:m[0]]), "\n"), text: string(b[m[2]:m[3]])})
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// sharedDatasets maps the file names in ../shared/datasets to their paths.
func sharedDatasets(t *testing.T) map[string]string {
	t.Helper()
	out := map[string]string{}
	root := datasets.Path(t, ".")
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			out[d.Name()] = p
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestDocumentedExamples runs every source of a documented cdw.yaml snippet
// that reads a shared dataset end to end (extract → models → tests →
// publish), each source in a warehouse of its own with the snippet's vars
// and time zone, and checks that every row loaded and every mart was
// published. The CDNOW sample must give Fader, Hardie & Lee's BG/NBD fit.
func TestDocumentedExamples(t *testing.T) {
	data := sharedDatasets(t)
	ran := map[string]bool{}
	for _, b := range readmeBlocks(t) {
		var doc map[string]any
		if err := yaml.Unmarshal([]byte(b.text), &doc); err != nil {
			t.Errorf("%s:%d: yaml block does not parse: %v", b.file, b.line, err)
			continue
		}
		sources, _ := doc["sources"].([]any)
		for _, s := range sources {
			src, _ := s.(map[string]any)
			ents, _ := src["entities"].(map[string]any)
			reads := false
			for _, e := range ents {
				ent, _ := e.(map[string]any)
				if p, ok := ent["path"].(string); ok {
					if full, ok := data[filepath.Base(p)]; ok {
						ent["path"] = full
						reads = true
					}
				}
			}
			if !reads {
				continue
			}
			name, _ := src["name"].(string)
			ran[name] = true
			t.Run(name, func(t *testing.T) {
				cfg := map[string]any{"warehouse": "wh", "sources": []any{src},
					"publish": []any{map[string]any{"kind": "parquet"}}}
				for _, k := range []string{"vars", "timezone", "iceberg"} {
					if v, ok := doc[k]; ok {
						cfg[k] = v
					}
				}
				wh := ""
				if _, ok := doc["iceberg"]; ok {
					// The snippet's Iceberg targets beside Parquet, in a
					// warehouse this test reads back.
					pub, _ := doc["publish"].([]any)
					cfg["publish"] = append(cfg["publish"].([]any), pub...)
					wh = filepath.Join(t.TempDir(), "wh")
					cfg["warehouse"] = wh
				}
				db := runExample(t, b, cfg)
				if wh != "" {
					checkIceberg(t, b, wh)
				}
				if name == "cdnow_sample" {
					checkCDNOWFit(t, db)
				}
			})
		}
	}
	for _, want := range []string{"retail", "cdnow", "cdnow_sample"} {
		if !ran[want] {
			t.Errorf("no documented example source %q reads a shared dataset any more", want)
		}
	}
}

// runExample writes cfg, runs the pipeline and checks that nothing was
// rejected and every mart was published.
func runExample(t *testing.T, b yamlBlock, cfg map[string]any) *sql.DB {
	t.Helper()
	dir := t.TempDir()
	text, err := yaml.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	cfgPath := filepath.Join(dir, "cdw.yaml")
	if err := os.WriteFile(cfgPath, text, 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := pipelines.LoadConfig(cfgPath)
	if err != nil {
		t.Fatalf("%s:%d: %v", b.file, b.line, err)
	}
	r := &pipelines.Runner{Cfg: c}
	rep, err := r.Run(context.Background(), pipelines.Options{Steps: pipelines.AllSteps,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatalf("%s:%d: run: %v", b.file, b.line, err)
	}
	for _, e := range rep.Extract {
		if e.Rows == 0 || e.Rejected > 0 {
			t.Errorf("%s:%d: %s/%s loaded %d rows, rejected %d", b.file, b.line, e.Source, e.Entity, e.Rows, e.Rejected)
		}
	}
	project, err := r.Project(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range project.Models {
		if m.Published() && !slices.Contains(rep.Published, m.Name) {
			t.Errorf("%s:%d: mart %s not published", b.file, b.line, m.Name)
		}
	}
	db, err := sql.Open("duckdb", filepath.Join(c.Warehouse, "warehouse.duckdb")+"?access_mode=read_only")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// checkCDNOWFit compares clv_params (days) with FHL 2005's BG/NBD estimates
// on the CDNOW sample (weeks): r 0.243, α 4.414, a 0.793, b 2.426.
func checkCDNOWFit(t *testing.T, db *sql.DB) {
	t.Helper()
	var r, alpha, a, b float64
	var unit string
	if err := db.QueryRow(`SELECT r, alpha, a, b, time_unit FROM clv_params`).Scan(&r, &alpha, &a, &b, &unit); err != nil {
		t.Fatal(err)
	}
	if unit != "day" {
		t.Fatalf("clv_params.time_unit %q, want day", unit)
	}
	for _, c := range []struct {
		name      string
		got, want float64
	}{{"r", r, 0.243}, {"alpha per week", alpha / 7, 4.414}, {"a", a, 0.793}, {"b", b, 2.426}} {
		if math.Abs(c.got-c.want) > 0.0005+1e-9 {
			t.Errorf("BG/NBD %s = %.4f, published %.3f", c.name, c.got, c.want)
		}
	}
	// Pareto/NBD, FHL 2005: r 0.553, α 10.578, s 0.606, β 11.669 (weeks;
	// β is flat in the likelihood, see transform/clv TestCDNOWParetoNBDMatchesPublished).
	var pr, pa, ps, pb float64
	var model, reason string
	if err := db.QueryRow(`SELECT pnbd_r, pnbd_alpha, pnbd_s, pnbd_beta, model, model_reason FROM clv_params`).Scan(&pr, &pa, &ps, &pb, &model, &reason); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name      string
		got, want float64
	}{{"r", pr, 0.553}, {"alpha per week", pa / 7, 10.578}, {"s", ps, 0.606}, {"beta per week", pb / 7, 11.669}} {
		if math.Abs(c.got-c.want) > 0.002 {
			t.Errorf("Pareto/NBD %s = %.4f, published %.3f", c.name, c.got, c.want)
		}
	}
	t.Logf("model %s: %s", model, reason)
	var rows, chosen int
	if err := db.QueryRow(`SELECT count(*), count(*) FILTER (WHERE chosen AND model = ?) FROM clv_model
		WHERE loglik < 0 AND holdout_loglik < 0 AND NOT at_boundary AND fallback = ''`, model).Scan(&rows, &chosen); err != nil {
		t.Fatal(err)
	}
	if rows != 2 || chosen != 1 || !strings.Contains(reason, "holdout") {
		t.Errorf("clv_model: %d fitted rows, %d chosen (want 2 and 1, chosen by holdout); reason %q", rows, chosen, reason)
	}
}

// The README's example of timezone, shape: events and match_key runs as
// written, on small exports in the shapes it maps.
func TestREADMEEventsExample(t *testing.T) {
	var block *yamlBlock
	for _, b := range readmeBlocks(t) {
		if filepath.Clean(b.file) == filepath.Join("..", "README.md") && strings.Contains(b.text, "shape: events") {
			block = &b
		}
	}
	if block == nil {
		t.Fatal("README.md has no yaml block with shape: events")
	}
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "exports"), 0o700); err != nil {
		t.Fatal(err)
	}
	_, db := runFilesIn(t, dir, block.text, map[string]string{
		"exports/ticket_events_1.csv": "case_id,timestamp,activity,customer,priority,csat\n" +
			"T1,2024-03-01 01:00:00,Open,c1,high,\nT1,2024-03-02 09:00:00,Resolved,,,4\n",
		"exports/customers.csv": "customer_id,customer_unique_id,state\nc1,p1,SP\nc2,p1,SP\n",
	})
	var created, resolved, status string
	if err := db.QueryRow(`SELECT strftime(created_at, '%Y-%m-%d %H:%M'), strftime(resolved_at, '%Y-%m-%d %H:%M'), status
	                       FROM stg_tickets WHERE ticket_id = 'T1'`).Scan(&created, &resolved, &status); err != nil {
		t.Fatal(err)
	}
	if created != "2024-03-01 01:00" || resolved != "2024-03-02 09:00" || status != "resolved" {
		t.Errorf("ticket T1: created %s, resolved %s, status %s", created, resolved, status)
	}
	var keys int
	if err := db.QueryRow(`SELECT count(DISTINCT customer_key) FROM customer_identity WHERE member_kind = 'contact'`).Scan(&keys); err != nil {
		t.Fatal(err)
	}
	if keys != 1 {
		t.Errorf("contacts c1, c2 with one match_key: %d customers, want 1", keys)
	}
}
