package docs

import (
	"fmt"
	"html"
	"slices"
	"strings"
)

// The lineage graph is drawn here as SVG from a layered layout (Sugiyama
// style: a node's layer is its longest path from a source, and a few
// barycenter sweeps order each layer to shorten edges), so the site needs
// no script library and renders offline.

const (
	nodeH    = 24
	rowH     = 34
	layerGap = 70
	charW    = 7.3 // 12px monospace
	margin   = 12
)

type box struct {
	n       *Node
	layer   int
	pos     float64 // order within the layer
	x, y, w float64
}

// layout places nodes (a subset of the site, in topological order) in
// layers; edges outside the subset are ignored.
func layout(nodes []*Node) (map[string]*box, float64, float64) {
	boxes := make(map[string]*box, len(nodes))
	var layers [][]*box
	for _, n := range nodes {
		b := &box{n: n, w: float64(len(n.Name))*charW + 18}
		for _, d := range n.Deps {
			if p := boxes[d]; p != nil && p.layer+1 > b.layer {
				b.layer = p.layer + 1
			}
		}
		boxes[n.Name] = b
		for len(layers) <= b.layer {
			layers = append(layers, nil)
		}
		b.pos = float64(len(layers[b.layer]))
		layers[b.layer] = append(layers[b.layer], b)
	}
	neighbours := func(b *box, up bool) []*box {
		var out []*box
		names := b.n.Readers
		if up {
			names = b.n.Deps
		}
		for _, d := range names {
			if o := boxes[d]; o != nil {
				out = append(out, o)
			}
		}
		return out
	}
	sweep := func(l int, up bool) {
		key := map[*box]float64{}
		for _, b := range layers[l] {
			key[b] = b.pos
			if ns := neighbours(b, up); len(ns) > 0 {
				sum := 0.0
				for _, o := range ns {
					sum += o.pos
				}
				key[b] = sum / float64(len(ns))
			}
		}
		slices.SortStableFunc(layers[l], func(a, b *box) int {
			switch {
			case key[a] < key[b]:
				return -1
			case key[a] > key[b]:
				return 1
			}
			return 0
		})
		for i, b := range layers[l] {
			b.pos = float64(i)
		}
	}
	for range 4 {
		for l := 1; l < len(layers); l++ {
			sweep(l, true)
		}
		for l := len(layers) - 2; l >= 0; l-- {
			sweep(l, false)
		}
	}
	tallest := 0
	for _, l := range layers {
		tallest = max(tallest, len(l))
	}
	x := float64(margin)
	for _, l := range layers {
		w := 0.0
		for _, b := range l {
			w = max(w, b.w)
		}
		top := float64(margin) + float64(tallest-len(l))*rowH/2
		for i, b := range l {
			b.x, b.y, b.w = x, top+float64(i)*rowH, w
		}
		x += w + layerGap
	}
	return boxes, x - layerGap + margin, float64(margin)*2 + float64(tallest)*rowH - (rowH - nodeH)
}

// lineageSVG draws nodes and the edges between them; link gives each
// node's page (relative to the page the SVG sits in), current is marked.
func lineageSVG(nodes []*Node, link func(*Node) string, current string) string {
	boxes, w, h := layout(nodes)
	var b strings.Builder
	fmt.Fprintf(&b, `<svg class="lineage" xmlns="http://www.w3.org/2000/svg" width="%.0f" height="%.0f" viewBox="0 0 %.0f %.0f" role="img" aria-label="lineage graph">`, w, h, w, h)
	b.WriteString(`<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#8a94a6"/></marker></defs>`)
	b.WriteString(`<g class="edges">`)
	for _, n := range nodes {
		to := boxes[n.Name]
		for _, d := range n.Deps {
			from := boxes[d]
			if from == nil {
				continue
			}
			x1, y1 := from.x+from.w, from.y+nodeH/2
			x2, y2 := to.x, to.y+nodeH/2
			dx := (x2 - x1) / 2
			fmt.Fprintf(&b, `<path class="edge" data-from="%s" data-to="%s" d="M%.1f,%.1f C%.1f,%.1f %.1f,%.1f %.1f,%.1f" marker-end="url(#arrow)"/>`,
				html.EscapeString(d), html.EscapeString(n.Name), x1, y1, x1+dx, y1, x2-dx, y2, x2, y2)
		}
	}
	b.WriteString(`</g><g class="nodes">`)
	for _, n := range nodes {
		bx := boxes[n.Name]
		cls := "node kind-" + n.Kind
		if n.Published {
			cls += " published"
		}
		if n.Name == current {
			cls += " current"
		}
		title := n.Name + " (" + n.Kind + ")"
		if n.Description != "" {
			title += ": " + n.Description
		}
		fmt.Fprintf(&b, `<a class="%s" data-node="%s" href="%s"><title>%s</title><rect x="%.1f" y="%.1f" width="%.1f" height="%d" rx="5"/><text x="%.1f" y="%.1f">%s</text></a>`,
			cls, html.EscapeString(n.Name), html.EscapeString(link(n)), html.EscapeString(title),
			bx.x, bx.y, bx.w, nodeH, bx.x+9, bx.y+nodeH/2+4, html.EscapeString(n.Name))
	}
	b.WriteString(`</g></svg>`)
	return b.String()
}
