package transform

import (
	"fmt"
	"io"
	"strings"
)

// WriteGraph prints models and their dependencies as a Mermaid flowchart
// (format "mermaid", which GitHub and most wikis render) or Graphviz DOT
// (format "dot"). Raw relations appear as their own nodes so the graph shows
// where data enters.
func WriteGraph(w io.Writer, models []*Model, format string) error {
	in := map[string]bool{}
	for _, m := range models {
		in[m.Name] = true
	}
	id := func(n string) string { return strings.ReplaceAll(n, ".", "__") }
	var b strings.Builder
	switch format {
	case "mermaid", "":
		b.WriteString("flowchart LR\n")
		raws := map[string]bool{}
		for _, m := range models {
			fmt.Fprintf(&b, "  %s[\"%s<br/><small>%s</small>\"]\n", id(m.Name), m.Name, m.Header.Materialized)
			for _, d := range m.Deps {
				if !in[d] && !raws[d] {
					raws[d] = true
					fmt.Fprintf(&b, "  %s[(\"%s\")]\n", id(d), d)
				}
			}
		}
		for _, m := range models {
			for _, d := range m.Deps {
				fmt.Fprintf(&b, "  %s --> %s\n", id(d), id(m.Name))
			}
		}
	case "dot":
		b.WriteString("digraph cdw {\n  rankdir=LR;\n  node [shape=box, fontname=\"Helvetica\"];\n")
		raws := map[string]bool{}
		for _, m := range models {
			fmt.Fprintf(&b, "  %q [label=\"%s\\n(%s)\"];\n", m.Name, m.Name, m.Header.Materialized)
			for _, d := range m.Deps {
				if !in[d] && !raws[d] {
					raws[d] = true
					fmt.Fprintf(&b, "  %q [shape=cylinder];\n", d)
				}
			}
		}
		for _, m := range models {
			for _, d := range m.Deps {
				fmt.Fprintf(&b, "  %q -> %q;\n", d, m.Name)
			}
		}
		b.WriteString("}\n")
	default:
		return fmt.Errorf("graph format %q: use mermaid or dot", format)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// Scaffold returns the text of a new model file named name, with the header
// keys filled in and commented so a user sees every option at once.
func Scaffold(name string, mat Materialization) (string, error) {
	name = strings.ToLower(name)
	if !validModelName(name) {
		return "", fmt.Errorf("model name %q: use lower-case letters, digits and _ (the name is the table name)", name)
	}
	if mat == "" {
		mat = Table
	}
	if !mat.Valid() {
		return "", fmt.Errorf("materialized must be view, table or incremental, got %q", mat)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "-- materialized: %s\n", mat)
	if mat == Incremental {
		b.WriteString("-- unique_key: customer_id\n")
	}
	fmt.Fprintf(&b, "-- description: TODO what one row of %s is and who reads it.\n", name)
	b.WriteString("-- tags: \n")
	b.WriteString("-- tests: unique(customer_id), not_null(customer_id)\n")
	b.WriteString("-- column: customer_id: the customer\n")
	b.WriteString("SELECT\n    customer_id,\n    count(*) AS orders\nFROM stg_orders\nWHERE customer_id IS NOT NULL\nGROUP BY customer_id\n")
	return b.String(), nil
}
