package passes

import (
	"github.com/mmadac/mmadac/ir"
)

func init() {
	register(&Pass{Name: "sink-gather", Run: runSinkGather,
		Doc: "move a gather of selected rows above the row-wise ops that feed it, so that only those rows are computed"})
}

// runSinkGather rewrites gather(op(x, ...), idx) into op(gather(x, idx),
// ...) while op works on each row independently, and repeats on the new
// gathers. The folded head gathers the block's positions from the last
// hidden state. Sinking that gather narrows the last layer's query
// projection, attention rows, output projection, MLP and final norm to
// those positions. Its keys and values still cover the whole sequence.
// Every selected row is computed as before, so the result is the same up
// to the order of floating-point sums inside a kernel.
//
// A gather moves only when it is the sole reader of its operand and the
// operand is not a graph output: otherwise the full operand is computed
// anyway and narrowing would add work. The indices must be rank 1, so the
// gathered axis keeps its place.
func runSinkGather(g *ir.Graph, c *Context) error {
	moved := 0
	for {
		mergeGathers(g)
		uses := useMap(g)
		done := true
		for i, n := range g.Nodes {
			if n.Op != "gather" {
				continue
			}
			x := n.Inputs[0]
			if x.Def == nil || len(uses[x]) != 1 || isOutput(g, x) || len(x.Def.Outputs) != 1 {
				continue
			}
			e := &emitter{g: g}
			out := sinkThrough(e, x.Def, n.Inputs[1], n.Attrs.Int("axis", 0))
			if out == nil {
				continue
			}
			// The new nodes read only values defined before the gather,
			// so they take its place; the old op and gather are dead.
			replaceUses(g, n.Outputs[0], out)
			nodes := make([]*ir.Node, 0, len(g.Nodes)+len(e.nodes))
			nodes = append(nodes, g.Nodes[:i]...)
			nodes = append(nodes, e.nodes...)
			nodes = append(nodes, g.Nodes[i+1:]...)
			g.Nodes = removeNode(nodes, x.Def)
			moved++
			done = false
			break
		}
		if done {
			break
		}
	}
	c.count("sink-gather.moved", moved)
	return nil
}

// mergeGathers keeps one of several gathers that read the same operand
// with the same indices and axis. Sinking creates such twins when a value
// feeds two narrowed ops (a residual add and the norm after it), and the
// operand counts as singly read only once they are one.
func mergeGathers(g *ir.Graph) {
	type key struct {
		x, idx *ir.Value
		axis   int64
	}
	first := map[key]*ir.Node{}
	remaining := g.Nodes[:0]
	for _, n := range g.Nodes {
		if n.Op == "gather" {
			k := key{n.Inputs[0], n.Inputs[1], n.Attrs.Int("axis", 0)}
			if f, ok := first[k]; ok {
				replaceUses(g, n.Outputs[0], f.Outputs[0])
				continue
			}
			first[k] = n
		}
		remaining = append(remaining, n)
	}
	g.Nodes = remaining
}

// removeNode returns nodes without n.
func removeNode(nodes []*ir.Node, n *ir.Node) []*ir.Node {
	for i, m := range nodes {
		if m == n {
			return append(nodes[:i], nodes[i+1:]...)
		}
	}
	return nodes
}

// elementwise lists the ops whose result element depends only on the
// operand elements at the same (broadcast) index.
var elementwise = map[string]bool{
	"neg": true, "exp": true, "log": true, "sqrt": true, "rsqrt": true, "reciprocal": true, "sigmoid": true,
	"silu": true, "tanh": true, "sin": true, "cos": true, "abs": true, "not": true, "cast": true,
	"add": true, "sub": true, "mul": true, "div": true, "pow": true, "max": true, "min": true,
	"equal": true, "less": true, "greater": true, "and": true, "or": true, "where": true, "swiglu": true,
}

// sinkThrough emits op d with its operands gathered along the axes that
// map to the result's axis, and returns the new result. It returns nil
// when d does not commute with the gather on that axis.
func sinkThrough(e *emitter, d *ir.Node, idx *ir.Value, axis int64) *ir.Value {
	rank := int64(d.Outputs[0].Type.Shape.Rank())
	if idx.Type.Shape.Rank() != 1 {
		return nil
	}
	if axis < 0 {
		axis += rank
	}
	if axis < 0 || axis >= rank {
		return nil
	}
	outDim := d.Outputs[0].Type.Shape[axis]
	gather := func(v *ir.Value, ax int64) *ir.Value {
		return e.op("gather", ir.Attrs{"axis": ax}, v, idx)
	}
	clone := func(inputs ...*ir.Value) *ir.Value {
		return e.op(d.Op, d.Attrs, inputs...)
	}
	// broadcastOperand gathers an operand along the axis aligned with the
	// result's, or leaves it when it broadcasts along that axis.
	broadcastOperand := func(v *ir.Value) (*ir.Value, bool) {
		vr := int64(v.Type.Shape.Rank())
		j := axis - (rank - vr)
		if j < 0 {
			return v, true
		}
		dim := v.Type.Shape[j]
		if dim.IsStatic() && dim.Size == 1 && !(outDim.IsStatic() && outDim.Size == 1) {
			return v, true
		}
		if dim != outDim {
			return nil, false
		}
		return gather(v, j), true
	}

	switch {
	case elementwise[d.Op]:
		ins := make([]*ir.Value, len(d.Inputs))
		for i, in := range d.Inputs {
			v, ok := broadcastOperand(in)
			if !ok {
				return nil
			}
			ins[i] = v
		}
		return clone(ins...)

	case d.Op == "rms_norm" || d.Op == "softmax":
		// Both normalise over one axis (the last for rms_norm), so any other
		// axis indexes rows.
		norm := rank - 1
		if d.Op == "softmax" {
			norm = d.Attrs.Int("axis", -1)
			if norm < 0 {
				norm += rank
			}
		}
		if axis == norm {
			return nil
		}
		ins := append([]*ir.Value{gather(d.Inputs[0], axis)}, d.Inputs[1:]...)
		return clone(ins...)

	case d.Op == "matmul":
		a, b := d.Inputs[0], d.Inputs[1]
		// Only the rows of a: the batch axes would also need b gathered,
		// and the columns come from b alone.
		if axis != rank-2 || int64(a.Type.Shape.Rank()) != rank {
			return nil
		}
		return clone(gather(a, axis), b)

	case d.Op == "rope":
		// Rows of x and of its tables move together; the last axis
		// is rotated.
		if axis == rank-1 {
			return nil
		}
		ins := []*ir.Value{gather(d.Inputs[0], axis)}
		for _, t := range d.Inputs[1:] {
			v, ok := broadcastOperand(t)
			if !ok {
				return nil
			}
			ins = append(ins, v)
		}
		return clone(ins...)

	case d.Op == "attention":
		// Query rows are independent, so keys and values stay whole.
		if axis != 2 {
			return nil
		}
		ins := []*ir.Value{gather(d.Inputs[0], 2), d.Inputs[1], d.Inputs[2]}
		if len(d.Inputs) == 4 {
			bias, ok := broadcastOperand(d.Inputs[3])
			if !ok {
				return nil
			}
			ins = append(ins, bias)
		}
		return clone(ins...)

	case d.Op == "transpose":
		perm := d.Attrs.Ints("perm")
		if int64(len(perm)) != rank {
			return nil
		}
		return clone(gather(d.Inputs[0], perm[axis]))

	case d.Op == "reshape":
		// A reshape that copies every dimension up to the gathered one
		// (spec 0) keeps the row structure.
		spec := d.Attrs.Ints("shape")
		in := d.Inputs[0].Type.Shape
		if int64(len(spec)) <= axis || int64(in.Rank()) <= axis {
			return nil
		}
		for i := int64(0); i <= axis; i++ {
			if spec[i] != 0 {
				return nil
			}
		}
		return clone(gather(d.Inputs[0], axis))

	case d.Op == "slice" || d.Op == "concat":
		var axes []int64
		if d.Op == "slice" {
			axes = d.Attrs.Ints("axes")
			if axes == nil {
				for i := range d.Attrs.Ints("starts") {
					axes = append(axes, int64(i))
				}
			}
		} else {
			axes = []int64{d.Attrs.Int("axis", 0)}
		}
		for _, a := range axes {
			if a == axis || a+rank == axis {
				return nil
			}
		}
		ins := make([]*ir.Value, len(d.Inputs))
		for i, in := range d.Inputs {
			ins[i] = gather(in, axis)
		}
		return clone(ins...)
	}
	return nil
}
