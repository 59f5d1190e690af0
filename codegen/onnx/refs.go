package onnx

import (
	"fmt"
	"os"

	"google.golang.org/protobuf/proto"

	"github.com/mmadac/mmadac/codegen/onnx/onnxpb"
	"github.com/mmadac/mmadac/ir"
)

// WeightsReferenced points each parameter at bytes that already exist in
// files under a model folder (a checkpoint's safetensors, or a bundle's
// weights/), as Options.Refs lists them. Nothing is linked, copied or
// inlined. A parameter that Refs does not list, such as a tensor a pass
// derived or a file ONNX Runtime cannot reach, is stored inline.
const WeightsReferenced WeightMode = "referenced"

// Initializer is one weight of an ONNX model file as the file stores it:
// inline (Data) or in an external file (Ref, when External is set).
type Initializer struct {
	Name     string
	DType    ir.DType
	Dims     []int64
	External bool
	Ref      onnxpb.ExternalRef
	Data     []byte
}

// ReadInitializers returns the initializers of the ONNX model file at
// path, in file order. External data is located, not read. Inline data
// is returned as stored in raw_data, the only field mmadac writes.
func ReadInitializers(path string) ([]Initializer, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read ONNX model: %w", err)
	}
	var m onnxpb.ModelProto
	if err := proto.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("decode ONNX model %s: %w", path, err)
	}
	var out []Initializer
	for _, t := range m.GetGraph().GetInitializer() {
		ref, external, err := onnxpb.External(t)
		if err != nil {
			return nil, fmt.Errorf("%s: initializer %s: %w", path, t.GetName(), err)
		}
		in := Initializer{Name: t.GetName(), DType: onnxpb.ToDType(t.GetDataType()), Dims: t.GetDims(), External: external, Ref: ref, Data: t.GetRawData()}
		out = append(out, in)
	}
	return out, nil
}

// UnreferencedBytes returns how many bytes of g's parameters refs does not
// list: what WeightsReferenced would store inline.
func UnreferencedBytes(g *ir.Graph, refs map[string]onnxpb.ExternalRef) int64 {
	n := int64(0)
	for _, p := range g.Params {
		if _, ok := refs[p.Name]; !ok {
			n += p.Type.Shape.NumElements() * int64(p.Type.DType.Size())
		}
	}
	return n
}

// referenced fills t from e.opts.Refs, or inline when p is not listed. A
// listed reference whose length differs from the parameter's size means
// that the model folder was built from another checkpoint.
func (e *emitter) referenced(p *ir.Value, t *onnxpb.TensorProto) error {
	ref, ok := e.opts.Refs[p.Name]
	if !ok {
		raw, err := p.Source.Bytes()
		if err != nil {
			return fmt.Errorf("reading parameter %s: %w", p.Name, err)
		}
		t.RawData = raw
		return nil
	}
	size := p.Type.Shape.NumElements() * int64(p.Type.DType.Size())
	if ref.Length >= 0 && ref.Length != size {
		return fmt.Errorf("parameter %s has %d bytes, but the model in %s stores %d for it; it was built from another checkpoint, so build it again", p.Name, size, e.opts.Dir, ref.Length)
	}
	onnxpb.SetExternal(t, ref)
	return nil
}
