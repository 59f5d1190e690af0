package acl

import (
	"errors"
	"fmt"
)

// ErrUnavailable is wrapped by every error of Load: the library could not be
// opened or lacks a symbol. Callers test for it with errors.Is to fall back
// to another backend.
var ErrUnavailable = errors.New("AscendCL library unavailable")

// ErrClosed is returned by Run on a closed session.
var ErrClosed = errors.New("acl: session is closed")

// CodeNull is the Code of an Error from a call that reports failure by
// returning NULL (aclmdlCreateDesc, aclmdlCreateDataset,
// aclCreateDataBuffer, aclmdlGet*NameByIndex) instead of an aclError.
const CodeNull = -1

// Error is a failed AscendCL call.
type Error struct {
	// Call is the C function name, for example "aclmdlExecute".
	Call string
	// Code is the aclError the call returned, or CodeNull.
	Code int
	// Name is the symbolic name of Code from the CANN headers, for example
	// "ACL_ERROR_RT_MODEL_EXECUTE"; empty when the code is not in codeNames.
	Name string
	// Message is the text of aclGetRecentErrMsg, read on the failing thread
	// right after the call. It is empty when the library lacks that function
	// or returned no text.
	Message string
}

// Error returns "CALL failed with CODE (NAME): MESSAGE (HINT)". It has no
// package prefix because callers wrap it with their own context.
func (e *Error) Error() string {
	var s string
	switch {
	case e.Code == CodeNull:
		s = e.Call + " returned NULL"
	case e.Name != "":
		s = fmt.Sprintf("%s failed with %d (%s)", e.Call, e.Code, e.Name)
	default:
		s = fmt.Sprintf("%s failed with %d", e.Call, e.Code)
	}
	if e.Message != "" {
		s += ": " + e.Message
	}
	if hint := codeHints[e.Code]; hint != "" {
		s += " (" + hint + ")"
	}
	return s
}

// aclError values that the binding treats specially.
const (
	codeSuccess          = 0
	codeRepeatInitialize = 100002
)

// codeNames maps aclError values to their names in the public CANN headers
// acl_base_rt.h, rt_error_codes.h and ge_error_codes.h.
var codeNames = map[int]string{
	0:      "ACL_SUCCESS",
	100000: "ACL_ERROR_INVALID_PARAM",
	100001: "ACL_ERROR_UNINITIALIZE",
	100002: "ACL_ERROR_REPEAT_INITIALIZE",
	100003: "ACL_ERROR_INVALID_FILE",
	100005: "ACL_ERROR_INVALID_FILE_SIZE",
	100006: "ACL_ERROR_PARSE_FILE",
	100011: "ACL_ERROR_INVALID_MODEL_ID",
	100012: "ACL_ERROR_DESERIALIZE_MODEL",
	100013: "ACL_ERROR_PARSE_MODEL",
	100014: "ACL_ERROR_READ_MODEL_FAILURE",
	100015: "ACL_ERROR_MODEL_SIZE_INVALID",
	100016: "ACL_ERROR_MODEL_MISSING_ATTR",
	100017: "ACL_ERROR_MODEL_INPUT_NOT_MATCH",
	100018: "ACL_ERROR_MODEL_OUTPUT_NOT_MATCH",
	100019: "ACL_ERROR_MODEL_NOT_DYNAMIC",
	100026: "ACL_ERROR_UNSUPPORTED_DATA_TYPE",
	100037: "ACL_ERROR_REPEAT_FINALIZE",
	107000: "ACL_ERROR_RT_PARAM_INVALID",
	107001: "ACL_ERROR_RT_INVALID_DEVICEID",
	107002: "ACL_ERROR_RT_CONTEXT_NULL",
	145000: "ACL_ERROR_GE_PARAM_INVALID",
	145002: "ACL_ERROR_GE_EXEC_MODEL_PATH_INVALID",
	145003: "ACL_ERROR_GE_EXEC_MODEL_ID_INVALID",
	145006: "ACL_ERROR_GE_EXEC_MODEL_DATA_SIZE_INVALID",
	145013: "ACL_ERROR_GE_DYNAMIC_BATCH_SIZE_INVALID",
	145021: "ACL_ERROR_GE_SHAPE_INVALID",
	145022: "ACL_ERROR_GE_DATATYPE_INVALID",
	200000: "ACL_ERROR_BAD_ALLOC",
	200001: "ACL_ERROR_API_NOT_SUPPORT",
	200002: "ACL_ERROR_INVALID_DEVICE",
	200003: "ACL_ERROR_MEMORY_ADDRESS_UNALIGNED",
	200006: "ACL_ERROR_FEATURE_UNSUPPORTED",
	207001: "ACL_ERROR_RT_MEMORY_ALLOCATION",
	207004: "ACL_ERROR_RT_NO_DEVICE",
	207018: "ACL_ERROR_RT_DEVICE_OOM",
	245000: "ACL_ERROR_GE_MEMORY_ALLOCATION",
	300000: "ACL_ERROR_STORAGE_OVER_LIMIT",
	500000: "ACL_ERROR_INTERNAL_ERROR",
	500001: "ACL_ERROR_FAILURE",
	500002: "ACL_ERROR_GE_FAILURE",
	500003: "ACL_ERROR_RT_FAILURE",
	500004: "ACL_ERROR_DRV_FAILURE",
	507000: "ACL_ERROR_RT_INTERNAL_ERROR",
	507008: "ACL_ERROR_RT_SOC_VERSION",
	507011: "ACL_ERROR_RT_MODEL_EXECUTE",
	507014: "ACL_ERROR_RT_AICORE_TIMEOUT",
	507015: "ACL_ERROR_RT_AICORE_EXCEPTION",
	507018: "ACL_ERROR_RT_AICPU_EXCEPTION",
	507046: "ACL_ERROR_RT_STREAM_SYNC_TIMEOUT",
	507899: "ACL_ERROR_RT_DRV_INTERNAL_ERROR",
	545000: "ACL_ERROR_GE_INTERNAL_ERROR",
	545001: "ACL_ERROR_GE_LOAD_MODEL",
	545002: "ACL_ERROR_GE_EXEC_LOAD_MODEL_PARTITION_FAILED",
	545003: "ACL_ERROR_GE_EXEC_LOAD_WEIGHT_PARTITION_FAILED",
	545004: "ACL_ERROR_GE_EXEC_LOAD_TASK_PARTITION_FAILED",
	545005: "ACL_ERROR_GE_EXEC_LOAD_KERNEL_PARTITION_FAILED",
}

// codeHints maps the codes whose cause is clear from the code alone to the
// step that fixes it.
var codeHints = map[int]string{
	107001: "check the --device value and ASCEND_RT_VISIBLE_DEVICES",
	200002: "check the --device value and ASCEND_RT_VISIBLE_DEVICES",
	207004: "no NPU is visible: check the driver install and ASCEND_RT_VISIBLE_DEVICES",
	200000: "device memory is exhausted: use a smaller sequence-length gear or a free device",
	207001: "device memory is exhausted: use a smaller sequence-length gear or a free device",
	207018: "device memory is exhausted: use a smaller sequence-length gear or a free device",
	245000: "device memory is exhausted: use a smaller sequence-length gear or a free device",
	100003: "the OM file is damaged or from another CANN version: rebuild it with mmadac build --target ascend",
	100012: "the OM file is damaged or from another CANN version: rebuild it with mmadac build --target ascend",
	100013: "the OM file is damaged or from another CANN version: rebuild it with mmadac build --target ascend",
	145006: "the OM file is truncated or damaged: rebuild it with mmadac build --target ascend",
	507008: "the OM file was built for another SoC: rebuild it with --soc set to this device's SoC",
}

// newError builds the Error for a non-zero return code of call.
func newError(call string, code int, message string) *Error {
	return &Error{Call: call, Code: code, Name: codeNames[code], Message: message}
}
