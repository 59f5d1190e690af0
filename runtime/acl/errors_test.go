package acl

import "testing"

func TestErrorText(t *testing.T) {
	tests := []struct {
		err  *Error
		want string
	}{
		{newError("aclmdlExecute", 507011, "fault in op X"),
			"aclmdlExecute failed with 507011 (ACL_ERROR_RT_MODEL_EXECUTE): fault in op X"},
		{newError("aclrtMalloc", 207018, ""),
			"aclrtMalloc failed with 207018 (ACL_ERROR_RT_DEVICE_OOM) (device memory is exhausted: use a smaller sequence-length gear or a free device)"},
		{newError("aclmdlGetDesc", 123456, ""), "aclmdlGetDesc failed with 123456"},
		{newError("aclmdlCreateDesc", CodeNull, "out of memory"), "aclmdlCreateDesc returned NULL: out of memory"},
	}
	for _, tc := range tests {
		if got := tc.err.Error(); got != tc.want {
			t.Errorf("Error() = %q, want %q", got, tc.want)
		}
	}
}
