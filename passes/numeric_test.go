package passes

// Numeric checks shared by the golden driver and the model tests: run two
// graphs on the interpreter with the same random inputs and compare every
// output.

import (
	"fmt"
	"math/rand/v2"

	"github.com/mmadac/mmadac/ir"
	"github.com/mmadac/mmadac/runtime/interp"
)

// randomInputs draws one tensor per graph input from a fixed seed: floats
// uniform in [-1, 1), integers uniform in [0, intMax), bools fair coins.
// dims gives the sizes of symbolic dimensions.
func randomInputs(g *ir.Graph, dims map[string]int64, intMax int64, seed uint64) (map[string]*ir.Tensor, error) {
	rng := rand.New(rand.NewPCG(seed, 0))
	feeds := map[string]*ir.Tensor{}
	for _, in := range g.Inputs {
		shape, err := in.Type.Shape.Resolve(dims)
		if err != nil {
			return nil, fmt.Errorf("input %s: %w; set it with the dims flag", in.Name, err)
		}
		t := ir.NewTensor(in.Type.DType, shape...)
		switch d := t.Data.(type) {
		case []float32:
			for i := range d {
				d[i] = rng.Float32()*2 - 1
			}
		case []float64:
			for i := range d {
				d[i] = rng.Float64()*2 - 1
			}
		case []int64:
			for i := range d {
				d[i] = rng.Int64N(intMax)
			}
		case []int32:
			for i := range d {
				d[i] = int32(rng.Int64N(intMax))
			}
		case []bool:
			for i := range d {
				d[i] = rng.IntN(2) == 1
			}
		case []uint16:
			for i := range d {
				x := rng.Float32()*2 - 1
				if in.Type.DType == ir.BF16 {
					d[i] = ir.F32ToBF16(x)
				} else {
					d[i] = ir.F32ToF16(x)
				}
			}
		default:
			return nil, fmt.Errorf("input %s: no random generator for %v", in.Name, in.Type.DType)
		}
		feeds[in.Name] = t
	}
	return feeds, nil
}

// runGraph executes g once on the interpreter.
func runGraph(g *ir.Graph, feeds map[string]*ir.Tensor) (map[string]*ir.Tensor, error) {
	s, err := interp.New(g)
	if err != nil {
		return nil, fmt.Errorf("prepare %s: %w", g.Name, err)
	}
	out, err := s.Run(feeds)
	if err != nil {
		return nil, fmt.Errorf("run %s: %w", g.Name, err)
	}
	return out, nil
}

// compareGraphs runs before and after on the same random inputs and
// requires every output of before to exist in after with the same dtype
// and shape and values within tol.
func compareGraphs(before, after *ir.Graph, dims map[string]int64, intMax int64, tol float64) error {
	feeds, err := randomInputs(before, dims, intMax, 1)
	if err != nil {
		return err
	}
	want, err := runGraph(before, feeds)
	if err != nil {
		return fmt.Errorf("graph before the pass: %w", err)
	}
	got, err := runGraph(after, feeds)
	if err != nil {
		return fmt.Errorf("graph after the pass: %w", err)
	}
	return compareOutputs(want, got, tol)
}

// compareOutputs checks got against want, output by output.
func compareOutputs(want, got map[string]*ir.Tensor, tol float64) error {
	for _, name := range sortedKeys(want) {
		w, g := want[name], got[name]
		if g == nil {
			return fmt.Errorf("output %s is missing after the pass", name)
		}
		if w.DType != g.DType || !equalInts(w.Shape, g.Shape) {
			return fmt.Errorf("output %s is %v%v before and %v%v after", name, w.DType, w.Shape, g.DType, g.Shape)
		}
		if d := maxAbsDiff(w.AsF32(), g.AsF32()); d > tol {
			return fmt.Errorf("output %s: max abs difference %g exceeds %g", name, d, tol)
		}
	}
	return nil
}
