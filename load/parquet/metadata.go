package parquet

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/base64"
	"fmt"
	"os"
	"sort"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"

	"github.com/cdwhq/cdw/internal/duck"
	"github.com/cdwhq/cdw/load"
)

// Descriptions travel in the file's key-value metadata: the mart's as
// "description" (what pyarrow shows as schema.metadata, DuckDB as
// parquet_kv_metadata), its columns' as Arrow field metadata
// ("description" on each field), which lives in the ARROW:schema entry
// Arrow readers (pyarrow, pandas, Polars, arrow-go, Spark) decode. DuckDB
// writes the Parquet file; the ARROW:schema is the very schema a reader
// infers from that file (read back from an empty copy of the mart), with
// the descriptions added, so no reader sees other types than before.

// kvMetadata returns the KV_METADATA option of a mart's COPY, or "" when
// the mart has no descriptions.
func kvMetadata(ctx context.Context, db *sql.DB, mart string, doc load.MartDoc, scratch string) (string, error) {
	if doc.Description == "" && len(doc.Columns) == 0 {
		return "", nil
	}
	kv := map[string]string{}
	if doc.Description != "" {
		kv["description"] = doc.Description
	}
	if len(doc.Columns) > 0 {
		s, err := describedSchema(ctx, db, mart, doc, scratch)
		if err != nil {
			return "", fmt.Errorf("describing the columns of mart %s: %w", mart, err)
		}
		kv["ARROW:schema"] = s
	}
	keys := make([]string, 0, len(kv))
	for k := range kv {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = duck.Ident(k) + ": " + duck.Literal(kv[k])
	}
	return ", KV_METADATA {" + strings.Join(parts, ", ") + "}", nil
}

// describedSchema is the base64 IPC schema of the mart as written to
// Parquet, with each documented column's description as field metadata.
func describedSchema(ctx context.Context, db *sql.DB, mart string, doc load.MartDoc, scratch string) (string, error) {
	defer os.Remove(scratch)
	q := fmt.Sprintf("COPY (SELECT * FROM %s LIMIT 0) TO %s (FORMAT parquet)", duck.Ident(mart), duck.Literal(scratch))
	if _, err := db.ExecContext(ctx, q); err != nil {
		return "", err
	}
	r, err := file.OpenParquetFile(scratch, false)
	if err != nil {
		return "", err
	}
	defer r.Close()
	inferred, err := pqarrow.FromParquet(r.MetaData().Schema, &pqarrow.ArrowReadProperties{}, r.MetaData().KeyValueMetadata())
	if err != nil {
		return "", err
	}
	fields := inferred.Fields()
	for i, f := range fields {
		d := doc.Column(f.Name)
		if d == "" {
			continue
		}
		keys, vals := append([]string{}, f.Metadata.Keys()...), append([]string{}, f.Metadata.Values()...)
		fields[i].Metadata = arrow.NewMetadata(append(keys, "description"), append(vals, d))
	}
	var buf bytes.Buffer
	w := ipc.NewWriter(&buf, ipc.WithSchema(arrow.NewSchema(fields, nil)))
	if err := w.Close(); err != nil {
		return "", err
	}
	return base64.StdEncoding.EncodeToString(buf.Bytes()), nil
}
