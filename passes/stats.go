package passes

import (
	"github.com/mmadac/mmadac/ir"
)

// GraphStats summarises a graph for `mmadac ir --stats`.
type GraphStats struct {
	Name string `json:"name"`
	// Ops counts nodes per op.
	Ops map[string]int `json:"ops"`
	// ParameterBytes is the size of the weights the graph reads.
	ParameterBytes int64 `json:"parameter_bytes"`
	// FLOPs counts floating-point operations of one run at the given
	// symbolic sizes: 2 per multiply-add of matrix products and
	// convolutions, one per element for element-wise work.
	FLOPs int64 `json:"flops"`
}

// Stats computes the op histogram, parameter bytes and FLOPs; bind gives
// sizes to symbolic dimensions (missing symbols count as 1).
func Stats(g *ir.Graph, bind map[string]int64) GraphStats {
	s := GraphStats{Name: g.Name, Ops: map[string]int{}}
	for _, p := range g.Params {
		s.ParameterBytes += p.Type.Shape.NumElements() * int64(p.Type.DType.Size())
	}
	size := func(sh ir.Shape) []int64 {
		out := make([]int64, len(sh))
		for i, d := range sh {
			switch {
			case d.IsStatic():
				out[i] = d.Size
			case bind[d.Sym] > 0:
				out[i] = bind[d.Sym]
			default:
				out[i] = 1
			}
		}
		return out
	}
	for _, n := range g.Nodes {
		s.Ops[n.Op]++
		out := size(n.Outputs[0].Type.Shape)
		numel := ir.NumElements(out)
		switch n.Op {
		case "matmul":
			a := size(n.Inputs[0].Type.Shape)
			s.FLOPs += 2 * numel * a[len(a)-1]
		case "conv2d":
			w := size(n.Inputs[1].Type.Shape)
			s.FLOPs += 2 * numel * w[1] * w[2] * w[3]
		case "attention":
			q := size(n.Inputs[0].Type.Shape)
			keys := size(n.Inputs[1].Type.Shape)[2]
			// Two products of [rows, dim] by [dim, seq] and [rows, seq] by
			// [seq, dim] per batch and head, plus the softmax.
			s.FLOPs += 4*q[0]*q[1]*q[2]*keys*q[3] + 5*q[0]*q[1]*q[2]*keys
		case "softmax":
			s.FLOPs += 5 * numel
		case "rms_norm":
			s.FLOPs += 4 * numel
		case "swiglu":
			s.FLOPs += 6 * numel
		case "rope":
			s.FLOPs += 3 * numel
		case "group_norm":
			s.FLOPs += 7 * numel
		case "reshape", "transpose", "unsqueeze", "squeeze", "slice", "gather", "concat", "cast", "arange", "pad", "resize_nearest":
		default:
			s.FLOPs += numel
		}
	}
	return s
}
