package pipelines

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/cdwhq/cdw/extract"
	"github.com/cdwhq/cdw/internal/failpoint"
	"github.com/cdwhq/cdw/load"
	models "github.com/cdwhq/cdw/sql"
	"github.com/cdwhq/cdw/transform"
)

// Steps selects what a run does.
type Steps struct {
	Extract, Transform, Publish bool
	// Compact merges small raw files after the extract (cdw compact, the
	// compact step of a serve pipeline).
	Compact bool
	// Test runs the data tests and freshness checks without building; a
	// Transform step always runs them after the models.
	Test bool
}

// AllSteps is a full pipeline run.
var AllSteps = Steps{Extract: true, Transform: true, Publish: true}

// Options shape one run.
type Options struct {
	Steps    Steps
	Sources  []string // limit extract to these sources (empty: all)
	Entities []string // limit extract to these entities (empty: all)
	// CompactTarget is the size compaction merges small files up to (0:
	// extract.DefaultCompactTarget).
	CompactTarget int64
	// FullRefresh re-extracts every entity and rebuilds every model
	// (incremental ones from scratch).
	FullRefresh bool
	Select      string // model selection for transform and tests, e.g. "customers+ tag:daily"; empty: all
	Pipeline    string // name recorded in history; default "run"
	Attempt     int    // attempt number recorded in history (cdw serve retries); 0: not retried
	Log         *slog.Logger
	Progress    *extract.Progress
}

// Report is what a run did.
type Report struct {
	RunID     string
	Extract   []extract.Result
	Compact   []extract.CompactResult
	Transform transform.RunResult
	Tests     []transform.TestResult // freshness checks, then data tests
	Published []string
	// Version is the publish version every target serves after the run;
	// Unchanged says the marts were as in that version, so none was written.
	Version   string
	Unchanged bool
	Duration  time.Duration
	// Notices say what the marts left out: the as_of and rows after it,
	// identity values not used (see dataNotices).
	Notices []Notice
	// SourceErrors are the sources that failed in a run that went on
	// without them (on_source_error: continue).
	SourceErrors SourceErrors
}

// Runner executes pipelines against one configured warehouse.
type Runner struct {
	Cfg *Config
	// EventDays writes raw files one event day each even without Iceberg
	// (with Iceberg they always are). BenchmarkExtractIceberg uses it to
	// tell the cost of the split from the cost of the commits.
	EventDays bool
}

// Run executes a pipeline: extract every configured source entity, rebuild
// the raw views, run the models, and publish the marts if every model
// succeeded. It holds the warehouse lock for the whole run.
func (r *Runner) Run(ctx context.Context, opts Options) (*Report, error) {
	log := opts.Log
	if log == nil {
		log = slog.Default()
	}
	cfg := r.Cfg
	start := time.Now()
	rep := &Report{RunID: start.UTC().Format("20060102T150405.000Z")}
	if opts.Steps.Publish {
		// A mistake in a target fails now, not after the extract and transform.
		if _, err := r.PublishTargets(); err != nil {
			return rep, err
		}
	}
	if err := os.MkdirAll(cfg.Warehouse, 0o700); err != nil {
		return rep, fmt.Errorf("creating warehouse directory: %w", err)
	}
	lock, err := WaitLock(ctx, cfg.Warehouse, cfg.LockTimeout)
	if err != nil {
		return rep, err
	}
	defer lock.Release()

	rec := RunRecord{ID: rep.RunID, Pipeline: opts.Pipeline, StartedAt: start.UTC(), Attempt: opts.Attempt}
	if rec.Pipeline == "" {
		rec.Pipeline = "run"
	}
	if err := markRunning(cfg.Warehouse, rec); err != nil {
		return rep, err
	}
	runErr := r.run(ctx, opts, log, rep)
	if err := refreshSnapshot(cfg.Warehouse); err != nil {
		log.Warn("refreshing the readers' copy of the warehouse", "err", err)
	}
	rep.Duration = time.Since(start)
	rec.Duration = rep.Duration
	for _, e := range rep.Extract {
		rec.Rows += e.Rows
		rec.Rejected += e.Rejected
	}
	rec.Models = len(rep.Transform.Models)
	rec.Published = rep.Published
	rec.Version = rep.Version
	rec.Status = "success"
	switch {
	case runErr != nil && ctx.Err() != nil:
		// Stopped from outside (SIGTERM, shutdown grace exceeded): say so,
		// rather than leaving "context canceled" as the only clue.
		rec.Status, rec.Error = "cancelled", fmt.Sprintf("interrupted (%v) during: %v", context.Cause(ctx), runErr)
	case runErr != nil:
		rec.Status, rec.Error = "error", runErr.Error()
	case len(rep.SourceErrors) > 0:
		rec.Status, rec.Error = "partial", rep.SourceErrors.Error()
	}
	failpoint.Hit("pipeline.before-history") // work done, history not yet written
	if err := AppendHistory(cfg.Warehouse, rec); err != nil {
		return rep, errors.Join(runErr, err)
	}
	return rep, errors.Join(runErr, finishRunning(cfg.Warehouse))
}

func (r *Runner) run(ctx context.Context, opts Options, log *slog.Logger, rep *Report) error {
	cfg := r.Cfg
	if opts.Steps.Extract {
		res, err := r.Extract(ctx, opts, log)
		rep.Extract = res
		if line := QuarantineSummary(res); line != "" {
			log.Warn(line)
		}
		var failed SourceErrors
		switch {
		case err == nil:
		case !errors.As(err, &failed) || ctx.Err() != nil:
			return err
		case !opts.Steps.Transform && !opts.Steps.Publish && !opts.Steps.Test:
			return err
		case cfg.OnSourceError == OnSourceErrorContinue:
			rep.SourceErrors = failed
			log.Warn(fmt.Sprintf("%d source(s) failed: %s; building and publishing without their new rows (on_source_error: continue)",
				len(failed), strings.Join(failed.Names(), ", ")), "err", err)
		default:
			return fmt.Errorf("%w; the other sources were extracted, but nothing is transformed or published until every source succeeds (on_source_error: continue publishes without it)", err)
		}
		failpoint.Hit("pipeline.after-extract")
	}
	if opts.Steps.Compact {
		res, err := r.Compact(ctx, opts, log)
		rep.Compact = res
		if err != nil {
			return err
		}
	}
	if !opts.Steps.Transform && !opts.Steps.Publish && !opts.Steps.Test {
		return nil
	}
	db, err := transform.Open(filepath.Join(cfg.Warehouse, "warehouse.duckdb"), cfg.Settings())
	if err != nil {
		return err
	}
	defer db.Close()
	project, err := r.Project(ctx)
	if err != nil {
		return err
	}
	var built map[string]bool // the warehouse's relations, listed once a run
	if opts.Steps.Transform || opts.Steps.Test {
		raw, err := createRawViews(ctx, db, cfg)
		if err != nil {
			return err
		}
		selected, err := project.Select(opts.Select)
		if err != nil {
			return err
		}
		var versions transform.TestVersions
		if opts.Steps.Transform {
			tr := &transform.Runner{DB: db, Vars: project.Vars, Log: log, Selection: opts.Select, MemoryLimit: cfg.DuckDB.MemoryLimit,
				Raw: raw, FullRefresh: opts.FullRefresh}
			res, err := tr.Run(ctx, rep.RunID, selected)
			rep.Transform = res
			if err != nil {
				return err
			}
			built = res.Relations
			if rep.Notices, err = dataNotices(ctx, db, built, cfg.Timezone, log); err != nil {
				return err
			}
			if err := res.Err(); err != nil {
				return fmt.Errorf("transform failed, nothing published: %w", err)
			}
			// Tests whose inputs are as they were when the test last
			// passed need not run again; --full-refresh runs them all.
			if !opts.FullRefresh {
				versions = res.Versions
			}
		}
		fresh, err := transform.CheckFreshness(ctx, db, cfg.Freshness, time.Now())
		if err != nil {
			return err
		}
		fresh = append(fresh, transform.CheckSourceFreshness(ctx, db, project.Sources, time.Now())...)
		if built == nil {
			if built, err = transform.Relations(ctx, db); err != nil {
				return err
			}
		}
		runnable := testsWithBuiltInputs(built, project.TestsFor(selected), log)
		tests, err := (&transform.TestRunner{DB: db, Log: log, Versions: versions}).Run(ctx, rep.RunID, runnable)
		rep.Tests = append(fresh, tests...)
		if err != nil {
			return err
		}
		if err := transform.TestsErr(rep.Tests); err != nil {
			return fmt.Errorf("data tests failed, nothing published: %w", err)
		}
	}
	if opts.Steps.Publish {
		failpoint.Hit("pipeline.before-publish") // marts built, not published
		if built == nil {
			if built, err = transform.Relations(ctx, db); err != nil {
				return err
			}
		}
		names := publishable(built, project)
		out, err := r.publishVersion(ctx, db, names, martDocs(project, names), log)
		if err != nil {
			return err
		}
		rep.Version, rep.Unchanged = out.Version, out.Unchanged
		if !out.Unchanged {
			rep.Published = names
			log.Info("published", "marts", len(names), "version", out.Version)
		}
	}
	return nil
}

// SourceError is one source entity (or a whole source, when Entity is
// empty) that could not be extracted.
type SourceError struct {
	Source, Entity string
	Err            error
}

// SourceErrors lists the sources that failed in a run whose other sources
// were extracted and committed.
type SourceErrors []SourceError

func (e SourceErrors) Error() string {
	parts := make([]string, len(e))
	for i, s := range e {
		parts[i] = s.Err.Error()
	}
	return strings.Join(parts, "; ")
}

func (e SourceErrors) Unwrap() []error {
	out := make([]error, len(e))
	for i, s := range e {
		out[i] = s.Err
	}
	return out
}

// Names lists the failed source entities as source.entity (or source).
func (e SourceErrors) Names() []string {
	out := make([]string, len(e))
	for i, s := range e {
		out[i] = s.Source
		if s.Entity != "" {
			out[i] += "." + s.Entity
		}
	}
	return out
}

// QuarantineSummary is one line saying what a run's extract quarantined, or
// "" when nothing was: rejects used to be a count in an INFO line per entity.
func QuarantineSummary(res []extract.Result) string {
	var total int64
	var parts []string
	for _, r := range res {
		if r.Rejected > 0 {
			total += r.Rejected
			parts = append(parts, fmt.Sprintf("%s.%s %d of %d", r.Source, r.Entity, r.Rejected, r.Rows+r.Rejected))
		}
	}
	if total == 0 {
		return ""
	}
	return fmt.Sprintf("quarantined %d row(s): %s — see cdw quarantine", total, strings.Join(parts, ", "))
}

// Extract runs the extract step alone. A source entity that fails does not
// stop the others: each is extracted and committed on its own, and the
// failures come back together as SourceErrors (a truncated .gz in one
// source used to stop every source after it).
func (r *Runner) Extract(ctx context.Context, opts Options, log *slog.Logger) ([]extract.Result, error) {
	cfg := r.Cfg
	x := &extract.Extractor{Dir: cfg.Warehouse, Log: log, Progress: opts.Progress, EventDays: r.EventDays}
	closeIceberg, err := r.followInIceberg(ctx, x)
	if err != nil {
		return nil, err
	}
	defer closeIceberg()
	var results []extract.Result
	var failed SourceErrors
	for _, sc := range cfg.Sources {
		if len(opts.Sources) > 0 && !slices.Contains(opts.Sources, sc.Name) {
			continue
		}
		kind, err := extract.LookupKind(sc.Kind)
		if err != nil {
			return results, sc.Options.Errorf("source %s: %v", sc.Name, err)
		}
		src, err := kind.Open(ctx, extract.SourceConfig{Name: sc.Name, Options: sc.Options, BaseDir: cfg.BaseDir, Log: log.With("source", sc.Name)})
		if err != nil {
			if ctx.Err() != nil {
				return results, fmt.Errorf("opening source %s: %w", sc.Name, err)
			}
			log.Error("source failed", "source", sc.Name, "err", err)
			failed = append(failed, SourceError{Source: sc.Name, Err: fmt.Errorf("opening source %s: %w", sc.Name, err)})
			continue
		}
		for _, ent := range src.Entities() {
			if len(opts.Entities) > 0 && !slices.Contains(opts.Entities, ent) {
				continue
			}
			res, err := x.Extract(ctx, sc.Name, src, ent, opts.FullRefresh)
			results = append(results, res)
			if err != nil {
				if ctx.Err() != nil {
					src.Close()
					return results, err
				}
				log.Error("source failed", "source", sc.Name, "entity", ent, "err", err)
				failed = append(failed, SourceError{Source: sc.Name, Entity: ent, Err: err})
			}
		}
		if err := src.Close(); err != nil {
			log.Warn("closing source", "source", sc.Name, "err", err)
		}
	}
	if len(failed) > 0 {
		return results, failed
	}
	return results, nil
}

// Project loads the built-in models and the user's model directories.
func (r *Runner) Project(ctx context.Context) (*transform.Project, error) {
	var roots []transform.Root
	if !r.Cfg.NoBuiltins {
		roots = append(roots, transform.Root{Name: "sql", FS: models.FS})
	}
	for _, d := range r.Cfg.Models {
		if _, err := os.Stat(d); err != nil {
			return nil, fmt.Errorf("%s: models directory %s: %w", r.Cfg.File, d, err)
		}
		roots = append(roots, transform.Root{Name: d, FS: os.DirFS(d), Dir: d})
	}
	// dbt projects bring their folders and vars; cdw.yaml's vars win.
	vars := transform.Vars{}
	for _, d := range r.Cfg.DBTProjects {
		p, err := transform.LoadDBTProject(d)
		if err != nil {
			return nil, fmt.Errorf("%s: dbt_project %s: %w", r.Cfg.File, d, err)
		}
		roots = append(roots, p.Roots()...)
		maps.Copy(vars, p.Vars)
	}
	maps.Copy(vars, r.Cfg.Vars)
	raw, err := rawRelations(r.Cfg)
	if err != nil {
		return nil, err
	}
	return transform.Load(ctx, roots, transform.LoadOptions{Vars: vars, Raw: raw,
		NoBuiltins: r.Cfg.NoBuiltins})
}

// ModelStatuses predicts, without building or writing anything, which of
// the selected models the next run would rebuild and why, from the
// warehouse's model state and the committed raw files.
func (r *Runner) ModelStatuses(ctx context.Context, selection string) ([]transform.ModelStatus, error) {
	project, err := r.Project(ctx)
	if err != nil {
		return nil, err
	}
	selected, err := project.Select(selection)
	if err != nil {
		return nil, err
	}
	raw, err := rawInputs(r.Cfg)
	if err != nil {
		return nil, err
	}
	// A copy, not the warehouse itself: reading it would block a run.
	snap, err := WarehouseSnapshot(r.Cfg.Warehouse)
	if errors.Is(err, os.ErrNotExist) {
		out := make([]transform.ModelStatus, len(selected))
		for i, m := range selected {
			out[i] = transform.ModelStatus{Model: m.Name, Why: "no earlier build on record"}
		}
		return out, nil
	}
	if err != nil {
		return nil, err
	}
	if snap.Stale {
		slog.Warn("a run is writing the warehouse: statuses are as of the copy before it", "holder", snap.Holder, "as_of", snap.AsOf.UTC().Format(time.RFC3339))
	}
	db, err := transform.Open(snap.Path, transform.Settings{ReadOnly: true})
	if err != nil {
		return nil, err
	}
	defer db.Close()
	return transform.Statuses(ctx, db, selected, project.Vars, raw)
}

// publishable lists the published models the warehouse has built.
func publishable(built map[string]bool, p *transform.Project) []string {
	var names []string
	for _, m := range p.Models {
		if !m.Published() {
			continue
		}
		// A run with --select on a new warehouse may not have built every
		// mart yet: publish what exists rather than fail on what does not.
		if !built[m.Name] {
			slog.Warn("mart not built yet, not published", "mart", m.Name, "file", m.File)
			continue
		}
		names = append(names, m.Name)
	}
	return names
}

// testsWithBuiltInputs drops tests that read a model that has never been
// built (a partial --select on a new warehouse), saying so, instead of
// failing them for a reason that has nothing to do with the data.
func testsWithBuiltInputs(built map[string]bool, tests []*transform.DataTest, log *slog.Logger) []*transform.DataTest {
	var out []*transform.DataTest
	for _, t := range tests {
		missing := ""
		for _, d := range append([]string{t.Model}, t.Deps...) {
			if d != "" && !strings.HasPrefix(d, "raw.") && !built[d] {
				missing = d
				break
			}
		}
		if missing != "" {
			log.Warn("test not run: a model it reads is not built yet", "test", t.Name, "model", missing)
			continue
		}
		out = append(out, t)
	}
	return out
}

// PublishTarget is one configured publish target, opened.
type PublishTarget struct {
	Kind      string
	Publisher load.Publisher
}

// PublishTargets opens every configured publish target (Parquet and a DuckDB
// file when none is configured), checking all their settings before any
// target is touched.
func (r *Runner) PublishTargets() ([]PublishTarget, error) {
	targets := r.Cfg.Publish
	if len(targets) == 0 {
		targets = []PublishConfig{{Kind: "parquet"}, {Kind: "duckdb"}}
	}
	var out []PublishTarget
	for _, t := range targets {
		kind, err := load.LookupKind(t.Kind)
		if err != nil {
			return nil, t.Options.Errorf("%v", err)
		}
		pub, err := kind.Open(load.TargetConfig{Options: t.Options, Dir: r.Cfg.Warehouse, BaseDir: r.Cfg.BaseDir, Iceberg: r.Cfg.Iceberg})
		if err != nil {
			return nil, err
		}
		out = append(out, PublishTarget{Kind: t.Kind, Publisher: pub})
	}
	return out, nil
}
