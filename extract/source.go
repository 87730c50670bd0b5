// Package extract moves rows from source systems into the raw Parquet layer,
// exactly once. Source kinds live in sub-packages (extract/files,
// extract/postgres, extract/httpapi) and register themselves; this package owns
// the contract they implement, the raw Parquet writer and the cursor state.
package extract

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/cdwhq/cdw/internal/config"
)

// Source is an open connection to one source system.
//
// Lifecycle: Open (from the Kind) → Read per entity, one at a time → Close.
// A Source never writes files or state: it streams rows and tells the runner
// when a cursor is safe to commit; the runner makes rows durable first.
type Source interface {
	// Entities lists the entities this source is configured to provide.
	Entities() []string
	// Read starts streaming the rows of one entity that changed after
	// req.Cursor (all rows when the cursor is nil).
	Read(ctx context.Context, req ReadRequest) (Reader, error)
	// Close releases connections.
	Close() error
}

// Counter is implemented by sources that can say up front how many rows a read
// will return, so the progress line can show an ETA.
type Counter interface {
	Count(ctx context.Context, req ReadRequest) (int64, error)
}

// Snapshotter is implemented by sources for which some entities have no
// cursor, so that every read returns the whole entity. The runner then treats
// each extract of such an entity as a full refresh: the new files replace the
// old ones once complete, instead of piling up copies in raw.
type Snapshotter interface {
	Snapshot(entity string) bool
}

// ChangeDetector is implemented by Snapshotters that can tell, without
// reading the rows, that a snapshot entity has not changed since the read
// that committed cursor. The runner then adds nothing and keeps the files.
// When in doubt it must answer false: a false "unchanged" hides a change.
type ChangeDetector interface {
	Unchanged(ctx context.Context, entity string, cursor json.RawMessage) (bool, error)
}

// ReadRequest asks a source for one entity's rows.
type ReadRequest struct {
	Entity Entity
	// Cursor is the last committed cursor, exactly as the source produced it in
	// a Chunk.Checkpoint; nil on a first run or a full refresh.
	Cursor json.RawMessage
	// BatchRows is a hint for how many rows to put in one Arrow record.
	BatchRows int
}

// Reader streams the rows of one read.
//
// Next returns io.EOF when the read is complete. All records of one read share
// Schema(). Close is always called, also after an error.
type Reader interface {
	Schema() *arrow.Schema
	Next(ctx context.Context) (Chunk, error)
	Close() error
}

// Acknowledger is implemented by Readers that hold something at the source
// until the rows they handed over are durable (a replication slot keeps WAL
// until confirmed): the runner passes each checkpoint once it is committed.
type Acknowledger interface {
	Committed(checkpoint json.RawMessage)
}

// WALReporter is implemented by Readers that read from a replication slot:
// how much WAL the slot held back when the read began, and the configured
// limit above which that is warned about (max_slot_wal).
type WALReporter interface {
	RetainedWAL() (slot string, bytes, limit int64, ok bool)
}

// Chunk is what a Reader hands over at a time.
type Chunk struct {
	// Rows may be nil. The runner releases it after writing.
	Rows arrow.RecordBatch
	// Rejects are source rows that could not be mapped; they go to quarantine.
	Rejects []Reject
	// Checkpoint, when non-nil, is a cursor that may be committed once every row
	// handed over so far is durable. A reader should emit one at least at the
	// end; sources that can resume mid-read (pages, files) emit one per unit.
	Checkpoint json.RawMessage
	// Unit, set on a checkpoint chunk, says that every row and reject handed
	// over since the previous checkpoint is one complete version of a source
	// unit (a file): committing it supersedes the raw and quarantine files of
	// the unit's earlier versions, so a re-exported file replaces its old rows
	// as a whole and rows removed from it disappear.
	Unit string
}

// Reject is one source row that did not make it into raw, and why.
type Reject struct {
	File   string // file, URL or table the row came from
	Line   int64  // line, record or row number within it (1-based); 0: the whole file
	Reason string
	Raw    string // the row as read, truncated to a sane length
}

// ErrSchemaChanged is wrapped by errors that stop an entity because its source
// schema changed in a way that would lose data.
var ErrSchemaChanged = errors.New("source schema changed")

// Kind is a registered source kind.
type Kind struct {
	Name string
	Doc  string
	// Open validates the options and connects. Options holds the source's
	// config minus the generic keys (name, kind); decode it with Decode, which
	// rejects unknown keys.
	Open func(ctx context.Context, cfg SourceConfig) (Source, error)
	// Entities lists, without connecting, the entities a source's options
	// configure and each one's settings (its column or field mapping): the
	// raw layer has a view for each. Required (Register panics without it),
	// so a kind cannot silently get no raw views; EntitiesKey reads the
	// entities: map every kind so far uses.
	Entities func(options config.Node) []EntityConfig
}

// EntityConfig is one entity a source's options configure.
type EntityConfig struct {
	Name    string
	Options config.Node // its settings; a mapping's columns:/fields: among them
}

// EntitiesKey reads the entities: map of a source's options, in file order.
func EntitiesKey(options config.Node) []EntityConfig {
	n := options.Get("entities")
	var out []EntityConfig
	for _, k := range n.Keys() {
		out = append(out, EntityConfig{Name: k, Options: n.Get(k)})
	}
	return out
}

// SourceConfig is what a kind receives to open a source.
type SourceConfig struct {
	Name    string       // the source's name in cdw.yaml
	Options config.Node  // kind-specific settings
	BaseDir string       // directory of the config file: relative paths start here
	Log     *slog.Logger // never nil when opened by the pipeline runner
}

var (
	kindsMu sync.RWMutex
	kinds   = map[string]Kind{}
)

// Register makes a source kind available under k.Name. Kinds call it from init,
// so adding a kind is one new package plus one import line in cmd/cdw.
func Register(k Kind) {
	kindsMu.Lock()
	defer kindsMu.Unlock()
	if _, dup := kinds[k.Name]; dup {
		panic("extract: source kind registered twice: " + k.Name)
	}
	if k.Entities == nil {
		panic("extract: source kind " + k.Name + " declares no Entities (extract.EntitiesKey reads entities:)")
	}
	kinds[k.Name] = k
}

// LookupKind returns a registered kind.
func LookupKind(name string) (Kind, error) {
	kindsMu.RLock()
	defer kindsMu.RUnlock()
	k, ok := kinds[name]
	if !ok {
		return Kind{}, fmt.Errorf("unknown source kind %q (known: %v)", name, KindNames())
	}
	return k, nil
}

// KindNames lists registered kinds.
func KindNames() []string {
	var names []string
	for n := range kinds {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}
