package identity

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	_ "github.com/duckdb/duckdb-go/v2"
)

// TestComponentsMatchBFS builds random identity graphs in a real DuckDB, runs
// the Go model and checks every node's label against components found by
// breadth-first search: same partition, and the label is the smallest id.
func TestComponentsMatchBFS(t *testing.T) {
	ctx := context.Background()
	conn := newConn(t)
	for seed := uint64(1); seed <= 5; seed++ {
		rng := rand.New(rand.NewPCG(seed, 99))
		contacts, attrs := 200+rng.IntN(300), 150+rng.IntN(200)
		n := contacts + attrs
		// Shuffled ids: labels must not depend on which ids contacts get.
		perm := rng.Perm(n)
		var nodes, links []string
		adj := make([][]int, n+1)
		for i := 0; i < n; i++ {
			nodes = append(nodes, fmt.Sprintf("('n%d', %d)", i, perm[i]+1))
		}
		for c := 0; c < contacts; c++ {
			for k := rng.IntN(3); k > 0; k-- { // 0–2 attributes, some contacts alone
				a := contacts + rng.IntN(attrs)
				links = append(links, fmt.Sprintf("('n%d', 'email', 'n%d')", c, a))
				x, y := perm[c]+1, perm[a]+1
				adj[x], adj[y] = append(adj[x], y), append(adj[y], x)
			}
		}
		for _, q := range []string{
			"CREATE OR REPLACE TABLE identity_nodes (node VARCHAR, id BIGINT)",
			"CREATE OR REPLACE TABLE identity_links (node VARCHAR, kind VARCHAR, attr VARCHAR)",
			"INSERT INTO identity_nodes VALUES " + strings.Join(nodes, ", "),
		} {
			if _, err := conn.ExecContext(ctx, q); err != nil {
				t.Fatal(err)
			}
		}
		if len(links) > 0 {
			if _, err := conn.ExecContext(ctx, "INSERT INTO identity_links VALUES "+strings.Join(links, ", ")); err != nil {
				t.Fatal(err)
			}
		}
		written, notes, err := build(ctx, conn, nil)
		if err != nil {
			t.Fatal(err)
		}
		want := bfsMinLabels(adj)
		rows, err := conn.QueryContext(ctx, `SELECT n.id, coalesce(c.label, n.id) FROM identity_nodes n LEFT JOIN identity_components c USING (id)`)
		if err != nil {
			t.Fatal(err)
		}
		got, nonRoots := 0, 0
		for rows.Next() {
			var id, label int
			if err := rows.Scan(&id, &label); err != nil {
				t.Fatal(err)
			}
			if label != want[id] {
				t.Fatalf("seed %d: node %d has label %d, BFS says %d", seed, id, label, want[id])
			}
			if label != id {
				nonRoots++
			}
			got++
		}
		rows.Close()
		if got != n || int64(nonRoots) != written {
			t.Fatalf("seed %d: %d nodes labelled of %d; %d rows written for %d non-roots", seed, got, n, written, nonRoots)
		}
		if !strings.Contains(notes, fmt.Sprintf("%d nodes", n)) {
			t.Errorf("notes %q do not count %d nodes", notes, n)
		}
	}
}

// bfsMinLabels labels every node 1..n with the smallest id of its component.
func bfsMinLabels(adj [][]int) []int {
	label := make([]int, len(adj))
	for s := 1; s < len(adj); s++ {
		if label[s] != 0 {
			continue
		}
		comp, queue := []int{s}, []int{s}
		label[s] = -1
		for len(queue) > 0 {
			x := queue[0]
			queue = queue[1:]
			for _, y := range adj[x] {
				if label[y] == 0 {
					label[y] = -1
					comp = append(comp, y)
					queue = append(queue, y)
				}
			}
		}
		least := comp[0]
		for _, x := range comp {
			least = min(least, x)
		}
		for _, x := range comp {
			label[x] = least
		}
	}
	return label
}

// TestRejectsSparseIDs: ids outside 1..max would index past the arrays.
func TestRejectsSparseIDs(t *testing.T) {
	ctx := context.Background()
	conn := newConn(t)
	for _, q := range []string{
		"CREATE TABLE identity_nodes AS SELECT * FROM (VALUES ('a', 1), ('b', 0)) v(node, id)",
		"CREATE TABLE identity_links AS SELECT 'a' AS node, 'email' AS kind, 'b' AS attr",
	} {
		if _, err := conn.ExecContext(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := build(ctx, conn, nil); err == nil || !strings.Contains(err.Error(), "dense") {
		t.Fatalf("want an error about dense ids, got %v", err)
	}
}

// TestOutsideMemory: the runner is told about the forest (4 bytes a node)
// and the heap room beside it, so it can lower DuckDB's limit by that much.
func TestOutsideMemory(t *testing.T) {
	ctx := context.Background()
	conn := newConn(t)
	if _, err := conn.ExecContext(ctx, "CREATE TABLE identity_nodes AS SELECT 'n' || i AS node, i AS id FROM range(1, 1001) t(i)"); err != nil {
		t.Fatal(err)
	}
	if got, err := outsideMemory(ctx, conn); err != nil || got != 8*1001 {
		t.Fatalf("outside memory %d, %v; want %d", got, err, 8*1001)
	}
}

// newConn is a connection to a fresh in-memory DuckDB, closed with the test.
func newConn(t *testing.T) *sql.Conn {
	t.Helper()
	db, err := sql.Open("duckdb", "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	conn, err := db.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}
