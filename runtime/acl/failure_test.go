//go:build cgo

package acl

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/mmadac/mmadac/ir"
)

// injectCode is the code the failure tests inject, ACL_ERROR_FAILURE.
const injectCode = 500001

// nullCalls report failure by returning NULL instead of an aclError.
var nullCalls = []string{
	"aclmdlCreateDesc", "aclmdlCreateDataset", "aclCreateDataBuffer",
	"aclmdlGetInputNameByIndex", "aclmdlGetOutputNameByIndex",
}

// valueCalls return a count, size or data type that cannot carry an error
// code; TestOpenFailsOnBadDescriptionValues covers them.
var valueCalls = []string{
	"aclmdlGetNumInputs", "aclmdlGetNumOutputs",
	"aclmdlGetInputSizeByIndex", "aclmdlGetOutputSizeByIndex",
	"aclmdlGetInputDataType", "aclmdlGetOutputDataType",
}

// TestOpenFailsAtEveryCall makes each call of the open sequence of a model
// with gears fail in turn, including every repeated call (each aclrtMalloc,
// each aclmdlAddDatasetBuffer), and checks that Open reports that call and
// code and leaves nothing alive.
func TestOpenFailsAtEveryCall(t *testing.T) {
	f := newFake(t)
	path := f.model(gearModel)
	s, err := f.lib.Open(path, 0)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	sequence := f.calls()
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	seen := map[string]int{}
	tested := 0
	for _, call := range sequence {
		seen[call]++
		nth := seen[call]
		if slices.Contains(valueCalls, call) {
			continue
		}
		tested++
		t.Run(fmt.Sprintf("%s#%d", call, nth), func(t *testing.T) {
			f := f.in(t)
			f.clearLog()
			f.failAt(call, injectCode, nth)
			defer f.noFailures()

			s, err := f.lib.Open(path, 0)
			if err == nil {
				s.Close()
				t.Fatal("Open succeeded despite the injected failure")
			}
			var aclErr *Error
			if !errors.As(err, &aclErr) {
				t.Fatalf("Open error %v (%T) is no *Error", err, err)
			}
			wantCode, wantName := injectCode, "ACL_ERROR_FAILURE"
			if slices.Contains(nullCalls, call) {
				wantCode, wantName = CodeNull, ""
			}
			if aclErr.Call != call || aclErr.Code != wantCode || aclErr.Name != wantName {
				t.Errorf("error names %s code %d (%s), want %s code %d (%s)",
					aclErr.Call, aclErr.Code, aclErr.Name, call, wantCode, wantName)
			}
			if !strings.Contains(aclErr.Message, "injected failure of "+call) {
				t.Errorf("Message %q does not carry aclGetRecentErrMsg's text", aclErr.Message)
			}
			if !strings.Contains(err.Error(), call) {
				t.Errorf("error text %q does not name %s", err, call)
			}
			f.assertNothingLive()
		})
	}
	if tested < 25 {
		t.Errorf("only %d calls tested; the open sequence %q looks too short", tested, sequence)
	}
}

func TestOpenFailsOnBadDescriptionValues(t *testing.T) {
	tests := []struct {
		call string
		want string
	}{
		{"aclmdlGetInputDataType", "ACL_DT_UNDEFINED"},
		{"aclmdlGetOutputDataType", "ACL_DT_UNDEFINED"},
		{"aclmdlGetInputSizeByIndex", "buffer size 0"},
		{"aclmdlGetOutputSizeByIndex", "buffer size 0"},
		{"aclmdlGetNumOutputs", "no outputs"},
	}
	for _, tc := range tests {
		t.Run(tc.call, func(t *testing.T) {
			f := newFake(t)
			f.failAt(tc.call, injectCode, 1)
			_, err := f.lib.Open(f.model(staticModel), 0)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Open = %v, want an error containing %q", err, tc.want)
			}
			f.assertNothingLive()
		})
	}
}

func TestOpenRejectsUnsupportedDType(t *testing.T) {
	f := newFake(t)
	_, err := f.lib.Open(f.model("input x UINT8 4\noutput y UINT8 4\n"), 0)
	if err == nil || !strings.Contains(err.Error(), `input "x"`) || !strings.Contains(err.Error(), "ACL_UINT8 (4)") {
		t.Fatalf("Open = %v, want an error naming input x and ACL_UINT8", err)
	}
	f.assertNothingLive()
}

func TestOpenReportsLoadError(t *testing.T) {
	f := newFake(t)
	_, err := f.lib.Open(f.model("input x FLOAT 4\nbogus line\n"), 0)
	var aclErr *Error
	if !errors.As(err, &aclErr) || aclErr.Call != "aclmdlLoadFromFile" || aclErr.Name != "ACL_ERROR_GE_LOAD_MODEL" {
		t.Fatalf("Open = %v, want an aclmdlLoadFromFile error", err)
	}
	if !strings.Contains(aclErr.Message, "bogus line") {
		t.Errorf("Message %q lacks the runtime's explanation", aclErr.Message)
	}
	f.assertNothingLive()
}

func TestRunFailures(t *testing.T) {
	tests := []struct {
		call string
		nth  int
		code int
		name string
	}{
		{"aclmdlSetInputDynamicDims", 1, 145013, "ACL_ERROR_GE_DYNAMIC_BATCH_SIZE_INVALID"},
		{"aclrtMemcpy", 1, 107000, "ACL_ERROR_RT_PARAM_INVALID"}, // host to device, first input
		{"aclrtMemcpy", 2, 107000, "ACL_ERROR_RT_PARAM_INVALID"}, // host to device, second input
		{"aclmdlExecute", 1, 507011, "ACL_ERROR_RT_MODEL_EXECUTE"},
		{"aclmdlGetCurOutputDims", 2, 100000, "ACL_ERROR_INVALID_PARAM"},
		{"aclrtMemcpy", 3, 507899, "ACL_ERROR_RT_DRV_INTERNAL_ERROR"}, // device to host
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("%s#%d", tc.call, tc.nth), func(t *testing.T) {
			f := newFake(t)
			s := f.open(gearModel)
			inputs := map[string]*ir.Tensor{"ids": ir.NewTensor(ir.I64, 1, 4), "scale": ir.NewTensor(ir.F32, 4)}

			f.failAt(tc.call, tc.code, tc.nth)
			_, err := s.Run(inputs)
			var aclErr *Error
			if !errors.As(err, &aclErr) {
				t.Fatalf("Run = %v, want an *Error", err)
			}
			if aclErr.Call != tc.call || aclErr.Code != tc.code || aclErr.Name != tc.name {
				t.Errorf("error names %s code %d (%s), want %s code %d (%s)",
					aclErr.Call, aclErr.Code, aclErr.Name, tc.call, tc.code, tc.name)
			}

			// The session survives a failed run.
			f.noFailures()
			if _, err := s.Run(inputs); err != nil {
				t.Errorf("Run after the failure: %v", err)
			}
			if err := s.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
			f.assertNothingLive()
		})
	}
}

// TestCloseContinuesAfterFailure makes one destroy call fail and checks that
// Close reports it and still destroys everything else.
func TestCloseContinuesAfterFailure(t *testing.T) {
	tests := []struct {
		call  string
		nth   int
		kind  string // the resource the failed call leaves alive
		after string // a call that must still follow
	}{
		{"aclDestroyDataBuffer", 1, "buffer", "aclrtFree"},
		{"aclrtFree", 2, "malloc", "aclmdlDestroyDataset"},
		{"aclmdlDestroyDataset", 1, "dataset", "aclmdlDestroyDesc"},
		{"aclmdlDestroyDesc", 1, "desc", "aclmdlUnload"},
		{"aclmdlUnload", 1, "model", "aclrtDestroyStream"},
		{"aclrtDestroyStream", 1, "stream", "aclrtDestroyContext"},
		{"aclrtDestroyContext", 1, "context", "aclrtResetDevice"},
		{"aclrtResetDevice", 1, "device", "aclFinalize"},
	}
	for _, tc := range tests {
		t.Run(tc.call, func(t *testing.T) {
			f := newFake(t)
			s, err := f.lib.Open(f.model(staticModel), 0)
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			f.clearLog()
			f.failAt(tc.call, injectCode, tc.nth)
			err = s.Close()
			var aclErr *Error
			if !errors.As(err, &aclErr) || aclErr.Call != tc.call {
				t.Fatalf("Close = %v, want an error from %s", err, tc.call)
			}
			calls := f.calls()
			failed := slices.Index(f.lines(), fmt.Sprintf("%s!%d", tc.call, injectCode))
			if failed < 0 || !slices.Contains(calls[failed:], tc.after) {
				t.Errorf("calls %q: want %s after the failed %s", calls, tc.after, tc.call)
			}
			if calls[len(calls)-1] != "aclFinalize" {
				t.Errorf("last call %q, want aclFinalize", calls[len(calls)-1])
			}
			for kind, n := range f.live() {
				want := 0
				if kind == tc.kind {
					want = 1
				}
				if n != want {
					t.Errorf("%d %s live after Close, want %d", n, kind, want)
				}
			}
		})
	}
}
