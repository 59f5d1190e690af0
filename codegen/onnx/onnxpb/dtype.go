package onnxpb

import "github.com/mmadac/mmadac/ir"

// dtypePairs maps the ir element types to ONNX TensorProto data types.
var dtypePairs = []struct {
	ir   ir.DType
	onnx TensorProto_DataType
}{
	{ir.F32, TensorProto_FLOAT},
	{ir.F16, TensorProto_FLOAT16},
	{ir.BF16, TensorProto_BFLOAT16},
	{ir.F64, TensorProto_DOUBLE},
	{ir.I64, TensorProto_INT64},
	{ir.I32, TensorProto_INT32},
	{ir.Bool, TensorProto_BOOL},
}

// FromDType returns the ONNX data type of an ir element type, or
// TensorProto_UNDEFINED.
func FromDType(dt ir.DType) TensorProto_DataType {
	for _, p := range dtypePairs {
		if p.ir == dt {
			return p.onnx
		}
	}
	return TensorProto_UNDEFINED
}

// ToDType returns the ir element type of an ONNX data type value, or
// ir.InvalidDType for types the IR has no equivalent of.
func ToDType(t int32) ir.DType {
	for _, p := range dtypePairs {
		if int32(p.onnx) == t {
			return p.ir
		}
	}
	return ir.InvalidDType
}
