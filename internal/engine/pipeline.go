package engine

import (
	"github.com/mmadac/mmadac/frontend"
	"github.com/mmadac/mmadac/ir"
	"github.com/mmadac/mmadac/passes"
	"github.com/mmadac/mmadac/runtime/interp"
)

// PassOptions are the pass-manager settings of a build; the zero value
// runs the onnx target's default pipeline.
type PassOptions = passes.Options

// optimize runs the pass pipeline on a transformer graph.
func optimize(g *ir.Graph, cfg *frontend.LLaDAConfig, o PassOptions) ([]passes.PassTiming, error) {
	return optimizeWith(g, cfg, o, nil)
}

// optimizeWith runs the pipeline with fold-sampling-head set to a variant.
func optimizeWith(g *ir.Graph, cfg *frontend.LLaDAConfig, o PassOptions, head *passes.HeadSpec) ([]passes.PassTiming, error) {
	ctx := &passes.Context{Eval: interp.EvalNode, MaxSeqLen: max(int64(cfg.MaxSequenceLength), passes.DefaultMaxSeqLen), Head: head}
	return passes.Run(g, ctx, o)
}
