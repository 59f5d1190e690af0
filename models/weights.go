// Package models holds what the model builders share; the transformer and
// the image tokenizer live in models/mmada and models/magvit.
package models

import (
	"fmt"
	"slices"

	"github.com/mmadac/mmadac/frontend"
	"github.com/mmadac/mmadac/ir"
)

// WeightStore resolves checkpoint tensor names to lazy weights;
// *frontend.Checkpoint implements it.
type WeightStore interface {
	Info(name string) (frontend.TensorInfo, bool)
	Source(name string) (ir.WeightSource, error)
}

// WeightSpec is the wording of a builder's weight errors.
type WeightSpec struct {
	// Origin is what fixes the expected shape, such as "the config".
	Origin string
	// Hint, when set, is appended to the errors as advice.
	Hint string
}

// DeclareWeight declares the stored tensor name as a parameter of g,
// checks that it exists with the expected shape and a floating-point
// dtype, and widens an f16 or bf16 tensor to f32 with a cast. Only the
// tensor's header is read.
func DeclareWeight(g *ir.Graph, ws WeightStore, name string, shape []int64, spec WeightSpec) (*ir.Value, error) {
	hint := ""
	if spec.Hint != "" {
		hint = "; " + spec.Hint
	}
	info, ok := ws.Info(name)
	if !ok {
		return nil, fmt.Errorf("checkpoint has no tensor %s (shape %v expected)%s", name, shape, hint)
	}
	if !slices.Equal(info.Shape, shape) {
		return nil, fmt.Errorf("tensor %s has shape %v, %s needs %v%s", name, info.Shape, spec.Origin, shape, hint)
	}
	switch info.DType {
	case ir.F32, ir.F16, ir.BF16:
	default:
		return nil, fmt.Errorf("tensor %s has dtype %v; want f32, f16 or bf16", name, info.DType)
	}
	src, err := ws.Source(name)
	if err != nil {
		return nil, fmt.Errorf("tensor %s: %w", name, err)
	}
	p := g.Param(name, info.DType, ir.Static(shape...), src)
	if info.DType != ir.F32 {
		return g.Op("cast", ir.Attrs{"to": ir.F32}, p), nil
	}
	return p, nil
}
