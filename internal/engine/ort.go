package engine

import (
	"fmt"

	"github.com/mmadac/mmadac/codegen/onnx"
	"github.com/mmadac/mmadac/ir"
	"github.com/mmadac/mmadac/runtime/ort"
)

// maxInlineBytes bounds models emitted in memory for ONNX Runtime; ONNX
// protobufs cannot exceed 2 GB.
const maxInlineBytes = 1 << 30

// openORT emits the graph as ONNX with inline weights and opens an ONNX
// Runtime session on it.
func openORT(g *ir.Graph) (Session, error) {
	if err := ort.Init(); err != nil {
		return nil, err
	}
	if b := paramBytes(g); b > maxInlineBytes {
		return nil, fmt.Errorf("graph %s has %d bytes of weights; build it with `mmadac build --weights external` and run the bundle", g.Name, b)
	}
	model, err := onnx.MarshalWith(g, onnx.Options{Weights: onnx.WeightsInline, MicrosoftDomain: true})
	if err != nil {
		return nil, err
	}
	return openORTBytes(g, model)
}

func openORTBytes(g *ir.Graph, model []byte) (Session, error) {
	ins := make([]string, len(g.Inputs))
	for i, v := range g.Inputs {
		ins[i] = v.Name
	}
	outs := make([]string, len(g.Outputs))
	for i, o := range g.Outputs {
		outs[i] = o.Name
	}
	return ort.NewSessionFromBytes(model, ins, outs, ort.DefaultOptions())
}

// openORTCheck reports whether the ONNX Runtime library can be loaded.
func openORTCheck() (Session, error) { return nil, ort.Init() }

func paramBytes(g *ir.Graph) int64 {
	n := int64(0)
	for _, p := range g.Params {
		n += p.Type.Shape.NumElements() * int64(p.Type.DType.Size())
	}
	return n
}

// openORTFile opens an ONNX Runtime session on a model file (whose
// external weights are resolved relative to its folder).
func openORTFile(g *ir.Graph, path string) (Session, error) {
	if err := ort.Init(); err != nil {
		return nil, err
	}
	ins := make([]string, len(g.Inputs))
	for i, v := range g.Inputs {
		ins[i] = v.Name
	}
	outs := make([]string, len(g.Outputs))
	for i, o := range g.Outputs {
		outs[i] = o.Name
	}
	return ort.NewSession(path, ins, outs, ort.DefaultOptions())
}
