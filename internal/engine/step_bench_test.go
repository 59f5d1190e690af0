package engine

import (
	"context"
	"testing"

	"github.com/mmadac/mmadac/runtime/sampler"
)

// BenchmarkTextStepMidSize measures one step of text generation on the
// mid-size config (prompt 64, gen 256, block 32, one block of 32 steps per
// iteration group) with the unoptimised graph and full logits, the default
// pipeline with full logits, and the default pipeline with the folded
// sampling head. It reports ns per step and the bytes the backend returns
// to Go per step.
func BenchmarkTextStepMidSize(b *testing.B) {
	dir := b.TempDir()
	if err := WriteRandomCheckpoint(dir, MidSizeConfig(), 1); err != nil {
		b.Fatal(err)
	}
	prompt := make([]int64, 64)
	for i := range prompt {
		prompt[i] = int64(i * 131 % 30000)
	}
	for _, be := range []string{BackendORT, BackendInterp} {
		for _, pl := range pipelines {
			b.Run(be+"/"+pl.name, func(b *testing.B) {
				if be == BackendInterp && testing.Short() {
					b.Skip("interp is slow")
				}
				m, err := LoadTextModelWith(dir, be, pl.opts)
				if err != nil {
					b.Skip(err)
				}
				defer m.Close()
				m.SetHeadFolding(pl.head)
				p := sampler.TextParams{Steps: 8, GenLength: 256, BlockLength: 256, Remasking: "low_confidence", MaskID: 31000}
				steps := 0
				run := func() {
					_, err := sampler.GenerateText(context.Background(), m.Forward, sampler.TextRequest{
						Prompt: [][]int64{prompt}, Params: p, Noise: sampler.NewSeeded(1), Head: m.Head(),
						OnStep: func(sampler.StepEvent) { steps++ },
					})
					if err != nil {
						b.Fatal(err)
					}
				}
				p.Steps, p.GenLength, p.BlockLength = 1, 32, 32
				run() // builds the variant sessions
				p.Steps, p.GenLength, p.BlockLength = 8, 256, 32
				steps = 0
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					run()
				}
				b.StopTimer()
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(steps), "ns/step")
				b.ReportMetric(float64(m.LastStepBytes()), "bytes/step")
			})
		}
	}
}
