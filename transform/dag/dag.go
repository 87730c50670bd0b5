// Package dag runs a graph of tasks in dependency order, several at once,
// and orders a graph topologically. It knows nothing of what the tasks do:
// transform builds models with it, and anything else with dependencies
// could run on it.
package dag

import (
	"context"
	"slices"
	"sort"
)

// Graph is n tasks, numbered 0..n-1 in a topological order (every task
// after what it waits for); Deps[i] are the tasks i waits for.
type Graph struct {
	Deps [][]int
}

// Executor says how to run a Graph's tasks. Start and Done run on the
// calling goroutine, one at a time, so they may share state without locks;
// only the function Start returns runs on a worker.
type Executor[R any] struct {
	// Workers bounds the tasks running at once (at least 1).
	Workers int
	// Start is called when every task i waits for has finished; the
	// function it returns does the work on worker w (0 ≤ w < Workers).
	Start func(i int) func(w int) R
	// Done records a finished task's result and reports whether it
	// succeeded; the tasks that wait on a failed one are not started.
	Done func(i int, r R) bool
	// Skip is the result of a task not started: failed is the task whose
	// failure stopped it (Done is called with the result), or -1 when ctx
	// ended before it started (err is ctx's error; Done is not called).
	Skip func(i, failed int, err error) R
}

// Run runs every task of g and returns each one's result. Ready tasks start
// lowest number first, so the order is stable for a given graph. After ctx
// ends no task starts; those that did run to their end, and Run returns
// ctx's error beside the results.
func (e Executor[R]) Run(ctx context.Context, g Graph) ([]R, error) {
	n := len(g.Deps)
	out := make([]R, n)
	workers := min(max(e.Workers, 1), max(n, 1))
	pending := make([]int, n) // unfinished dependencies
	children := make([][]int, n)
	for i, deps := range g.Deps {
		for _, d := range deps {
			pending[i]++
			children[d] = append(children[d], i)
		}
	}
	type job struct {
		i    int
		work func(int) R
	}
	type result struct {
		i int
		r R
	}
	jobs := make(chan job)
	results := make(chan result)
	for w := 0; w < workers; w++ {
		go func(w int) {
			for j := range jobs {
				results <- result{j.i, j.work(w)}
			}
		}(w)
	}
	defer close(jobs)
	started := make([]bool, n)
	broken := make([]int, n) // 1 + the failed ancestor, 0 if none
	var ready []int
	for i := range n {
		if pending[i] == 0 {
			ready = append(ready, i)
		}
	}
	finished, inflight := 0, 0
	var finish func(i int, r R)
	finish = func(i int, r R) {
		out[i] = r
		finished++
		if !e.Done(i, r) && broken[i] == 0 {
			broken[i] = i + 1
		}
		for _, c := range children[i] {
			if broken[i] != 0 && broken[c] == 0 {
				broken[c] = broken[i]
			}
			pending[c]--
			if pending[c] > 0 {
				continue
			}
			if broken[c] != 0 {
				started[c] = true
				finish(c, e.Skip(c, broken[c]-1, nil))
				continue
			}
			at, _ := slices.BinarySearch(ready, c)
			ready = slices.Insert(ready, at, c)
		}
	}
	var ctxErr error
	for finished < n {
		for len(ready) > 0 && inflight < workers && ctxErr == nil {
			i := ready[0]
			ready = ready[1:]
			started[i] = true
			inflight++
			jobs <- job{i, e.Start(i)}
		}
		if inflight == 0 {
			for i := range n {
				if !started[i] {
					out[i] = e.Skip(i, -1, ctxErr)
				}
			}
			break
		}
		d := <-results
		inflight--
		finish(d.i, d.r)
		if ctxErr == nil && ctx.Err() != nil {
			ctxErr = ctx.Err()
		}
	}
	return out, ctxErr
}

// CycleError is a set of nodes that wait on each other: Path starts and
// ends with the same node.
type CycleError struct{ Path []string }

func (e *CycleError) Error() string { return "cycle" }

// Sort orders the named nodes so each comes after the nodes deps names
// that are themselves among names (others are left out, as inputs from
// outside); ties break by name so the order is stable. A cycle is a
// *CycleError.
func Sort(names []string, deps func(string) []string) ([]string, error) {
	names = slices.Clone(names)
	sort.Strings(names)
	known := make(map[string]bool, len(names))
	for _, n := range names {
		known[n] = true
	}
	const (
		visiting = iota + 1
		done
	)
	state := map[string]int{}
	var order, stack []string
	var visit func(string) error
	visit = func(n string) error {
		switch state[n] {
		case done:
			return nil
		case visiting:
			i := len(stack) - 1
			for stack[i] != n {
				i--
			}
			return &CycleError{Path: append(slices.Clone(stack[i:]), n)}
		}
		state[n] = visiting
		stack = append(stack, n)
		for _, d := range deps(n) {
			if known[d] {
				if err := visit(d); err != nil {
					return err
				}
			}
		}
		stack = stack[:len(stack)-1]
		state[n] = done
		order = append(order, n)
		return nil
	}
	for _, n := range names {
		if err := visit(n); err != nil {
			return nil, err
		}
	}
	return order, nil
}
