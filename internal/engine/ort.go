package engine

import (
	"fmt"
	"log/slog"
	"path/filepath"

	"github.com/mmadac/mmadac/codegen/onnx"
	"github.com/mmadac/mmadac/codegen/onnx/onnxpb"
	"github.com/mmadac/mmadac/ir"
	"github.com/mmadac/mmadac/runtime/ort"
)

// maxInlineBytes bounds the weights emitted inline into an in-memory
// model for ONNX Runtime, because ONNX protobufs cannot exceed 2 GB. Tests
// lower it to make the small golden model count as large.
var maxInlineBytes int64 = 1 << 30

// ortUsable reports why ONNX Runtime cannot run g with the weights under
// dir read in place (see weightRefs) and the rest inline. It fails when the
// library does not load or the inline part is too large. An empty dir puts
// every weight inline.
func ortUsable(g *ir.Graph, dir string) error {
	if err := ort.Init(); err != nil {
		return err
	}
	return checkInline(g, dir, weightRefs(g, dir))
}

// checkInline reports when the weights of g that refs does not locate are
// too large to go inline into an in-memory model.
func checkInline(g *ir.Graph, dir string, refs map[string]onnxpb.ExternalRef) error {
	b := onnx.UnreferencedBytes(g, refs)
	if b <= maxInlineBytes {
		return nil
	}
	if dir == "" {
		return fmt.Errorf("graph %s has %d bytes of weights, over the 1 GB limit of an in-memory ONNX model; load it from a checkpoint folder or a bundle", g.Name, b)
	}
	return fmt.Errorf("graph %s has %d bytes of weights that ONNX Runtime cannot read in place, over the 1 GB limit of an in-memory ONNX model: their files are symbolic links that leave %s (as in a Hugging Face cache), and ONNX Runtime reads only files inside the folder; copy the checkpoint into a plain folder, or build a bundle with `mmadac build --weights external`", g.Name, b, dir)
}

// openORT emits the graph as ONNX with inline weights and opens an ONNX
// Runtime session on it.
func openORT(g *ir.Graph) (Session, error) {
	return openORTAt(g, "")
}

// weightRefs locates g's weights that ONNX Runtime can read in place from
// the files under dir: each parameter whose source is a byte range of a
// file inside dir, symbolic links resolved, by its location relative to
// dir. ONNX Runtime 1.30 refuses external data that resolves outside the
// model's folder, so weights elsewhere are left out and go inline.
func weightRefs(g *ir.Graph, dir string) map[string]onnxpb.ExternalRef {
	refs := map[string]onnxpb.ExternalRef{}
	if dir == "" {
		return refs
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		return refs
	}
	realDir, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return refs
	}
	for _, p := range g.Params {
		if p.Source == nil {
			continue
		}
		file, offset, size := p.Source.Location()
		if file == "" {
			continue
		}
		file, err := filepath.Abs(file)
		if err != nil {
			continue
		}
		rel, err := filepath.Rel(dir, file)
		if err != nil || !filepath.IsLocal(rel) {
			continue
		}
		realFile, err := filepath.EvalSymlinks(file)
		if err != nil {
			continue
		}
		if realRel, err := filepath.Rel(realDir, realFile); err != nil || !filepath.IsLocal(realRel) {
			continue
		}
		refs[p.Name] = onnxpb.ExternalRef{Location: filepath.ToSlash(rel), Offset: offset, Length: size}
	}
	return refs
}

// openORTAt opens g with the weights weightRefs finds under dir read in
// place, so that they are never copied into a protobuf, and the others
// inline.
func openORTAt(g *ir.Graph, dir string) (Session, error) {
	if err := ort.Init(); err != nil {
		return nil, err
	}
	refs := weightRefs(g, dir)
	if err := checkInline(g, dir, refs); err != nil {
		return nil, err
	}
	if dir == "" {
		model, err := onnx.MarshalWith(g, onnx.Options{Weights: onnx.WeightsInline, MicrosoftDomain: true})
		if err != nil {
			return nil, err
		}
		return openORTBytes(g, model, ort.DefaultOptions())
	}
	model, err := onnx.MarshalWith(g, onnx.Options{Weights: onnx.WeightsReferenced, Dir: dir, Refs: refs, MicrosoftDomain: true})
	if err != nil {
		return nil, err
	}
	opts := ort.DefaultOptions()
	opts.ExternalDataDir = dir
	return openORTBytes(g, model, opts)
}

// float32Bytes returns the size of g's weights as float32, the type the
// ONNX Runtime graph computes in. A bfloat16 checkpoint's weights are cast,
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
