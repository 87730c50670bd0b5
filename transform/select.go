package transform

import (
	"fmt"
	"path"
	"sort"
	"strings"
)

// Select returns the models a selection names, in topological order. The
// syntax follows dbt: terms separated by spaces or commas are a union; each
// term is
//
//	name        the model
//	name+       the model and everything downstream of it
//	+name       the model and everything it reads
//	+name+      both
//	path:DIR    models whose file is under DIR ("path:sql/marts", "path:marts")
//	tag:NAME    models tagged NAME in their header
//	resource_type:seed  the seeds (resource_type:model: everything else)
//
// An empty selection is every model. A term that matches nothing is an error,
// so a typo never silently builds nothing.
func (p *Project) Select(selection string) ([]*Model, error) {
	terms := strings.FieldsFunc(selection, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' || r == '\n' })
	if len(terms) == 0 {
		return p.Models, nil
	}
	chosen := map[string]bool{}
	for _, t := range terms {
		names, err := p.selectTerm(t)
		if err != nil {
			return nil, err
		}
		for _, n := range names {
			chosen[n] = true
		}
	}
	var out []*Model
	for _, m := range p.Models {
		if chosen[m.Name] {
			out = append(out, m)
		}
	}
	return out, nil
}

func (p *Project) selectTerm(term string) ([]string, error) {
	switch {
	case strings.HasPrefix(term, "resource_type:"):
		kind := strings.TrimPrefix(term, "resource_type:")
		if kind != "seed" && kind != "model" {
			return nil, fmt.Errorf("selection %q: resource_type is seed or model", term)
		}
		var out []string
		for _, m := range p.Models {
			if (m.Seed != nil) == (kind == "seed") {
				out = append(out, m.Name)
			}
		}
		if len(out) == 0 {
			return nil, fmt.Errorf("selection %q: the project has no %ss", term, kind)
		}
		return out, nil
	case strings.HasPrefix(term, "path:"):
		dir := strings.Trim(path.Clean(strings.TrimPrefix(term, "path:")), "/")
		var out []string
		for _, m := range p.Models {
			file := strings.TrimPrefix(m.File, "./")
			if m.Go == nil && (strings.HasPrefix(file, dir+"/") || file == dir ||
				m.Dir == dir || strings.HasPrefix(m.Dir, dir+"/")) {
				out = append(out, m.Name)
			}
		}
		if len(out) == 0 {
			return nil, fmt.Errorf("selection %q: no model file is under %s", term, dir)
		}
		return out, nil
	case strings.HasPrefix(term, "tag:"):
		tag := strings.TrimPrefix(term, "tag:")
		var out []string
		for _, m := range p.Models {
			for _, t := range m.Header.Tags {
				if strings.EqualFold(t, tag) {
					out = append(out, m.Name)
					break
				}
			}
		}
		if len(out) == 0 {
			return nil, fmt.Errorf("selection %q: no model has tag %s", term, tag)
		}
		return out, nil
	}
	up := strings.HasPrefix(term, "+")
	down := strings.HasSuffix(term, "+")
	name := strings.ToLower(strings.Trim(term, "+"))
	if _, ok := p.byName[name]; !ok {
		return nil, fmt.Errorf("selection %q: there is no model %s%s", term, name, p.suggest(name))
	}
	out := []string{name}
	if up {
		out = append(out, p.Ancestors(name)...)
	}
	if down {
		out = append(out, p.Descendants(name)...)
	}
	return out, nil
}

// Ancestors returns every model name reads, directly or not.
func (p *Project) Ancestors(name string) []string {
	return p.walk(name, func(m *Model) []string { return m.Deps })
}

// Descendants returns every model that reads name, directly or not.
func (p *Project) Descendants(name string) []string {
	children := map[string][]string{}
	for _, m := range p.Models {
		for _, d := range m.Deps {
			children[d] = append(children[d], m.Name)
		}
	}
	return p.walk(name, func(m *Model) []string { return children[m.Name] })
}

func (p *Project) walk(name string, next func(*Model) []string) []string {
	seen := map[string]bool{name: true}
	var out []string
	stack := []string{name}
	for len(stack) > 0 {
		m := p.byName[stack[len(stack)-1]]
		stack = stack[:len(stack)-1]
		if m == nil {
			continue // a raw relation
		}
		for _, n := range next(m) {
			if !seen[n] && p.byName[n] != nil {
				seen[n] = true
				out = append(out, n)
				stack = append(stack, n)
			}
		}
	}
	sort.Strings(out)
	return out
}

// suggest names close model names for a typo, as " (did you mean …?)".
func (p *Project) suggest(name string) string {
	var near []string
	for n := range p.byName {
		d := editDistance(n, name)
		if d <= 1 || (len(name) >= 6 && d <= 2) || (len(name) >= 4 && strings.Contains(n, name)) {
			near = append(near, n)
		}
	}
	if len(near) == 0 {
		return ""
	}
	sort.Strings(near)
	return " (did you mean " + strings.Join(near, ", ") + "?)"
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}
