package pipelines

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/cdwhq/cdw/internal/duck"
	"github.com/cdwhq/cdw/internal/durable"
	"github.com/cdwhq/cdw/load"
	"github.com/cdwhq/cdw/transform"
)

// A publish is one version id across every target. The ledger
// (state/publish.json) records a version only when every target has it, so
// the ledger's current version is the one all targets serve; a failure on
// one target puts the others back on it, and when that fails too the next
// publish (the ledger's fingerprint no longer matches) brings every target
// to one new version.

// PublishedVersion is one version every target received.
type PublishedVersion struct {
	ID          string    `json:"id"`
	Fingerprint string    `json:"fingerprint"` // marts' content and the targets' settings
	Marts       []string  `json:"marts"`
	At          time.Time `json:"at"`
}

// PublishLedger is state/publish.json.
type PublishLedger struct {
	Current  *PublishedVersion  `json:"current,omitempty"`
	Versions []PublishedVersion `json:"versions,omitempty"` // complete versions, oldest first, the current included
}

// ledgerKeep bounds the ledger; targets keep fewer versions than this.
const ledgerKeep = 50

func ledgerPath(dir string) string { return filepath.Join(dir, "state", "publish.json") }

// ReadPublishLedger reads the ledger (empty before the first versioned publish).
func ReadPublishLedger(dir string) (*PublishLedger, error) {
	data, err := os.ReadFile(ledgerPath(dir))
	if errors.Is(err, fs.ErrNotExist) {
		return &PublishLedger{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading the publish ledger: %w", err)
	}
	var l PublishLedger
	if err := json.Unmarshal(data, &l); err != nil {
		return nil, fmt.Errorf("reading the publish ledger %s: %w", ledgerPath(dir), err)
	}
	return &l, nil
}

func (l *PublishLedger) write(dir string) error {
	if n := len(l.Versions); n > ledgerKeep {
		l.Versions = l.Versions[n-ledgerKeep:]
	}
	data, err := json.MarshalIndent(l, "", "  ")
	if err != nil {
		return fmt.Errorf("encoding the publish ledger: %w", err)
	}
	if err := durable.WriteFile(ledgerPath(dir), data); err != nil {
		return fmt.Errorf("recording the published version: %w", err)
	}
	return nil
}

var versionSeq = regexp.MustCompile(`^([0-9]{6,})-`)

func seqOf(id string) int {
	m := versionSeq.FindStringSubmatch(id)
	if m == nil {
		return 0
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

// PublishOutcome says what a publish did.
type PublishOutcome struct {
	Version   string // the version every target serves now
	Unchanged bool   // nothing changed since Version: no new version written
}

// publishVersion publishes names to every target as one new version, or
// nothing when the marts and targets are what the current version holds.
func (r *Runner) publishVersion(ctx context.Context, db *sql.DB, names []string, docs map[string]load.MartDoc, log *slog.Logger) (PublishOutcome, error) {
	dir := r.Cfg.Warehouse
	targets, err := r.PublishTargets()
	if err != nil {
		return PublishOutcome{}, err
	}
	start := time.Now()
	fp, err := fingerprint(ctx, db, names, docs, r.Cfg.Publish)
	if err != nil {
		return PublishOutcome{}, err
	}
	log.Debug("fingerprinted the marts", "marts", len(names), "seconds", time.Since(start).Seconds())
	ledger, err := ReadPublishLedger(dir)
	if err != nil {
		return PublishOutcome{}, err
	}
	cur := ledger.Current
	if cur != nil && cur.Fingerprint == fp && allServe(ctx, targets, cur.ID) {
		log.Info("marts unchanged since the current version: nothing published", "version", cur.ID)
		return PublishOutcome{Version: cur.ID, Unchanged: true}, nil
	}
	seq := 0
	for _, v := range ledger.Versions {
		seq = max(seq, seqOf(v.ID))
	}
	for _, t := range targets {
		if v, ok := t.Publisher.(load.Versioned); ok {
			kept, _ := v.KeptVersions(ctx)
			for _, id := range kept {
				seq = max(seq, seqOf(id))
			}
		}
	}
	now := time.Now().UTC()
	id := fmt.Sprintf("%06d-%s", seq+1, now.Format("20060102T150405Z"))
	marts := load.Marts{DB: db, Names: names, Dir: dir, Version: id, Docs: docs}
	for i, t := range targets {
		start := time.Now()
		if err := t.Publisher.Publish(ctx, marts); err != nil {
			err = fmt.Errorf("publishing version %s to %s: %w", id, t.Kind, err)
			return PublishOutcome{}, errors.Join(err, putBack(ctx, targets[:i], cur))
		}
		// Per target, so a profile of the publish needs no timestamp arithmetic.
		log.Debug("published to target", "kind", t.Kind, "version", id, "seconds", time.Since(start).Seconds())
	}
	v := PublishedVersion{ID: id, Fingerprint: fp, Marts: names, At: now}
	ledger.Current = &v
	ledger.Versions = append(ledger.Versions, v)
	if err := ledger.write(dir); err != nil {
		return PublishOutcome{}, err
	}
	return PublishOutcome{Version: id}, nil
}

// putBack returns the targets that already took a failed publish to the
// version before it, so every target serves one version.
func putBack(ctx context.Context, done []PublishTarget, prev *PublishedVersion) error {
	if len(done) == 0 {
		return nil
	}
	if prev == nil {
		// Nothing was published before: the targets that took this first
		// version keep it until the next publish completes one everywhere.
		return fmt.Errorf("%s now serve a first version the other targets lack; the next publish brings every target to one version", kinds(done))
	}
	var errs []error
	for _, t := range done {
		v, ok := t.Publisher.(load.Versioned)
		if !ok {
			errs = append(errs, fmt.Errorf("%s cannot go back to version %s", t.Kind, prev.ID))
			continue
		}
		if err := v.RollbackTo(ctx, prev.ID); err != nil {
			errs = append(errs, fmt.Errorf("putting %s back on version %s: %w", t.Kind, prev.ID, err))
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("%w; the next publish brings every target to one version", errors.Join(errs...))
	}
	return fmt.Errorf("%s put back on version %s: every target serves it", kinds(done), prev.ID)
}

func kinds(ts []PublishTarget) string {
	ks := make([]string, len(ts))
	for i, t := range ts {
		ks[i] = t.Kind
	}
	return strings.Join(ks, ", ")
}

// allServe reports whether every target serves version id. A target that
// cannot say is taken at its word: it has no versions to differ in.
func allServe(ctx context.Context, targets []PublishTarget, id string) bool {
	for _, t := range targets {
		v, ok := t.Publisher.(load.Versioned)
		if !ok {
			continue
		}
		cur, err := v.CurrentVersion(ctx)
		if err != nil || cur != id {
			return false
		}
	}
	return true
}

// fingerprint hashes the published marts' content (columns, types, and an
// order-independent sum of row hashes) with the targets' settings, so an
// unchanged publish is recognised without comparing files.
func fingerprint(ctx context.Context, db *sql.DB, names []string, docs map[string]load.MartDoc, targets []PublishConfig) (string, error) {
	h := sha256.New()
	// Descriptions are published too: a new one is a new version.
	js, err := json.Marshal(docs) // map keys come out sorted
	if err != nil {
		return "", fmt.Errorf("fingerprinting the marts' descriptions: %w", err)
	}
	fmt.Fprintf(h, "docs %s\n", js)
	for _, t := range targets {
		opts, err := yaml.Marshal(t.Options.Y)
		if err != nil {
			return "", fmt.Errorf("fingerprinting publish target %s: %w", t.Kind, err)
		}
		fmt.Fprintf(h, "target %s %s\n", t.Kind, opts)
	}
	for _, n := range names {
		q := fmt.Sprintf(`SELECT (SELECT string_agg(column_name || ' ' || data_type, ', ' ORDER BY ordinal_position)
			FROM information_schema.columns WHERE table_schema = 'main' AND table_name = %s),
			count(*), coalesce(sum(hash(t)::HUGEINT), 0)::VARCHAR FROM main.%s t`, duck.Literal(n), duck.Ident(n))
		var cols, sum string
		var rows int64
		if err := db.QueryRowContext(ctx, q).Scan(&cols, &rows, &sum); err != nil {
			return "", fmt.Errorf("fingerprinting mart %s: %w", n, err)
		}
		fmt.Fprintf(h, "mart %s (%s) %d %s\n", n, cols, rows, sum)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// VersionStatus is one target's view for `cdw publish --status`.
type VersionStatus struct {
	Kind    string
	Current string   // "" when the target has no versions or cannot say
	Kept    []string // oldest first
	Err     error
}

// PublishStatus reports each target's current and kept versions.
func (r *Runner) PublishStatus(ctx context.Context) (*PublishLedger, []VersionStatus, error) {
	ledger, err := ReadPublishLedger(r.Cfg.Warehouse)
	if err != nil {
		return nil, nil, err
	}
	targets, err := r.PublishTargets()
	if err != nil {
		return nil, nil, err
	}
	var out []VersionStatus
	for _, t := range targets {
		st := VersionStatus{Kind: t.Kind}
		if v, ok := t.Publisher.(load.Versioned); ok {
			st.Current, st.Err = v.CurrentVersion(ctx)
			if st.Err == nil {
				st.Kept, st.Err = v.KeptVersions(ctx)
			}
		}
		out = append(out, st)
	}
	return ledger, out, nil
}

// Rollback puts every target back on the newest earlier version that all of
// them still keep, and records it as current. A target that fails is
// reported; a second rollback again picks the newest version all keep.
func (r *Runner) Rollback(ctx context.Context) (string, error) {
	lock, err := WaitLock(ctx, r.Cfg.Warehouse, r.Cfg.LockTimeout)
	if err != nil {
		return "", err
	}
	defer lock.Release()
	ledger, err := ReadPublishLedger(r.Cfg.Warehouse)
	if err != nil {
		return "", err
	}
	targets, err := r.PublishTargets()
	if err != nil {
		return "", err
	}
	common := map[string]int{}
	var vs []load.Versioned
	for _, t := range targets {
		v, ok := t.Publisher.(load.Versioned)
		if !ok {
			return "", fmt.Errorf("%s: cannot roll back (keeps no versions)", t.Kind)
		}
		kept, err := v.KeptVersions(ctx)
		if err != nil {
			return "", fmt.Errorf("listing the versions of %s: %w", t.Kind, err)
		}
		for _, id := range kept {
			common[id]++
		}
		vs = append(vs, v)
	}
	curSeq := int(^uint(0) >> 1)
	if ledger.Current != nil {
		curSeq = seqOf(ledger.Current.ID)
	}
	target := ""
	for _, id := range slices.Sorted(maps.Keys(common)) {
		if common[id] == len(targets) && seqOf(id) < curSeq && seqOf(id) > seqOf(target) {
			target = id
		}
	}
	if target == "" {
		return "", fmt.Errorf("%w: no earlier version is kept by every target (%s)", load.ErrNoPreviousVersion, kinds(targets))
	}
	var errs []error
	for i, v := range vs {
		if err := v.RollbackTo(ctx, target); err != nil {
			errs = append(errs, fmt.Errorf("rolling %s back to version %s: %w", targets[i].Kind, target, err))
		}
	}
	if len(errs) > 0 {
		return target, errors.Join(errs...)
	}
	for i, v := range ledger.Versions {
		if v.ID == target {
			ledger.Current = &ledger.Versions[i]
			ledger.Versions = ledger.Versions[:i+1]
			break
		}
	}
	if ledger.Current == nil || ledger.Current.ID != target {
		// Published before the ledger existed: record it now.
		ledger.Current = &PublishedVersion{ID: target, At: time.Now().UTC()}
		ledger.Versions = append(ledger.Versions, *ledger.Current)
	}
	return target, ledger.write(r.Cfg.Warehouse)
}

// martDocs collects the descriptions of the marts to publish: each model's
// and its columns' (header comments, properties files).
func martDocs(p *transform.Project, names []string) map[string]load.MartDoc {
	out := map[string]load.MartDoc{}
	for _, n := range names {
		m, ok := p.Model(n)
		if !ok || m.Header.Description == "" && len(m.Header.Columns) == 0 {
			continue
		}
		d := load.MartDoc{Description: m.Header.Description}
		for _, c := range m.Header.Columns {
			if c.Description != "" {
				if d.Columns == nil {
					d.Columns = map[string]string{}
				}
				d.Columns[c.Name] = c.Description
			}
		}
		out[n] = d
	}
	return out
}
