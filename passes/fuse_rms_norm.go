package passes

import "github.com/mmadac/mmadac/ir"

func init() {
	register(&Pass{Name: "fuse-rms-norm", Run: runFuseRMSNorm,
		Doc: "replace x*rsqrt(mean(x*x)+eps)*w over the last axis with one rms_norm op"})
}

// runFuseRMSNorm matches
//
//	%sq = mul %x, %x
//	%ms = reduce_mean %sq {axes=[-1], keepdims=1}
//	%r  = rsqrt (add %ms, eps)
//	%y  = mul (mul %x, %r), %w
//
// and rewrites the final mul in place into rms_norm %x, %w {eps}.
func runFuseRMSNorm(g *ir.Graph, c *Context) error {
	fused := 0
	for _, n := range g.Nodes {
		if n.Op != "mul" || len(n.Inputs) != 2 {
			continue
		}
		inner, w := def(n.Inputs[0], "mul"), n.Inputs[1]
		if inner == nil || w.Type.Shape.Rank() != 1 {
			continue
		}
		x := inner.Inputs[0]
		xs := x.Type.Shape
		if xs.Rank() == 0 || w.Type.Shape[0] != xs[xs.Rank()-1] {
			continue // the weight must scale the normalised axis one to one
		}
		r := def(inner.Inputs[1], "rsqrt")
		if r == nil {
			continue
		}
		add := def(r.Inputs[0], "add")
		if add == nil {
			continue
		}
		eps, ok := scalarConst(add.Inputs[1])
		if !ok {
			continue
		}
		mean := def(add.Inputs[0], "reduce_mean")
		if mean == nil || !equalInts(mean.Attrs.Ints("axes"), []int64{-1}) || mean.Attrs.Int("keepdims", 1) != 1 {
			continue
		}
		sq := def(mean.Inputs[0], "mul")
		if sq == nil || sq.Inputs[0] != x || sq.Inputs[1] != x {
			continue
		}
		n.Op = "rms_norm"
		n.Inputs = []*ir.Value{x, w}
		n.Attrs = ir.Attrs{"eps": eps}
		fused++
	}
	c.count("fuse-rms-norm.fused", fused)
	return runDCE(g, c)
}
