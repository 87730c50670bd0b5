package docs

import (
	"bytes"
	_ "embed"
	"fmt"
	"html/template"
	"slices"
	"strings"
)

//go:embed style.css
var styleCSS []byte

//go:embed page.html
var pageHTML string

var pages = template.Must(template.New("page").Funcs(template.FuncMap{
	"brief": brief,
	"status": func(t Test) string {
		if t.Last == nil {
			return "not run"
		}
		return t.Last.Status
	},
}).Parse(pageHTML))

// pageData is what page.html renders: the index (Node nil) or one node.
type pageData struct {
	Site    *Site
	Node    *Node
	Root    string // "" or "../": the way back to the index
	Lineage template.HTML
	Rows    []row // the index's table
	Deps    []link
	Readers []link
	Counts  map[string]int // test statuses over the site
	Models  int
	Sources int
}

type row struct {
	N     *Node
	Href  string
	Tests string // "3 pass, 1 fail"
}

type link struct{ Name, Href string }

func testSummary(ts []Test) string {
	counts := map[string]int{}
	for _, t := range ts {
		counts[statusOf(t)]++
	}
	var out []byte
	for _, s := range []string{"pass", "warn", "fail", "error", "not run"} {
		if counts[s] > 0 {
			if len(out) > 0 {
				out = append(out, ", "...)
			}
			out = fmt.Appendf(out, "%d %s", counts[s], s)
		}
	}
	return string(out)
}

func statusOf(t Test) string {
	if t.Last == nil {
		return "not run"
	}
	return t.Last.Status
}

func (s *Site) renderIndex() ([]byte, error) {
	d := pageData{Site: s, Counts: map[string]int{}}
	d.Lineage = template.HTML(lineageSVG(s.Nodes, func(n *Node) string { return Page(n) }, ""))
	seen := map[string]bool{}
	for _, n := range s.Nodes {
		d.Rows = append(d.Rows, row{N: n, Href: Page(n), Tests: testSummary(n.Tests)})
		if n.Kind == "source" {
			d.Sources++
		} else {
			d.Models++
		}
		for _, t := range n.Tests {
			if !seen[t.Name] { // a test of several models counts once
				seen[t.Name] = true
				d.Counts[statusOf(t)]++
			}
		}
	}
	return s.execute(d)
}

func (s *Site) renderNode(n *Node) ([]byte, error) {
	page := Page(n)
	d := pageData{Site: s, Node: n, Root: strings.Repeat("../", strings.Count(page, "/"))}
	near := []*Node{}
	for _, o := range s.Nodes { // in the site's (topological) order
		if o == n || slices.Contains(n.Deps, o.Name) || slices.Contains(n.Readers, o.Name) {
			near = append(near, o)
		}
	}
	d.Lineage = template.HTML(lineageSVG(near, func(o *Node) string { return rel(page, Page(o)) }, n.Name))
	for _, name := range n.Deps {
		if o := s.byName[name]; o != nil {
			d.Deps = append(d.Deps, link{o.Name, rel(page, Page(o))})
		}
	}
	for _, name := range n.Readers {
		if o := s.byName[name]; o != nil {
			d.Readers = append(d.Readers, link{o.Name, rel(page, Page(o))})
		}
	}
	return s.execute(d)
}

func (s *Site) execute(d pageData) ([]byte, error) {
	var b bytes.Buffer
	if err := pages.Execute(&b, d); err != nil {
		return nil, fmt.Errorf("rendering the docs: %w", err)
	}
	return b.Bytes(), nil
}

// brief is a description's first sentence, for the index: the model's page
// has the whole text.
func brief(s string) string {
	if len(s) <= 160 {
		return s
	}
	if i := strings.Index(s, ". "); i > 0 && i < 300 {
		return s[:i+1] + " …"
	}
	cut := strings.LastIndexByte(s[:160], ' ')
	if cut < 0 {
		cut = 160
	}
	return s[:cut] + " …"
}
