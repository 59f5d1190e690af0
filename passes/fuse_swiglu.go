package passes

import "github.com/mmadac/mmadac/ir"

func init() {
	register(&Pass{Name: "fuse-swiglu", Run: runFuseSwiGLU,
		Doc: "replace silu(gate)*up with one swiglu op"})
}

// runFuseSwiGLU rewrites `mul (silu %gate), %up` in place into
// `swiglu %gate, %up`.
func runFuseSwiGLU(g *ir.Graph, c *Context) error {
	fused := 0
	for _, n := range g.Nodes {
		if n.Op != "mul" || len(n.Inputs) != 2 {
			continue
		}
		s := def(n.Inputs[0], "silu")
		if s == nil || !s.Inputs[0].Type.Equal(n.Inputs[1].Type) {
			continue
		}
		n.Op = "swiglu"
		n.Inputs = []*ir.Value{s.Inputs[0], n.Inputs[1]}
		n.Attrs = ir.Attrs{}
		fused++
	}
	c.count("fuse-swiglu.fused", fused)
	return runDCE(g, c)
}
