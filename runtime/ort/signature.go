package ort

import (
	"fmt"
	"slices"
	"strings"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/mmadac/mmadac/codegen/onnx/onnxpb"
	"github.com/mmadac/mmadac/ir"
)

// Field numbers of the ONNX messages that readSignature walks without
// decoding the rest (in particular the initializers, which may be large).
const (
	modelGraphField  = 7  // ModelProto.graph
	graphInputField  = 11 // GraphProto.input
	graphOutputField = 12 // GraphProto.output
)

// valueSpec is a graph input or output as the model file declares it.
type valueSpec struct {
	name string
	// elemType is the TensorProto.DataType value.
	elemType int32
	// dtype is the ir type of elemType, or InvalidDType when ir has none.
	dtype ir.DType
	// dims is nil when the model declares no shape (unknown rank).
	dims []dimSpec
}

// dimSpec is one declared dimension: a fixed size, a named symbolic size
// (dim_param), or neither (unknown).
type dimSpec struct {
	size  int64 // -1 unless the size is fixed
	param string
}

func (d dimSpec) String() string {
	switch {
	case d.size >= 0:
		return fmt.Sprint(d.size)
	case d.param != "":
		return d.param
	}
	return "?"
}

// shapeString formats the declared shape, for messages: "[batch 4]".
func (v *valueSpec) shapeString() string {
	if v.dims == nil {
		return "[unknown rank]"
	}
	parts := make([]string, len(v.dims))
	for i, d := range v.dims {
		parts[i] = d.String()
	}
	return "[" + strings.Join(parts, " ") + "]"
}

// signature lists the declared graph inputs and outputs in file order.
type signature struct {
	inputs, outputs []*valueSpec
}

func findSpec(specs []*valueSpec, name string) *valueSpec {
	for _, s := range specs {
		if s.name == name {
			return s
		}
	}
	return nil
}

func specNames(specs []*valueSpec) []string {
	names := make([]string, len(specs))
	for i, s := range specs {
		names[i] = s.name
	}
	return names
}

// readSignature reads the graph inputs and outputs from a serialized
// ModelProto. It skips every other field on the wire, so a model with
// inline weights costs no decoding of the weights.
func readSignature(model []byte) (*signature, error) {
	sig := &signature{}
	graphs, err := collectField(model, modelGraphField)
	if err != nil {
		return nil, fmt.Errorf("read ModelProto: %w", err)
	}
	if len(graphs) == 0 {
		return nil, fmt.Errorf("read ModelProto: the model has no graph (field %d)", modelGraphField)
	}
	// A message field that appears more than once is merged, which for the
	// repeated input and output fields means concatenation.
	for _, g := range graphs {
		for _, f := range []struct {
			num  protowire.Number
			dst  *[]*valueSpec
			kind string
		}{{graphInputField, &sig.inputs, "input"}, {graphOutputField, &sig.outputs, "output"}} {
			records, err := collectField(g, f.num)
			if err != nil {
				return nil, fmt.Errorf("read GraphProto: %w", err)
			}
			for _, r := range records {
				var vi onnxpb.ValueInfoProto
				if err := proto.Unmarshal(r, &vi); err != nil {
					return nil, fmt.Errorf("read graph %s: %w", f.kind, err)
				}
				*f.dst = append(*f.dst, specFromValueInfo(&vi))
			}
		}
	}
	return sig, nil
}

// collectField returns the payloads of every length-delimited record with
// field number num at the top level of msg.
func collectField(msg []byte, num protowire.Number) ([][]byte, error) {
	var out [][]byte
	for len(msg) > 0 {
		n, typ, tagLen := protowire.ConsumeTag(msg)
		if tagLen < 0 {
			return nil, protowire.ParseError(tagLen)
		}
		msg = msg[tagLen:]
		if n == num && typ == protowire.BytesType {
			v, m := protowire.ConsumeBytes(msg)
			if m < 0 {
				return nil, protowire.ParseError(m)
			}
			out = append(out, v)
			msg = msg[m:]
			continue
		}
		m := protowire.ConsumeFieldValue(n, typ, msg)
		if m < 0 {
			return nil, protowire.ParseError(m)
		}
		msg = msg[m:]
	}
	return out, nil
}

func specFromValueInfo(vi *onnxpb.ValueInfoProto) *valueSpec {
	s := &valueSpec{name: vi.GetName(), elemType: -1}
	tt := vi.GetType().GetTensorType()
	if tt == nil {
		return s // not a tensor: dtype stays invalid
	}
	s.elemType = tt.GetElemType()
	s.dtype = dtypeOfElemType(s.elemType)
	if tt.Shape != nil {
		s.dims = make([]dimSpec, 0, len(tt.Shape.Dim))
		for _, d := range tt.Shape.Dim {
			ds := dimSpec{size: -1}
			switch v := d.Value.(type) {
			case *onnxpb.TensorShapeProto_Dimension_DimValue:
				ds.size = v.DimValue
			case *onnxpb.TensorShapeProto_Dimension_DimParam:
				ds.param = v.DimParam
			}
			s.dims = append(s.dims, ds)
		}
	}
	return s
}

// dtypeOfElemType maps a TensorProto.DataType value to the ir type that
// holds it, or InvalidDType.
func dtypeOfElemType(t int32) ir.DType { return onnxpb.ToDType(t) }

// elemTypeName names a TensorProto.DataType value for messages.
func elemTypeName(t int32) string {
	if t < 0 {
		return "a non-tensor type"
	}
	if name, ok := onnxpb.TensorProto_DataType_name[t]; ok {
		return "ONNX " + name
	}
	return fmt.Sprintf("ONNX element type %d", t)
}

// selectSpecs returns the specs for names in order. Every name must be
// declared by the model and have a type that ir.Tensor can hold.
func selectSpecs(kind string, names []string, declared []*valueSpec) ([]*valueSpec, error) {
	if len(names) == 0 {
		return nil, fmt.Errorf("no %s names given; the model's %ss are %q", kind, kind, specNames(declared))
	}
	out := make([]*valueSpec, len(names))
	for i, name := range names {
		if slices.Contains(names[:i], name) {
			return nil, fmt.Errorf("%s %q is listed twice", kind, name)
		}
		s := findSpec(declared, name)
		if s == nil {
			return nil, fmt.Errorf("%s %q is not a graph %s of the model; the model's %ss are %q",
				kind, name, kind, kind, specNames(declared))
		}
		if s.dtype == ir.InvalidDType {
			return nil, fmt.Errorf("%s %q has %s, which ir.Tensor cannot hold (supported: float, float16, bfloat16, double, int64, int32, bool)",
				kind, name, elemTypeName(s.elemType))
		}
		out[i] = s
	}
	return out, nil
}
