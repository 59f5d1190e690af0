package acl

import (
	"strings"
	"testing"

	"github.com/mmadac/mmadac/ir"
)

func TestDTypeMapping(t *testing.T) {
	pairs := map[int]ir.DType{0: ir.F32, 1: ir.F16, 3: ir.I32, 9: ir.I64, 11: ir.F64, 12: ir.Bool, 27: ir.BF16}
	for code, dt := range pairs {
		got, err := FromACLDataType(code)
		if err != nil || got != dt {
			t.Errorf("FromACLDataType(%d) = %v, %v; want %v", code, got, err, dt)
		}
		back, err := ToACLDataType(dt)
		if err != nil || back != code {
			t.Errorf("ToACLDataType(%v) = %d, %v; want %d", dt, back, err, code)
		}
	}
	for code, name := range map[int]string{2: "ACL_INT8 (2)", -1: "ACL_DT_UNDEFINED (-1)", 99: "99"} {
		if _, err := FromACLDataType(code); err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("FromACLDataType(%d) = %v, want an error naming %s", code, err, name)
		}
	}
	if _, err := ToACLDataType(ir.InvalidDType); err == nil {
		t.Error("ToACLDataType(InvalidDType) succeeded")
	}
}
