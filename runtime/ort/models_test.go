package ort

import (
	"math"
	"os"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/mmadac/mmadac/codegen/onnx/onnxpb"
)

// Builders for the small ONNX models the tests run.

const (
	f32  = onnxpb.TensorProto_FLOAT
	f16  = onnxpb.TensorProto_FLOAT16
	bf16 = onnxpb.TensorProto_BFLOAT16
	f64  = onnxpb.TensorProto_DOUBLE
	i64  = onnxpb.TensorProto_INT64
	i32  = onnxpb.TensorProto_INT32
	boo  = onnxpb.TensorProto_BOOL
	u8   = onnxpb.TensorProto_UINT8
)

// requireORT fails the test on CI and skips it elsewhere when ONNX Runtime
// cannot be loaded.
func requireORT(t *testing.T) {
	t.Helper()
	if err := Init(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("ONNX Runtime is required on CI: %v", err)
		}
		t.Skipf("skipping: %v", err)
	}
}

// tensorValue declares a tensor value. Each of dims is an int (a fixed
// size) or a string (a symbolic dimension); no dims declares a scalar.
func tensorValue(name string, elem onnxpb.TensorProto_DataType, dims ...any) *onnxpb.ValueInfoProto {
	shape := &onnxpb.TensorShapeProto{}
	for _, d := range dims {
		switch d := d.(type) {
		case int:
			shape.Dim = append(shape.Dim, &onnxpb.TensorShapeProto_Dimension{
				Value: &onnxpb.TensorShapeProto_Dimension_DimValue{DimValue: int64(d)}})
		case string:
			shape.Dim = append(shape.Dim, &onnxpb.TensorShapeProto_Dimension{
				Value: &onnxpb.TensorShapeProto_Dimension_DimParam{DimParam: d}})
		}
	}
	return &onnxpb.ValueInfoProto{
		Name: proto.String(name),
		Type: &onnxpb.TypeProto{Value: &onnxpb.TypeProto_TensorType{TensorType: &onnxpb.TypeProto_Tensor{
			ElemType: proto.Int32(int32(elem)),
			Shape:    shape,
		}}},
	}
}

func node(op string, inputs, outputs []string, attrs ...*onnxpb.AttributeProto) *onnxpb.NodeProto {
	return &onnxpb.NodeProto{OpType: proto.String(op), Input: inputs, Output: outputs, Attribute: attrs}
}

func intAttr(name string, v int64) *onnxpb.AttributeProto {
	return &onnxpb.AttributeProto{Name: proto.String(name), Type: onnxpb.AttributeProto_INT.Enum(), I: proto.Int64(v)}
}

// floatInitializer returns a float constant stored in raw_data.
func floatInitializer(name string, dims []int64, values []float32) *onnxpb.TensorProto {
	raw := make([]byte, 0, 4*len(values))
	for _, v := range values {
		bits := math.Float32bits(v)
		raw = append(raw, byte(bits), byte(bits>>8), byte(bits>>16), byte(bits>>24))
	}
	return &onnxpb.TensorProto{
		Name:     proto.String(name),
		Dims:     dims,
		DataType: proto.Int32(int32(f32)),
		RawData:  raw,
	}
}

// graphModel wraps one graph in a ModelProto (IR version 8, opset 17) and
// marshals it.
func graphModel(t *testing.T, nodes []*onnxpb.NodeProto, inputs, outputs []*onnxpb.ValueInfoProto, inits ...*onnxpb.TensorProto) []byte {
	t.Helper()
	m := &onnxpb.ModelProto{
		IrVersion:    proto.Int64(8),
		ProducerName: proto.String("mmadac-ort-test"),
		OpsetImport:  []*onnxpb.OperatorSetIdProto{{Domain: proto.String(""), Version: proto.Int64(17)}},
		Graph: &onnxpb.GraphProto{
			Name:        proto.String("test"),
			Node:        nodes,
			Input:       inputs,
			Output:      outputs,
			Initializer: inits,
		},
	}
	data, err := proto.Marshal(m)
	if err != nil {
		t.Fatalf("marshal test model: %v", err)
	}
	return data
}

// binaryModel returns sum = op(a, b) with all three of shape [n, 3].
func binaryModel(t *testing.T, op string, elem onnxpb.TensorProto_DataType) []byte {
	return graphModel(t,
		[]*onnxpb.NodeProto{node(op, []string{"a", "b"}, []string{"sum"})},
		[]*onnxpb.ValueInfoProto{tensorValue("a", elem, "n", 3), tensorValue("b", elem, "n", 3)},
		[]*onnxpb.ValueInfoProto{tensorValue("sum", elem, "n", 3)})
}

// unaryModel returns y = op(x) with x of type in and y of type out, both of
// shape dims.
func unaryModel(t *testing.T, op string, in, out onnxpb.TensorProto_DataType, dims []any, attrs ...*onnxpb.AttributeProto) []byte {
	return graphModel(t,
		[]*onnxpb.NodeProto{node(op, []string{"x"}, []string{"y"}, attrs...)},
		[]*onnxpb.ValueInfoProto{tensorValue("x", in, dims...)},
		[]*onnxpb.ValueInfoProto{tensorValue("y", out, dims...)})
}

func newTestSession(t *testing.T, model []byte, inputs, outputs []string) *Session {
	t.Helper()
	s, err := NewSessionFromBytes(model, inputs, outputs, Options{IntraOpThreads: 1, GraphOptimization: true})
	if err != nil {
		t.Fatalf("NewSessionFromBytes: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}
