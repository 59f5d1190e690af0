package bench

import (
	"fmt"

	"github.com/mmadac/mmadac/frontend"
	"github.com/mmadac/mmadac/ir"
	"github.com/mmadac/mmadac/models"
	"github.com/mmadac/mmadac/models/mmada"
	"github.com/mmadac/mmadac/passes"
	"github.com/mmadac/mmadac/runtime/interp"
)

// GraphFLOPs returns a FLOPCounter that counts g with passes.Stats, with
// the symbolic sizes bound: batch and seq to the step's rows and sequence
// length, npos (the positions of a folded head) to npos, and rows (the
// conditional rows of a guided head) to half the rows.
func GraphFLOPs(g *ir.Graph) FLOPCounter {
	return func(rows, seq, npos int64) int64 {
		bind := map[string]int64{"batch": rows, "seq": seq, "npos": npos, "rows": max(1, rows/2)}
		return passes.Stats(g, bind).FLOPs
	}
}

// StepGraph builds the graph that one step of a text scenario runs, for
// counting its FLOPs. It is the transformer over the weights ws (a
// checkpoint's or a bundle's) after the pipeline po, with the sampling head
// folded in the given mode: greedy, logits or probs, or "" for the full
// logits. Like internal/engine, it reads the tensor headers alone.
//
// NOTE: this repeats engine's pipeline set-up (the interpreter's kernel for
// fold-constants and a RoPE table of max(max_sequence_length, 4096)). The
// FLOP count depends only on the shapes, which those settings do not change.
func StepGraph(cfg *frontend.LLaDAConfig, ws models.WeightStore, po passes.Options, headMode string, guided bool) (*ir.Graph, error) {
	g, err := mmada.Build(cfg, ws, mmada.Options{})
	if err != nil {
		return nil, err
	}
	ctx := &passes.Context{Eval: interp.EvalNode, MaxSeqLen: max(int64(cfg.MaxSequenceLength), passes.DefaultMaxSeqLen)}
	if headMode != "" {
		ctx.Head = &passes.HeadSpec{Mode: headMode, CFG: guided}
		if headMode == passes.HeadProbs {
			// The t2i head covers the codebook columns only.
			ctx.Head.ColStart = cfg.ImageTokenOffset()
			ctx.Head.ColEnd = cfg.ImageTokenOffset() + int64(cfg.CodebookSize)
		}
	}
	if _, err := passes.Run(g, ctx, po); err != nil {
		return nil, fmt.Errorf("building the step graph for FLOP counting: %w", err)
	}
	return g, nil
}
