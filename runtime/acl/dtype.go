package acl

import (
	"fmt"

	"github.com/mmadac/mmadac/ir"
)

// aclDataType values from acl_base_rt.h for the element types mmadac uses.
const (
	aclFloat     = 0
	aclFloat16   = 1
	aclInt8      = 2
	aclInt32     = 3
	aclUint8     = 4
	aclInt64     = 9
	aclDouble    = 11
	aclBool      = 12
	aclBF16      = 27
	aclUndefined = -1
)

// dtypeTable pairs each aclDataType that has an ir.DType with that DType.
var dtypeTable = []struct {
	acl int
	ir  ir.DType
}{
	{aclFloat, ir.F32},
	{aclFloat16, ir.F16},
	{aclInt32, ir.I32},
	{aclInt64, ir.I64},
	{aclDouble, ir.F64},
	{aclBool, ir.Bool},
	{aclBF16, ir.BF16},
}

// aclDTypeNames names the aclDataType values for error messages, including
// those without an ir.DType.
var aclDTypeNames = map[int]string{
	aclUndefined: "ACL_DT_UNDEFINED",
	aclFloat:     "ACL_FLOAT",
	aclFloat16:   "ACL_FLOAT16",
	aclInt8:      "ACL_INT8",
	aclInt32:     "ACL_INT32",
	aclUint8:     "ACL_UINT8",
	6:            "ACL_INT16",
	7:            "ACL_UINT16",
	8:            "ACL_UINT32",
	aclInt64:     "ACL_INT64",
	10:           "ACL_UINT64",
	aclDouble:    "ACL_DOUBLE",
	aclBool:      "ACL_BOOL",
	13:           "ACL_STRING",
	aclBF16:      "ACL_BF16",
}

// FromACLDataType converts an aclDataType to the ir.DType with the same
// element layout. It fails for types mmadac does not use (INT8, UINT8,
// STRING, ...) and for ACL_DT_UNDEFINED, which the runtime returns for a bad
// index.
func FromACLDataType(code int) (ir.DType, error) {
	for _, e := range dtypeTable {
		if e.acl == code {
			return e.ir, nil
		}
	}
	return ir.InvalidDType, fmt.Errorf("aclDataType %s has no mmadac dtype (supported: f32, f16, bf16, f64, i64, i32, bool)", aclDTypeName(code))
}

// ToACLDataType converts an ir.DType to its aclDataType.
func ToACLDataType(dt ir.DType) (int, error) {
	for _, e := range dtypeTable {
		if e.ir == dt {
			return e.acl, nil
		}
	}
	return aclUndefined, fmt.Errorf("dtype %v has no aclDataType", dt)
}

// aclDTypeName returns "ACL_FLOAT (0)" style text for messages.
func aclDTypeName(code int) string {
	if name, ok := aclDTypeNames[code]; ok {
		return fmt.Sprintf("%s (%d)", name, code)
	}
	return fmt.Sprintf("%d", code)
}
