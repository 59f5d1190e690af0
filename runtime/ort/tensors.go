package ort

import (
	"fmt"
	"unsafe"

	ortgo "github.com/yalue/onnxruntime_go"

	"github.com/mmadac/mmadac/ir"
)

// checkTensor reports whether t is well formed: a known dtype, non-negative
// dimensions, and a Data slice of the dtype's Go type with exactly one
// element per shape position.
func checkTensor(t *ir.Tensor) error {
	if t == nil {
		return fmt.Errorf("the tensor is nil")
	}
	if t.DType.Size() == 0 {
		return fmt.Errorf("invalid dtype %v", t.DType)
	}
	for i, d := range t.Shape {
		if d < 0 {
			return fmt.Errorf("dimension %d of shape %v is negative", i, t.Shape)
		}
	}
	n, ok := dataLen(t)
	if !ok {
		return fmt.Errorf("dtype %v but Data is %T", t.DType, t.Data)
	}
	if want := ir.NumElements(t.Shape); int64(n) != want {
		return fmt.Errorf("shape %v needs %d elements but Data has %d", t.Shape, want, n)
	}
	return nil
}

// dataLen returns len(t.Data) and whether Data has the Go type of t.DType.
func dataLen(t *ir.Tensor) (int, bool) {
	switch d := t.Data.(type) {
	case []float32:
		return len(d), t.DType == ir.F32
	case []float64:
		return len(d), t.DType == ir.F64
	case []int64:
		return len(d), t.DType == ir.I64
	case []int32:
		return len(d), t.DType == ir.I32
	case []bool:
		return len(d), t.DType == ir.Bool
	case []uint16:
		return len(d), t.DType == ir.F16 || t.DType == ir.BF16
	}
	return 0, false
}

// ortElementType returns ONNX Runtime's element type for a 16-bit float
// dtype, the only dtypes that go through CustomDataTensor.
func ortElementType(dt ir.DType) ortgo.TensorElementDataType {
	if dt == ir.BF16 {
		return ortgo.TensorElementDataTypeBFloat16
	}
	return ortgo.TensorElementDataTypeFloat16
}

// u16Bytes views a []uint16 as its bytes without copying. ONNX Runtime reads
// float16 and bfloat16 data as little-endian 16-bit words, which is the
// host order on every platform this package builds for (amd64, arm64).
func u16Bytes(u []uint16) []byte {
	if len(u) == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(&u[0])), 2*len(u))
}

// toOrtValue wraps the memory of t in an ONNX Runtime value without
// copying, so t.Data must stay alive and unchanged until the value is
// destroyed. The caller destroys the value.
func toOrtValue(t *ir.Tensor) (ortgo.Value, error) {
	shape := ortgo.Shape(t.Shape)
	if len(t.Shape) == 0 {
		return scalarValue(t)
	}
	switch d := t.Data.(type) {
	case []float32:
		return ortgo.NewTensor(shape, d)
	case []float64:
		return ortgo.NewTensor(shape, d)
	case []int64:
		return ortgo.NewTensor(shape, d)
	case []int32:
		return ortgo.NewTensor(shape, d)
	case []bool:
		return ortgo.NewTensor(shape, d)
	case []uint16:
		if len(d) == 0 {
			// NOTE: onnxruntime_go v1.27.0 builds 16-bit float tensors from a
			// byte slice and rejects an empty one.
			return nil, fmt.Errorf("%v tensors with zero elements (shape %v) cannot be passed through onnxruntime_go v1.27.0", t.DType, t.Shape)
		}
		return ortgo.NewCustomDataTensor(shape, u16Bytes(d), ortElementType(t.DType))
	}
	return nil, fmt.Errorf("unsupported Data type %T", t.Data)
}

// scalarValue wraps a rank-0 tensor. onnxruntime_go's NewTensor rejects an
// empty shape, so scalars go through its Scalar type, which copies the one
// element.
func scalarValue(t *ir.Tensor) (ortgo.Value, error) {
	switch d := t.Data.(type) {
	case []float32:
		return ortgo.NewScalar(d[0])
	case []float64:
		return ortgo.NewScalar(d[0])
	case []int64:
		return ortgo.NewScalar(d[0])
	case []int32:
		return ortgo.NewScalar(d[0])
	case []bool:
		return ortgo.NewScalar(d[0])
	}
	// NOTE: onnxruntime_go v1.27.0 has no rank-0 form of CustomDataTensor.
	return nil, fmt.Errorf("rank-0 %v tensors cannot be passed through onnxruntime_go v1.27.0; reshape the value to [1] in the model", t.DType)
}

// emptyScalarValue allocates a rank-0 output of dtype dt for ONNX Runtime
// to write into.
func emptyScalarValue(dt ir.DType) (ortgo.Value, error) {
	switch dt {
	case ir.F32:
		return ortgo.NewEmptyScalar[float32]()
	case ir.F64:
		return ortgo.NewEmptyScalar[float64]()
	case ir.I64:
		return ortgo.NewEmptyScalar[int64]()
	case ir.I32:
		return ortgo.NewEmptyScalar[int32]()
	case ir.Bool:
		return ortgo.NewEmptyScalar[bool]()
	}
	return nil, fmt.Errorf("rank-0 %v outputs cannot be returned through onnxruntime_go v1.27.0; reshape the value to [1] in the model", dt)
}

// fromScalarValue copies the element of a rank-0 value into a new tensor.
func fromScalarValue(v ortgo.Value) (*ir.Tensor, error) {
	switch s := v.(type) {
	case *ortgo.Scalar[float32]:
		return &ir.Tensor{DType: ir.F32, Shape: []int64{}, Data: []float32{s.GetData()}}, nil
	case *ortgo.Scalar[float64]:
		return &ir.Tensor{DType: ir.F64, Shape: []int64{}, Data: []float64{s.GetData()}}, nil
	case *ortgo.Scalar[int64]:
		return &ir.Tensor{DType: ir.I64, Shape: []int64{}, Data: []int64{s.GetData()}}, nil
	case *ortgo.Scalar[int32]:
		return &ir.Tensor{DType: ir.I32, Shape: []int64{}, Data: []int32{s.GetData()}}, nil
	case *ortgo.Scalar[bool]:
		return &ir.Tensor{DType: ir.Bool, Shape: []int64{}, Data: []bool{s.GetData()}}, nil
	}
	return nil, fmt.Errorf("internal error: unexpected scalar value %T", v)
}

// fromOrtValue turns an output value into a tensor. For an output that
// ONNX Runtime allocated, onnxruntime_go has already copied the data into a
// fresh Go slice, and the tensor takes it over without another copy. The
// element of a preallocated scalar is copied.
func fromOrtValue(v ortgo.Value) (*ir.Tensor, error) {
	shape := []int64(v.GetShape())
	switch t := v.(type) {
	case *ortgo.Tensor[float32]:
		return &ir.Tensor{DType: ir.F32, Shape: shape, Data: t.GetData()}, nil
	case *ortgo.Tensor[float64]:
		return &ir.Tensor{DType: ir.F64, Shape: shape, Data: t.GetData()}, nil
	case *ortgo.Tensor[int64]:
		return &ir.Tensor{DType: ir.I64, Shape: shape, Data: t.GetData()}, nil
	case *ortgo.Tensor[int32]:
		return &ir.Tensor{DType: ir.I32, Shape: shape, Data: t.GetData()}, nil
	case *ortgo.Tensor[bool]:
		return &ir.Tensor{DType: ir.Bool, Shape: shape, Data: t.GetData()}, nil
	}
	if t, err := fromScalarValue(v); err == nil {
		return t, nil
	}
	return nil, fmt.Errorf("ONNX Runtime returned %s with shape %v, which ir.Tensor cannot hold",
		ortgo.TensorElementDataType(v.DataType()), shape)
}
