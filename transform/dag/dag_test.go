package dag

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
)

// a ← b ← d, a ← c; e alone. b fails: d is skipped, the rest run.
func TestExecutorSkipsDescendantsOfAFailure(t *testing.T) {
	g := Graph{Deps: [][]int{nil, {0}, {0}, {1}, nil}}
	var started, done []int
	ex := Executor[string]{
		Workers: 2,
		Start: func(i int) func(int) string {
			started = append(started, i)
			return func(int) string {
				if i == 1 {
					return "fail"
				}
				return "ok"
			}
		},
		Done: func(i int, r string) bool { done = append(done, i); return r == "ok" },
		Skip: func(i, failed int, err error) string { return fmt.Sprintf("skip %d by %d (%v)", i, failed, err) },
	}
	out, err := ex.Run(context.Background(), g)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"ok", "fail", "ok", "skip 3 by 1 (<nil>)", "ok"}
	if !slices.Equal(out, want) {
		t.Fatalf("results %q, want %q", out, want)
	}
	slices.Sort(started)
	if !slices.Equal(started, []int{0, 1, 2, 4}) {
		t.Fatalf("started %v", started)
	}
	if len(done) != 5 {
		t.Fatalf("done %v: every result, skips included, is recorded", done)
	}
}

// With one worker, ready tasks start lowest number first.
func TestExecutorOrderIsStable(t *testing.T) {
	g := Graph{Deps: [][]int{nil, nil, {0}, {1}, {2, 3}}}
	var order []int
	ex := Executor[int]{
		Workers: 1,
		Start:   func(i int) func(int) int { order = append(order, i); return func(int) int { return i } },
		Done:    func(int, int) bool { return true },
		Skip:    func(i, _ int, _ error) int { return -i },
	}
	if _, err := ex.Run(context.Background(), g); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(order, []int{0, 1, 2, 3, 4}) {
		t.Fatalf("order %v", order)
	}
}

// After ctx ends, what did not start is skipped with ctx's error.
func TestExecutorStopsWhenCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	g := Graph{Deps: [][]int{nil, {0}, {1}}}
	ex := Executor[string]{
		Workers: 1,
		Start: func(i int) func(int) string {
			return func(int) string { cancel(); return "ok" }
		},
		Done: func(int, string) bool { return true },
		Skip: func(i, failed int, err error) string {
			if failed != -1 || !errors.Is(err, context.Canceled) {
				t.Errorf("skip %d: failed %d, err %v", i, failed, err)
			}
			return "skipped"
		},
	}
	out, err := ex.Run(ctx, g)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err %v", err)
	}
	if !slices.Equal(out, []string{"ok", "skipped", "skipped"}) {
		t.Fatalf("results %q", out)
	}
}

func TestSort(t *testing.T) {
	deps := map[string][]string{"c": {"a", "raw.x"}, "b": {"c"}, "a": nil}
	order, err := Sort([]string{"b", "c", "a"}, func(n string) []string { return deps[n] })
	if err != nil || !slices.Equal(order, []string{"a", "c", "b"}) {
		t.Fatalf("order %v (%v)", order, err)
	}
	deps["a"] = []string{"b"}
	_, err = Sort([]string{"b", "c", "a"}, func(n string) []string { return deps[n] })
	var ce *CycleError
	if !errors.As(err, &ce) || !slices.Equal(ce.Path, []string{"a", "b", "c", "a"}) {
		t.Fatalf("err %v", err)
	}
}
