package passes

import (
	"github.com/mmadac/mmadac/ir"
)

// useMap lists, for every value, the nodes reading it.
func useMap(g *ir.Graph) map[*ir.Value][]*ir.Node {
	uses := map[*ir.Value][]*ir.Node{}
	for _, n := range g.Nodes {
		for _, in := range n.Inputs {
			uses[in] = append(uses[in], n)
		}
	}
	return uses
}

// isOutput reports whether v is a graph output.
func isOutput(g *ir.Graph, v *ir.Value) bool {
	for _, o := range g.Outputs {
		if o.Value == v {
			return true
		}
	}
	return false
}

// def returns the node defining v when it has the given op, else nil.
func def(v *ir.Value, op string) *ir.Node {
	if v == nil || v.Def == nil || v.Def.Op != op {
		return nil
	}
	return v.Def
}

// scalarConst returns the value of a rank-0 or one-element constant.
func scalarConst(v *ir.Value) (float64, bool) {
	if v.Kind != ir.KindConst || v.Const == nil || v.Const.Len() != 1 {
		return 0, false
	}
	switch d := v.Const.Data.(type) {
	case []float32:
		return float64(d[0]), true
	case []float64:
		return d[0], true
	case []int64:
		return float64(d[0]), true
	}
	return 0, false
}

func equalInts(a, b []int64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// replaceUses points every reader of old, and any output naming it, at nw.
func replaceUses(g *ir.Graph, old, nw *ir.Value) {
	for _, n := range g.Nodes {
		for i, in := range n.Inputs {
			if in == old {
				n.Inputs[i] = nw
			}
		}
	}
	for i := range g.Outputs {
		if g.Outputs[i].Value == old {
			g.Outputs[i].Value = nw
		}
	}
}

// emitter builds replacement nodes that are spliced into a graph's node
// list before a given node.
type emitter struct {
	g     *ir.Graph
	nodes []*ir.Node
}

// op creates a node with inferred result type (it panics on a type error,
// which the pass manager reports as an internal error of the pass).
func (e *emitter) op(op string, attrs ir.Attrs, inputs ...*ir.Value) *ir.Value {
	d, ok := ir.LookupOp(op)
	if !ok {
		panic("unknown op " + op)
	}
	if attrs == nil {
		attrs = ir.Attrs{}
	}
	types, err := d.CheckAndInfer(inputs, attrs)
	if err != nil {
		panic(op + ": " + err.Error())
	}
	n := &ir.Node{Op: op, Inputs: inputs, Attrs: attrs}
	for _, t := range types {
		n.Outputs = append(n.Outputs, &ir.Value{ID: e.g.NewID(), Type: t, Kind: ir.KindResult, Def: n})
	}
	e.nodes = append(e.nodes, n)
	return n.Outputs[0]
}

// scalar adds a rank-0 constant to the graph.
func (e *emitter) scalar(dt ir.DType, x float64) *ir.Value { return e.g.Scalar(dt, x) }

// spliceBefore inserts nodes in front of anchor in g.Nodes.
func spliceBefore(g *ir.Graph, anchor *ir.Node, nodes []*ir.Node) {
	out := make([]*ir.Node, 0, len(g.Nodes)+len(nodes))
	for _, n := range g.Nodes {
		if n == anchor {
			out = append(out, nodes...)
		}
		out = append(out, n)
	}
	g.Nodes = out
}

// edits collects node insertions and value replacements so that a pass
// applies them in one sweep over the graph instead of one per rewrite.
type edits struct {
	before map[*ir.Node][]*ir.Node
	repl   map[*ir.Value]*ir.Value
}

func newEdits() *edits {
	return &edits{before: map[*ir.Node][]*ir.Node{}, repl: map[*ir.Value]*ir.Value{}}
}

// insert schedules nodes to go in front of anchor.
func (ed *edits) insert(anchor *ir.Node, nodes []*ir.Node) {
	ed.before[anchor] = append(ed.before[anchor], nodes...)
}

// replace schedules every use of old to read nw.
func (ed *edits) replace(old, nw *ir.Value) { ed.repl[old] = nw }

// apply rebuilds the node list with the insertions and rewrites operands
// and outputs through the replacements.
func (ed *edits) apply(g *ir.Graph) {
	if len(ed.before) == 0 && len(ed.repl) == 0 {
		return
	}
	resolve := func(v *ir.Value) *ir.Value {
		for {
			r, ok := ed.repl[v]
			if !ok {
				return v
			}
			v = r
		}
	}
	out := make([]*ir.Node, 0, len(g.Nodes))
	for _, n := range g.Nodes {
		out = append(out, ed.before[n]...)
		out = append(out, n)
	}
	for _, n := range out {
		for i, in := range n.Inputs {
			n.Inputs[i] = resolve(in)
		}
	}
	for i := range g.Outputs {
		g.Outputs[i].Value = resolve(g.Outputs[i].Value)
	}
	g.Nodes = out
}
