package passes

import "github.com/mmadac/mmadac/ir"

func init() {
	register(&Pass{Name: "fuse-attention", Run: runFuseAttention,
		Doc: "replace matmul(softmax(q k^T * scale + bias), v) with one attention op"})
}

// runFuseAttention matches, on rank-4 [batch, heads, seq, dim] operands,
//
//	%kt = transpose %k {perm=[0,1,3,2]}
//	%s  = mul (matmul %q, %kt), scale
//	%p  = softmax (add %s, %bias) {axis=-1}      (or softmax %s)
//	%o  = matmul %p, %v
//
// and rewrites the final matmul in place into attention %q, %k, %v[, %bias].
func runFuseAttention(g *ir.Graph, c *Context) error {
	fused := 0
	for _, n := range g.Nodes {
		if n.Op != "matmul" || n.Outputs[0].Type.Shape.Rank() != 4 {
			continue
		}
		sm := def(n.Inputs[0], "softmax")
		if sm == nil || (sm.Attrs.Int("axis", -1) != -1 && sm.Attrs.Int("axis", -1) != 3) {
			continue
		}
		v := n.Inputs[1]
		var bias *ir.Value
		scores := sm.Inputs[0]
		if add := def(scores, "add"); add != nil {
			scores, bias = add.Inputs[0], add.Inputs[1]
		}
		scaled := def(scores, "mul")
		if scaled == nil {
			continue
		}
		scale, ok := scalarConst(scaled.Inputs[1])
		if !ok {
			continue
		}
		qk := def(scaled.Inputs[0], "matmul")
		if qk == nil {
			continue
		}
		kt := def(qk.Inputs[1], "transpose")
		if kt == nil || !equalInts(kt.Attrs.Ints("perm"), []int64{0, 1, 3, 2}) {
			continue
		}
		q, k := qk.Inputs[0], kt.Inputs[0]
		if !q.Type.Shape.Equal(k.Type.Shape) || !q.Type.Shape.Equal(v.Type.Shape) {
			continue
		}
		n.Op = "attention"
		n.Inputs = []*ir.Value{q, k, v}
		if bias != nil {
			n.Inputs = append(n.Inputs, bias)
		}
		n.Attrs = ir.Attrs{"scale": scale}
		fused++
	}
	c.count("fuse-attention.fused", fused)
	return runDCE(g, c)
}
