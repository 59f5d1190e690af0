package passes

import (
	"fmt"

	"github.com/mmadac/mmadac/ir"
)

func init() {
	register(&Pass{Name: "fold-constants", Run: runFoldConstants,
		Doc: "evaluate nodes whose operands are all constants, up to a size limit; weights are never folded"})
}

// DefaultFoldLimit is the largest constant fold-constants creates: enough
// for RoPE tables and masks, far below any weight of a real model.
const DefaultFoldLimit = 16 << 20

func runFoldConstants(g *ir.Graph, c *Context) error {
	if c.Eval == nil {
		return nil
	}
	limit := c.FoldLimit
	if limit == 0 {
		limit = DefaultFoldLimit
	}
	folded := 0
	for _, n := range g.Nodes {
		if len(n.Inputs) == 0 || len(n.Outputs) != 1 {
			continue
		}
		allConst := true
		for _, in := range n.Inputs {
			if in.Kind != ir.KindConst || in.Const == nil {
				allConst = false
				break
			}
			if _, opaque := in.Const.Data.(ir.OpaqueData); opaque {
				allConst = false
				break
			}
		}
		out := n.Outputs[0]
		size := out.Type.Shape.NumElements() * int64(out.Type.DType.Size())
		if !allConst || size < 0 || size > limit {
			continue
		}
		args := make([]*ir.Tensor, len(n.Inputs))
		for i, in := range n.Inputs {
			args[i] = in.Const
		}
		res, err := c.Eval(n, args)
		if err != nil {
			return fmt.Errorf("folding %s: %w", n.Op, err)
		}
		cv := g.Constant(res[0])
		replaceUses(g, out, cv)
		folded++
	}
	c.count("fold-constants.folded", folded)
	return runDCE(g, c)
}
