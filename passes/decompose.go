package passes

import "github.com/mmadac/mmadac/ir"

// decomposeRoPE emits the rotary embedding in the form the model builder
// writes: x*cos + concat(-x2, x1)*sin with whole-row tables, which gives
// the same bits as the fused kernel.
func decomposeRoPE(e *emitter, x, cos, sin *ir.Value) *ir.Value {
	shape := x.Type.Shape
	last := int64(shape.Rank() - 1)
	dim := shape[last].Size
	c := e.op("concat", ir.Attrs{"axis": int64(1)}, cos, cos)
	s := e.op("concat", ir.Attrs{"axis": int64(1)}, sin, sin)
	lo := e.op("slice", ir.Attrs{"starts": []int64{0}, "ends": []int64{dim / 2}, "axes": []int64{last}}, x)
	hi := e.op("slice", ir.Attrs{"starts": []int64{dim / 2}, "ends": []int64{dim}, "axes": []int64{last}}, x)
	rot := e.op("concat", ir.Attrs{"axis": last}, e.op("neg", nil, hi), lo)
	return e.op("add", nil, e.op("mul", nil, x, c), e.op("mul", nil, rot, s))
}

func init() {
	register(&Pass{Name: "decompose-fused", Required: true, Run: runDecompose,
		Doc: "lower fused ops (rms_norm, swiglu, rope, attention) to standard ops for targets without kernels for them"})
}

// runDecompose replaces each fused node by its definition in basic ops.
// RMSNorm statistics and the attention softmax stay in the operand's
// dtype; a float16 legalisation keeps those in float32.
func runDecompose(g *ir.Graph, c *Context) error {
	lowered := 0
	ed := newEdits()
	for _, n := range g.Nodes {
		e := &emitter{g: g}
		var out *ir.Value
		switch n.Op {
		case "rms_norm":
			x, w := n.Inputs[0], n.Inputs[1]
			dt := x.Type.DType
			sq := e.op("mul", nil, x, x)
			ms := e.op("reduce_mean", ir.Attrs{"axes": []int64{-1}, "keepdims": int64(1)}, sq)
			r := e.op("rsqrt", nil, e.op("add", nil, ms, e.scalar(dt, n.Attrs.Float("eps", 1e-5))))
			out = e.op("mul", nil, e.op("mul", nil, x, r), w)
		case "swiglu":
			out = e.op("mul", nil, e.op("silu", nil, n.Inputs[0]), n.Inputs[1])
		case "rope":
			out = decomposeRoPE(e, n.Inputs[0], n.Inputs[1], n.Inputs[2])
		case "attention":
			q, k, v := n.Inputs[0], n.Inputs[1], n.Inputs[2]
			kt := e.op("transpose", ir.Attrs{"perm": []int64{0, 1, 3, 2}}, k)
			s := e.op("mul", nil, e.op("matmul", nil, q, kt), e.scalar(q.Type.DType, n.Attrs.Float("scale", 1)))
			if len(n.Inputs) == 4 {
				s = e.op("add", nil, s, n.Inputs[3])
			}
			out = e.op("matmul", nil, e.op("softmax", ir.Attrs{"axis": int64(-1)}, s), v)
		default:
			continue
		}
		ed.insert(n, e.nodes)
		ed.replace(n.Outputs[0], out)
		lowered++
	}
	ed.apply(g)
	c.count("decompose-fused.lowered", lowered)
	return runDCE(g, c)
}
