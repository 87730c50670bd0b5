// Package identity computes the connected components behind customer
// identity resolution: contacts linked by a shared e-mail, phone or customer
// id, transitively. SQL can express this only as a recursive CTE, which at
// ten million contacts ran out of memory in DuckDB (the recursion keeps
// every round's state in memory); union-find in Go needs 4 bytes per node
// and one pass over the edges.
//
// The Go model identity_components sits between two SQL models:
// identity_nodes (every node with a dense integer id) and identity_links
// (contact → attribute edges), and customer_identity reads its labels.
package identity

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
	"runtime/debug"

	"github.com/duckdb/duckdb-go/v2"

	"github.com/cdwhq/cdw/transform"
)

// Model is the name of the Go model and of the table it writes.
const Model = "identity_components"

func init() {
	transform.RegisterGoModel(transform.GoModel{
		Name: Model,
		Deps: []string{"identity_nodes", "identity_links"},
		Description: "Connected components of the identity graph (identity_nodes linked by identity_links), " +
			"by union-find. One row per node that is not its component's representative: label is the smallest " +
			"node id in its component. A node without a row is its own label (singletons and representatives), " +
			"so read it as coalesce(label, id).",
		Columns: []transform.ColumnDoc{
			{Name: "id", Description: "identity_nodes.id of the node"},
			{Name: "label", Description: "the smallest identity_nodes.id in the node's component"},
		},
		Tags:          []string{"identity"},
		Build:         build,
		OutsideMemory: outsideMemory,
	})
}

// edgesQuery turns the attribute links into pairs of node ids.
const edgesQuery = `SELECT x.id, y.id
FROM identity_links l
JOIN identity_nodes x ON x.node = l.node
JOIN identity_nodes y ON y.node = l.attr`

// outsideMemory is what build holds besides DuckDB: the forest, 4 bytes a
// node, and as much again for the Go heap to grow into between collections
// (the edge rows scanned through database/sql are garbage).
func outsideMemory(ctx context.Context, conn *sql.Conn) (int64, error) {
	n, err := nodes(ctx, conn)
	return 8 * (n + 1), err
}

// nodes is the number of identity nodes, whose ids are 1..n.
func nodes(ctx context.Context, conn *sql.Conn) (int64, error) {
	var n int64
	if err := conn.QueryRowContext(ctx, "SELECT coalesce(max(id), 0) FROM identity_nodes").Scan(&n); err != nil {
		return 0, fmt.Errorf("sizing the identity graph: %w", err)
	}
	return n, nil
}

func build(ctx context.Context, conn *sql.Conn, _ transform.Vars) (int64, string, error) {
	n, err := nodes(ctx, conn)
	if err != nil {
		return 0, "", err
	}
	if n >= 1<<31-1 {
		return 0, "", fmt.Errorf("identity graph has %d nodes; at most %d are supported", n, 1<<31-2)
	}
	uf := newForest(int32(n))
	rows, err := conn.QueryContext(ctx, edgesQuery)
	if err != nil {
		return 0, "", fmt.Errorf("reading identity edges: %w", err)
	}
	var edges int64
	for rows.Next() {
		var a, b int64
		if err := rows.Scan(&a, &b); err != nil {
			rows.Close()
			return 0, "", fmt.Errorf("reading identity edges: %w", err)
		}
		if a < 1 || a > n || b < 1 || b > n {
			rows.Close()
			return 0, "", fmt.Errorf("identity edge (%d, %d) names a node outside identity_nodes ids 1..%d (ids must be dense)", a, b, n)
		}
		uf.union(int32(a), int32(b))
		if edges++; edges%(1<<20) == 0 && ctx.Err() != nil {
			rows.Close()
			return 0, "", ctx.Err()
		}
	}
	if err := rows.Err(); err != nil {
		return 0, "", fmt.Errorf("reading identity edges: %w", err)
	}
	rows.Close()

	written, err := write(ctx, conn, uf)
	if err != nil {
		return 0, "", err
	}
	// The forest is 4 bytes per node (170 MB at 43M nodes): hand it back to
	// the OS now rather than at the next GC cycle, because DuckDB is about to
	// use its whole memory limit for the next model.
	debug.FreeOSMemory()
	return written, fmt.Sprintf("%d nodes, %d edges, %d components", n, edges, n-written), nil
}

// write replaces the table in one transaction, so readers and a crash see
// the old labels or the new ones, never a half-written table.
func write(ctx context.Context, conn *sql.Conn, uf forest) (int64, error) {
	if _, err := conn.ExecContext(ctx, "BEGIN TRANSACTION"); err != nil {
		return 0, fmt.Errorf("writing %s: %w", Model, err)
	}
	committed := false
	defer func() {
		if !committed {
			conn.ExecContext(context.WithoutCancel(ctx), "ROLLBACK")
		}
	}()
	if _, err := conn.ExecContext(ctx, "CREATE OR REPLACE TABLE "+Model+" (id BIGINT NOT NULL, label BIGINT NOT NULL)"); err != nil {
		return 0, fmt.Errorf("creating %s: %w", Model, err)
	}
	var written int64
	err := conn.Raw(func(dc any) error {
		app, err := duckdb.NewAppenderFromConn(dc.(driver.Conn), "", Model)
		if err != nil {
			return err
		}
		for i := int32(1); i < int32(len(uf)); i++ {
			root := uf.find(i)
			if root == i {
				continue
			}
			if err := app.AppendRow(int64(i), int64(root)); err != nil {
				app.Close()
				return err
			}
			if written++; written%(1<<20) == 0 && ctx.Err() != nil {
				app.Close()
				return ctx.Err()
			}
		}
		return app.Close()
	})
	if err != nil {
		return 0, fmt.Errorf("writing %s: %w", Model, err)
	}
	if _, err := conn.ExecContext(ctx, "COMMIT"); err != nil {
		return 0, fmt.Errorf("committing %s: %w", Model, err)
	}
	committed = true
	return written, nil
}

// forest is a union-find over node ids 1..n (index 0 unused) whose roots are
// always the smallest id of their set, so labels do not depend on the order
// edges arrive in.
type forest []int32

func newForest(n int32) forest {
	f := make(forest, n+1)
	for i := range f {
		f[i] = int32(i)
	}
	return f
}

// find returns x's root, halving the path on the way.
func (f forest) find(x int32) int32 {
	for f[x] != x {
		f[x] = f[f[x]]
		x = f[x]
	}
	return x
}

// union joins the sets of a and b under the smaller root.
func (f forest) union(a, b int32) {
	ra, rb := f.find(a), f.find(b)
	switch {
	case ra < rb:
		f[rb] = ra
	case rb < ra:
		f[ra] = rb
	}
}
