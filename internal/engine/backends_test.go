package engine

import (
	"math"
	"math/rand/v2"
	"path/filepath"
	"testing"

	"github.com/mmadac/mmadac/ir"
)

// TestInterpAndORTAgree runs the emitted graph on both backends for random
// inputs, with and without padding, and compares the logits.
func TestInterpAndORTAgree(t *testing.T) {
	if _, err := openORTCheck(); err != nil {
		if backends(t); true {
			t.Skip("ONNX Runtime is not available")
		}
	}
	a, err := LoadTextModel(filepath.Join(goldenDir, "mmada"), BackendInterp)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := LoadTextModel(filepath.Join(goldenDir, "mmada"), BackendORT)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	rng := rand.New(rand.NewPCG(1, 2))
	for trial := 0; trial < 6; trial++ {
		batch, seq := int64(1+rng.IntN(3)), int64(1+rng.IntN(40))
		ids := ir.NewTensor(ir.I64, batch, seq)
		mask := ir.NewTensor(ir.I64, batch, seq)
		for i := range ids.I64() {
			ids.I64()[i] = rng.Int64N(320)
			mask.I64()[i] = 1
		}
		if trial%2 == 1 { // left padding on row 0
			for i := int64(0); i < seq/3; i++ {
				mask.I64()[i] = 0
			}
		}
		la, err := a.Forward(ids, mask)
		if err != nil {
			t.Fatal(err)
		}
		lb, err := b.Forward(ids, mask)
		if err != nil {
			t.Fatal(err)
		}
		worst := 0.0
		vocab := int(la.Shape[2])
		for i, v := range la.F32() {
			if mask.I64()[i/vocab] == 0 {
				continue
			}
			worst = math.Max(worst, math.Abs(float64(v-lb.F32()[i])))
		}
		if worst > 1e-4 {
			t.Errorf("trial %d (batch %d, seq %d): interp and ort differ by %.3g", trial, batch, seq, worst)
		}
	}
}

// BenchmarkForwardMidSize measures one transformer forward (one sampler
// step) of the mid-size config at sequence 256, on each backend.
func BenchmarkForwardMidSize(b *testing.B) {
	dir := b.TempDir()
	if err := WriteRandomCheckpoint(dir, MidSizeConfig(), 1); err != nil {
		b.Fatal(err)
	}
	ids := ir.NewTensor(ir.I64, 1, 256)
	mask := ir.NewTensor(ir.I64, 1, 256)
	for i := range ids.I64() {
		ids.I64()[i] = int64(i * 97 % 30000)
		mask.I64()[i] = 1
	}
	for _, be := range []string{BackendORT, BackendInterp} {
		b.Run(be, func(b *testing.B) {
			m, err := LoadTextModel(dir, be)
			if err != nil {
				b.Skip(err)
			}
			defer m.Close()
			if _, err := m.Forward(ids, mask); err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := m.Forward(ids, mask); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
