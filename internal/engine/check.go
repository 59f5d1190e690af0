package engine

import (
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"

	"github.com/mmadac/mmadac/frontend"
	"github.com/mmadac/mmadac/ir"
	"github.com/mmadac/mmadac/models/mmada"
	"github.com/mmadac/mmadac/runtime/interp"
)

// CheckEquivalence runs n random inputs (random lengths, some rows
// left-padded) through the interpreter on the unoptimised graph and on the
// optimised one, and fails when a logit differs by more than 1e-4 relative
// to the logits' range or the argmax of a position differs.
func CheckEquivalence(cfg *frontend.LLaDAConfig, ck *frontend.Checkpoint, optimised *ir.Graph, n int) error {
	base, err := mmada.Build(cfg, ck, mmada.Options{})
	if err != nil {
		return err
	}
	a, err := interp.New(base)
	if err != nil {
		return err
	}
	b, err := interp.New(optimised)
	if err != nil {
		return err
	}
	rng := rand.New(rand.NewPCG(uint64(n), 7))
	vocab := int64(cfg.Vocab())
	for trial := 0; trial < n; trial++ {
		batch, seq := int64(1+rng.IntN(2)), int64(1+rng.IntN(48))
		ids, mask := ir.NewTensor(ir.I64, batch, seq), ir.NewTensor(ir.I64, batch, seq)
		pad := int64(0)
		if trial%2 == 1 {
			pad = seq / 3
		}
		for i := range ids.I64() {
			ids.I64()[i] = rng.Int64N(vocab)
			if int64(i)%seq >= pad {
				mask.I64()[i] = 1
			}
		}
		in := map[string]*ir.Tensor{mmada.InputIDs: ids, mmada.AttentionMask: mask}
		oa, err := a.Run(in)
		if err != nil {
			return err
		}
		ob, err := b.Run(in)
		if err != nil {
			return err
		}
		la, lb := oa[mmada.Logits].F32(), ob[mmada.Logits].F32()
		worst, scale := 0.0, 1.0
		for _, v := range la {
			scale = math.Max(scale, math.Abs(float64(v)))
		}
		for i := range la {
			if mask.I64()[i/int(vocab)] == 0 {
				continue
			}
			worst = math.Max(worst, math.Abs(float64(la[i]-lb[i])))
		}
		if worst > 1e-4*scale {
			return fmt.Errorf("check %d (batch %d, seq %d): the optimised graph differs from the unoptimised one by %.3g", trial, batch, seq, worst)
		}
		for r := 0; r < len(la)/int(vocab); r++ {
			if mask.I64()[r] == 0 {
				continue
			}
			if argmax(la[r*int(vocab):(r+1)*int(vocab)]) != argmax(lb[r*int(vocab):(r+1)*int(vocab)]) {
				return fmt.Errorf("check %d: the argmax of position %d differs after the pipeline", trial, r)
			}
		}
		slog.Info("equivalence check passed", "trial", trial+1, "of", n, "max_abs_diff", worst)
	}
	return nil
}

func argmax(row []float32) int {
	best, bi := float32(math.Inf(-1)), 0
	for i, v := range row {
		if v > best {
			best, bi = v, i
		}
	}
	return bi
}
