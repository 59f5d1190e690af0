package passes

import (
	"fmt"

	"github.com/mmadac/mmadac/ir"
)

func init() {
	register(&Pass{Name: "fold-sampling-head", Run: runFoldHead,
		Doc: "move the sampler's per-step work after the logits into the graph (only when building the samplers' graph variants)"})
}

// Head modes of fold-sampling-head.
const (
	// HeadGreedy returns the argmax token and its float64 softmax
	// probability per selected position: outputs tokens and confidence.
	HeadGreedy = "greedy"
	// HeadLogits returns the logits of the selected positions (the host
	// needs them to add recorded Gumbel noise): output logits.
	HeadLogits = "logits"
	// HeadProbs returns the softmax over the selected columns (the host
	// draws the categorical sample from it): output probs.
	HeadProbs = "probs"
)

// Names of the inputs the folded head adds.
const (
	InputPositions  = "positions"   // i64 [npos]: sequence positions whose head is computed
	InputCondRows   = "cond_rows"   // i64 [rows]: batch rows of the conditional branch
	InputUncondRows = "uncond_rows" // i64 [rows]: batch rows of the unconditional branch
	InputCFGFactor  = "cfg_factor"  // f32 []: text guidance, un + factor*(cond-un), factor = scale+1
	InputCFGCond    = "cfg_cond"    // f32 []: t2i guidance weight of cond, 1+g
	InputCFGUncond  = "cfg_uncond"  // f32 []: t2i guidance weight of uncond, g
)

// HeadSpec selects the graph variant fold-sampling-head produces.
type HeadSpec struct {
	Mode string
	// CFG adds classifier-free guidance: text form when Mode is greedy or
	// logits, MaskGIT form ((1+g)·cond − g·uncond) when Mode is probs.
	CFG bool
	// ColStart and ColEnd restrict the head to vocabulary columns
	// [ColStart, ColEnd); both 0 keep the whole vocabulary.
	ColStart, ColEnd int64
}

// runFoldHead rewrites the graph output "logits" = matmul(%h, %wt), with
// %h the normalised hidden state [batch, seq, d], into the variant chosen
// by c.Head. The head matmul then covers only the positions listed in the
// positions input, and only the selected columns.
func runFoldHead(g *ir.Graph, c *Context) error {
	spec := c.Head
	if spec == nil || g.Meta["head"] != "" {
		return nil // nothing asked, or already folded
	}
	out := g.OutputValue("logits")
	mm := def(out, "matmul")
	if mm == nil || out.Type.Shape.Rank() != 3 {
		return fmt.Errorf("graph %s has no logits = matmul(hidden, head) output to fold", g.Name)
	}
	h, wt := mm.Inputs[0], mm.Inputs[1]
	e := &emitter{g: g}
	pos := g.Input(InputPositions, ir.I64, ir.Shape{ir.S("npos")})
	hsel := e.op("gather", ir.Attrs{"axis": int64(1)}, h, pos)
	if spec.ColEnd > spec.ColStart {
		wt = e.op("slice", ir.Attrs{"starts": []int64{spec.ColStart}, "ends": []int64{spec.ColEnd}, "axes": []int64{1}}, wt)
	}
	logits := e.op("matmul", nil, hsel, wt)
	if spec.CFG {
		cr := g.Input(InputCondRows, ir.I64, ir.Shape{ir.S("rows")})
		ur := g.Input(InputUncondRows, ir.I64, ir.Shape{ir.S("rows")})
		cond := e.op("gather", ir.Attrs{"axis": int64(0)}, logits, cr)
		un := e.op("gather", ir.Attrs{"axis": int64(0)}, logits, ur)
		if spec.Mode == HeadProbs {
			a := g.Input(InputCFGCond, ir.F32, ir.Shape{})
			b := g.Input(InputCFGUncond, ir.F32, ir.Shape{})
			logits = e.op("sub", nil, e.op("mul", nil, cond, a), e.op("mul", nil, un, b))
		} else {
			f := g.Input(InputCFGFactor, ir.F32, ir.Shape{})
			logits = e.op("add", nil, un, e.op("mul", nil, f, e.op("sub", nil, cond, un)))
		}
	}
	var outputs []ir.Output
	switch spec.Mode {
	case HeadGreedy:
		tokens := e.op("argmax", ir.Attrs{"axis": int64(-1), "keepdims": int64(0)}, logits)
		l64 := e.op("cast", ir.Attrs{"to": ir.F64}, logits)
		m := e.op("reduce_max", ir.Attrs{"axes": []int64{-1}, "keepdims": int64(1)}, l64)
		s := e.op("reduce_sum", ir.Attrs{"axes": []int64{-1}, "keepdims": int64(0)}, e.op("exp", nil, e.op("sub", nil, l64, m)))
		// The chosen token is the maximum, so its probability is
		// exp(max-max)/sum = 1/sum.
		conf := e.op("reciprocal", nil, s)
		outputs = []ir.Output{{Name: "tokens", Value: tokens}, {Name: "confidence", Value: conf}}
	case HeadLogits:
		outputs = []ir.Output{{Name: "logits", Value: logits}}
	case HeadProbs:
		outputs = []ir.Output{{Name: "probs", Value: e.op("softmax", ir.Attrs{"axis": int64(-1)}, logits)}}
	default:
		return fmt.Errorf("unknown head mode %q; use greedy, logits or probs", spec.Mode)
	}
	g.Nodes = append(g.Nodes, e.nodes...)
	// Other outputs (the block cache's keys and values) stay.
	for _, o := range g.Outputs {
		if o.Name != "logits" {
			outputs = append(outputs, o)
		}
	}
	g.Outputs = outputs
	if g.Meta == nil {
		g.Meta = map[string]string{}
	}
	g.Meta["head"] = spec.Mode
	if spec.CFG {
		g.Meta["head_cfg"] = "true"
	}
	c.count("fold-sampling-head.folded", 1)
	return runDCE(g, c)
}
