package ir

import "fmt"

// DType is the element type of a tensor value.
type DType uint8

// The element types the IR supports. The zero value is invalid so that a
// forgotten initialisation is caught by Verify.
const (
	InvalidDType DType = iota
	F32
	F16
	BF16
	F64
	I64
	I32
	Bool
)

var dtypeNames = [...]string{
	InvalidDType: "invalid",
	F32:          "f32",
	F16:          "f16",
	BF16:         "bf16",
	F64:          "f64",
	I64:          "i64",
	I32:          "i32",
	Bool:         "bool",
}

// String returns the short name used in the text form ("f32", "bf16", ...).
func (d DType) String() string {
	if int(d) < len(dtypeNames) {
		return dtypeNames[d]
	}
	return fmt.Sprintf("dtype(%d)", uint8(d))
}

// Size returns the number of bytes of one element.
func (d DType) Size() int {
	switch d {
	case F32, I32:
		return 4
	case F16, BF16:
		return 2
	case F64, I64:
		return 8
	case Bool:
		return 1
	}
	return 0
}

// IsFloat reports whether d is a floating-point type.
func (d DType) IsFloat() bool { return d == F32 || d == F16 || d == BF16 || d == F64 }

// ParseDType reads the short name written by String.
func ParseDType(s string) (DType, error) {
	for i, n := range dtypeNames {
		if n == s && i != int(InvalidDType) {
			return DType(i), nil
		}
	}
	return InvalidDType, fmt.Errorf("unknown dtype %q (want one of f32, f16, bf16, f64, i64, i32, bool)", s)
}
