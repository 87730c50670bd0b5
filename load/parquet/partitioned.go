package parquet

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/cdwhq/cdw/internal/duck"
	"github.com/cdwhq/cdw/internal/durable"
)

// With layout: partitioned, a mart that has both partitionUnit and
// partitionKey columns is written as a hive-partitioned dataset
//
//	<version>/<mart>/business_unit=<unit>/bucket=<n>/part.parquet
//
// where n = hash(customer_key) % buckets. Each partition's content is
// fingerprinted (row count and the sum of its rows' hashes, as the publish
// fingerprint does for whole marts) into <version>/<mart>/_partitions.json;
// a partition whose fingerprint equals the previous version's is hard-linked
// from it instead of rewritten. Versions stay complete directories, so the
// switch (marts/current), rollback and pruning are unchanged.
const (
	layoutFiles       = "files"
	layoutPartitioned = "partitioned"
	partitionUnit     = "business_unit"
	partitionKey      = "customer_key"
	bucketColumn      = "bucket"
	defaultBuckets    = 16
	manifestFile      = "_partitions.json"
	hiveNull          = "__HIVE_DEFAULT_PARTITION__"
)

// partition is one business unit × bucket of a partitioned mart.
type partition struct {
	Unit        *string  `json:"unit"` // nil: NULL business_unit
	Bucket      int64    `json:"bucket"`
	Rows        int64    `json:"rows"`
	Fingerprint string   `json:"fingerprint"`
	Files       []string `json:"files"` // relative to the mart's directory
}

func (p partition) key() string {
	if p.Unit == nil {
		return strconv.FormatInt(p.Bucket, 10) + "|null"
	}
	return strconv.FormatInt(p.Bucket, 10) + "|=" + *p.Unit
}

// partitionStats counts what a partitioned publish wrote and linked.
type partitionStats struct {
	Written, Linked int
}

// partitioned reports whether mart is written as a partitioned dataset.
func (p *Publisher) partitioned(ctx context.Context, db *sql.DB, mart string) (bool, error) {
	if p.layout != layoutPartitioned {
		return false, nil
	}
	var n int
	err := db.QueryRowContext(ctx, `SELECT count(*) FROM information_schema.columns
		WHERE table_schema = 'main' AND table_name = ? AND lower(column_name) IN (?, ?)`,
		mart, partitionUnit, partitionKey).Scan(&n)
	if err != nil {
		return false, fmt.Errorf("describing the columns of mart %s: %w", mart, err)
	}
	return n == 2, nil
}

func (p *Publisher) bucketExpr() string {
	return fmt.Sprintf("(hash(%s) %% %d)::BIGINT", duck.Ident(partitionKey), p.buckets)
}

// partitionKeyExpr is partition.key() in SQL.
func (p *Publisher) partitionKeyExpr() string {
	u := duck.Ident(partitionUnit)
	return fmt.Sprintf("%s::VARCHAR || CASE WHEN %s IS NULL THEN '|null' ELSE '|=' || %s::VARCHAR END", p.bucketExpr(), u, u)
}

// fingerprints returns the mart's partitions with their content fingerprints.
func (p *Publisher) fingerprints(ctx context.Context, db *sql.DB, mart string) ([]partition, error) {
	q := fmt.Sprintf(`SELECT %s::VARCHAR, %s, count(*), coalesce(sum(hash(t)::HUGEINT), 0)::VARCHAR
		FROM main.%s t GROUP BY ALL`, duck.Ident(partitionUnit), p.bucketExpr(), duck.Ident(mart))
	rows, err := db.QueryContext(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("fingerprinting the partitions of mart %s: %w", mart, err)
	}
	defer rows.Close()
	var out []partition
	for rows.Next() {
		var pt partition
		var unit sql.NullString
		if err := rows.Scan(&unit, &pt.Bucket, &pt.Rows, &pt.Fingerprint); err != nil {
			return nil, fmt.Errorf("fingerprinting the partitions of mart %s: %w", mart, err)
		}
		if unit.Valid {
			pt.Unit = &unit.String
		}
		out = append(out, pt)
	}
	return out, rows.Err()
}

// readManifest returns the partitions of a mart in a published version by
// key, or nil when that version did not partition it.
func readManifest(martDir string) map[string]partition {
	b, err := os.ReadFile(filepath.Join(martDir, manifestFile))
	if err != nil {
		return nil
	}
	var ps []partition
	if json.Unmarshal(b, &ps) != nil {
		return nil
	}
	out := make(map[string]partition, len(ps))
	for _, pt := range ps {
		out[pt.key()] = pt
	}
	return out
}

// writePartitioned writes mart into staging/<mart>/, linking each partition
// unchanged since the version in prevDir ("" for none) and writing the rest
// in one COPY.
func (p *Publisher) writePartitioned(ctx context.Context, db *sql.DB, mart, staging, prevDir, meta string) (partitionStats, error) {
	var st partitionStats
	parts, err := p.fingerprints(ctx, db, mart)
	if err != nil {
		return st, err
	}
	dir := filepath.Join(staging, mart)
	if err := os.Mkdir(dir, durable.DirPerm); err != nil {
		return st, fmt.Errorf("creating %s: %w", dir, err)
	}
	var prev map[string]partition
	if prevDir != "" {
		prev = readManifest(filepath.Join(prevDir, mart))
	}
	var changed []string
	for i, pt := range parts {
		old, ok := prev[pt.key()]
		if ok && old.Fingerprint == pt.Fingerprint && old.Rows == pt.Rows && linkPartition(filepath.Join(prevDir, mart), dir, old.Files) == nil {
			parts[i].Files = old.Files
			st.Linked++
			continue
		}
		changed = append(changed, duck.Literal(pt.key()))
	}
	if len(changed) > 0 {
		st.Written = len(changed)
		if err := p.copyPartitions(ctx, db, mart, dir, changed, meta); err != nil {
			return st, err
		}
		if err := p.collectWritten(dir, parts); err != nil {
			return st, fmt.Errorf("mart %s: %w", mart, err)
		}
	}
	b, err := json.MarshalIndent(parts, "", "  ")
	if err != nil {
		return st, err
	}
	if err := durable.WriteFile(filepath.Join(dir, manifestFile), b); err != nil {
		return st, err
	}
	return st, nil
}

func (p *Publisher) copyPartitions(ctx context.Context, db *sql.DB, mart, dir string, keys []string, meta string) error {
	// Rows of a partition sort by key, so that a reader filtering on it
	// reads few row groups.
	q := fmt.Sprintf(`COPY (SELECT *, %s AS %s FROM main.%s WHERE %s IN (%s) ORDER BY %s)
		TO %s (FORMAT parquet, COMPRESSION %s, PARTITION_BY (%s, %s), WRITE_PARTITION_COLUMNS true,
		FILENAME_PATTERN 'part{i}', OVERWRITE_OR_IGNORE%s)`,
		p.bucketExpr(), bucketColumn, duck.Ident(mart), p.partitionKeyExpr(), strings.Join(keys, ", "), duck.Ident(partitionKey),
		duck.Literal(dir), p.codec, duck.Ident(partitionUnit), bucketColumn, meta)
	if _, err := db.ExecContext(ctx, q); err != nil {
		return fmt.Errorf("writing mart %s to partitioned Parquet: %w", mart, err)
	}
	return nil
}

// linkPartition hard-links a partition's files from the previous version.
func linkPartition(from, to string, files []string) error {
	if len(files) == 0 {
		return errors.New("no files")
	}
	for _, f := range files {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(to, f)), durable.DirPerm); err != nil {
			return err
		}
		if err := os.Link(filepath.Join(from, f), filepath.Join(to, f)); err != nil {
			return err
		}
	}
	return nil
}

// collectWritten finds the files the COPY wrote, names a partition's only
// file part.parquet, syncs them, and records them in parts.
func (p *Publisher) collectWritten(dir string, parts []partition) error {
	byKey := map[string]int{}
	for i, pt := range parts {
		byKey[pt.key()] = i
	}
	linked := map[string]bool{}
	for _, pt := range parts {
		for _, f := range pt.Files {
			linked[f] = true
		}
	}
	written := map[string][]string{}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".parquet") {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		pdir := filepath.Dir(rel)
		if !linked[rel] {
			written[pdir] = append(written[pdir], rel)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("listing written partitions: %w", err)
	}
	for pdir, files := range written {
		pt, err := parsePartitionDir(pdir)
		if err != nil {
			return err
		}
		i, ok := byKey[pt.key()]
		if !ok {
			return fmt.Errorf("partition %s written but not fingerprinted", pdir)
		}
		if len(files) == 1 {
			name := filepath.Join(pdir, "part.parquet")
			if err := os.Rename(filepath.Join(dir, files[0]), filepath.Join(dir, name)); err != nil {
				return err
			}
			files = []string{name}
		}
		for _, f := range files {
			if err := os.Chmod(filepath.Join(dir, f), durable.FilePerm); err != nil {
				return err
			}
			if err := durable.SyncFile(filepath.Join(dir, f)); err != nil {
				return err
			}
		}
		parts[i].Files = files
	}
	for _, pt := range parts {
		if len(pt.Files) == 0 {
			return fmt.Errorf("partition %s has no file", pt.key())
		}
	}
	return nil
}

// parsePartitionDir reads "business_unit=<u>/bucket=<n>" as DuckDB writes it
// (values URL-escaped, NULL as __HIVE_DEFAULT_PARTITION__).
func parsePartitionDir(rel string) (partition, error) {
	var pt partition
	segs := strings.Split(filepath.ToSlash(rel), "/")
	if len(segs) != 2 || !strings.HasPrefix(segs[0], partitionUnit+"=") || !strings.HasPrefix(segs[1], bucketColumn+"=") {
		return pt, fmt.Errorf("unexpected partition directory %q", rel)
	}
	u := strings.TrimPrefix(segs[0], partitionUnit+"=")
	if u != hiveNull {
		s, err := url.PathUnescape(u)
		if err != nil {
			return pt, fmt.Errorf("partition directory %q: %w", rel, err)
		}
		pt.Unit = &s
	}
	b, err := strconv.ParseInt(strings.TrimPrefix(segs[1], bucketColumn+"="), 10, 64)
	if err != nil {
		return pt, fmt.Errorf("partition directory %q: %w", rel, err)
	}
	pt.Bucket = b
	return pt, nil
}
