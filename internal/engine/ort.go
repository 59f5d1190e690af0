package engine

import (
	"fmt"
	"log/slog"

	"github.com/mmadac/mmadac/codegen/onnx"
	"github.com/mmadac/mmadac/codegen/onnx/onnxpb"
	"github.com/mmadac/mmadac/ir"
	"github.com/mmadac/mmadac/runtime/ort"
)

// maxInlineBytes bounds the weights emitted inline into an in-memory
// model for ONNX Runtime; ONNX protobufs cannot exceed 2 GB. A variable so
// that tests can make the small golden model count as large.
var maxInlineBytes int64 = 1 << 30

// ortUsable reports why ONNX Runtime cannot run g with inline weights:
// its library does not load, or the weights exceed what one protobuf
// holds.
func ortUsable(g *ir.Graph) error {
	if err := ort.Init(); err != nil {
		return err
	}
	if b := paramBytes(g); b > maxInlineBytes {
		return fmt.Errorf("graph %s has %d bytes of weights; build it with `mmadac build --weights external` and run the bundle", g.Name, b)
	}
	return nil
}

// openORT emits the graph as ONNX with inline weights and opens an ONNX
// Runtime session on it.
func openORT(g *ir.Graph) (Session, error) {
	if err := ortUsable(g); err != nil {
		return nil, err
	}
	model, err := onnx.MarshalWith(g, onnx.Options{Weights: onnx.WeightsInline, MicrosoftDomain: true})
	if err != nil {
		return nil, err
	}
	return openORTBytes(g, model, ort.DefaultOptions())
}

// bundleWeights locates the weights of an onnx bundle: its folder, and
// where each parameter's bytes lie under it, as the bundle's ONNX file
// records them. Further graphs of the model (the folded head variants, the
// block-cache graph) point at those bytes, so they open at any model size
// and never copy the weights into a protobuf.
type bundleWeights struct {
	dir  string
	refs map[string]onnxpb.ExternalRef
}

// openORTReferenced opens g with its weights read from the bundle. Only
// parameters the bundle does not hold travel inline.
func openORTReferenced(g *ir.Graph, w *bundleWeights) (Session, error) {
	if err := ort.Init(); err != nil {
		return nil, err
	}
	if b := onnx.UnreferencedBytes(g, w.refs); b > maxInlineBytes {
		return nil, fmt.Errorf("graph %s needs %d bytes of weights that bundle %s does not hold; build the bundle again with this version of mmadac", g.Name, b, w.dir)
	}
	model, err := onnx.MarshalWith(g, onnx.Options{Weights: onnx.WeightsReferenced, Dir: w.dir, Refs: w.refs, MicrosoftDomain: true})
	if err != nil {
		return nil, err
	}
	opts := ort.DefaultOptions()
	opts.ExternalDataDir = w.dir
	return openORTBytes(g, model, opts)
}

// float32Bytes returns the size of g's weights as float32, the type the
// ONNX Runtime graph computes in: a bfloat16 checkpoint's weights are cast,
// and ONNX Runtime folds the casts into float32 copies.
func float32Bytes(g *ir.Graph) int64 {
	n := int64(0)
	for _, p := range g.Params {
		n += p.Type.Shape.NumElements() * 4
	}
	return n
}

// availableMemory is ort.AvailableMemory, replaced in tests.
var availableMemory = ort.AvailableMemory

// warnMemory logs a warning when a session for g would hold more weight
// bytes than the memory the system reports left. The kernel ends such a
// run without a message, so this line is the only explanation a user gets.
func warnMemory(g *ir.Graph) {
	need := float32Bytes(g)
	avail, ok := availableMemory()
	if !ok || need <= avail {
		return
	}
	slog.Warn("the weights of this session may not fit in memory; the system may kill the process without a message",
		"graph", g.Name, "float32_weights_gb", fmt.Sprintf("%.1f", float64(need)/1e9), "available_gb", fmt.Sprintf("%.1f", float64(avail)/1e9))
}

func openORTBytes(g *ir.Graph, model []byte, opts ort.Options) (Session, error) {
	warnMemory(g)
	ins := make([]string, len(g.Inputs))
	for i, v := range g.Inputs {
		ins[i] = v.Name
	}
	outs := make([]string, len(g.Outputs))
	for i, o := range g.Outputs {
		outs[i] = o.Name
	}
	return ort.NewSessionFromBytes(model, ins, outs, opts)
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
	warnMemory(g)
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
