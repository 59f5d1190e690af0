//go:build cgo

package acl

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/mmadac/mmadac/ir"
)

func TestSessionCallOrder(t *testing.T) {
	f := newFake(t)
	s, err := f.lib.Open(f.model(staticModel), 0)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	wantOpen := []string{
		"aclInit",
		"aclrtSetDevice",
		"aclrtCreateContext",
		"aclrtCreateStream",
		"aclmdlLoadFromFile",
		"aclmdlCreateDesc",
		"aclmdlGetDesc",
		"aclmdlGetNumInputs",
		"aclmdlGetInputNameByIndex",
		"aclmdlGetInputDataType",
		"aclmdlGetInputSizeByIndex",
		"aclmdlGetInputDims",
		"aclmdlGetNumOutputs",
		"aclmdlGetOutputNameByIndex",
		"aclmdlGetOutputDataType",
		"aclmdlGetOutputSizeByIndex",
		"aclmdlGetOutputDims",
		"aclmdlGetInputIndexByName!100000 ascend_mbatch_shape_data",
		"aclmdlCreateDataset",
		"aclrtMalloc size=24",
		"aclCreateDataBuffer",
		"aclmdlAddDatasetBuffer",
		"aclmdlCreateDataset",
		"aclrtMalloc size=24",
		"aclCreateDataBuffer",
		"aclmdlAddDatasetBuffer",
	}
	if got := f.lines(); !slices.Equal(got, wantOpen) {
		t.Errorf("open calls:\n got %q\nwant %q", got, wantOpen)
	}

	f.clearLog()
	if _, err := s.Run(map[string]*ir.Tensor{"x": ir.FromF32(make([]float32, 6), 2, 3)}); err != nil {
		t.Fatalf("Run: %v", err)
	}
	wantRun := []string{
		"aclrtMemcpy kind=1 count=24",
		"aclmdlExecute",
		"aclrtMemcpy kind=2 count=24",
	}
	if got := f.lines(); !slices.Equal(got, wantRun) {
		t.Errorf("run calls:\n got %q\nwant %q", got, wantRun)
	}

	f.clearLog()
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	wantClose := []string{
		"aclDestroyDataBuffer",
		"aclrtFree",
		"aclmdlDestroyDataset",
		"aclDestroyDataBuffer",
		"aclrtFree",
		"aclmdlDestroyDataset",
		"aclmdlDestroyDesc",
		"aclmdlUnload",
		"aclrtDestroyStream",
		"aclrtDestroyContext",
		"aclrtResetDevice",
		"aclFinalize",
	}
	if got := f.lines(); !slices.Equal(got, wantClose) {
		t.Errorf("close calls:\n got %q\nwant %q", got, wantClose)
	}
	f.assertNothingLive()
}

func TestSessionGearCallOrder(t *testing.T) {
	f := newFake(t)
	s := f.open(gearModel)
	want := []string{
		"aclmdlGetInputIndexByName ascend_mbatch_shape_data",
		"aclmdlGetInputDynamicGearCount",
		"aclmdlGetInputDynamicDims",
		"aclmdlCreateDataset",
	}
	lines := f.lines()
	i := slices.Index(lines, want[0])
	if i < 0 || !slices.Equal(lines[i:i+len(want)], want) {
		t.Errorf("gear queries: got %q, want the sequence %q", lines, want)
	}
	// Three inputs (ids, scale, the gear input) and two outputs.
	if n := strings.Count(strings.Join(f.calls(), " "), "aclrtMalloc"); n != 5 {
		t.Errorf("aclrtMalloc called %d times, want 5", n)
	}

	f.clearLog()
	ids := ir.FromI64([]int64{1, 2, 3, 4}, 1, 4)
	if _, err := s.Run(map[string]*ir.Tensor{"ids": ids, "scale": ir.FromF32(make([]float32, 4), 4)}); err != nil {
		t.Fatalf("Run: %v", err)
	}
	wantRun := []string{
		"aclmdlSetInputDynamicDims dims=1,4,4",
		"aclrtMemcpy kind=1 count=32",
		"aclrtMemcpy kind=1 count=16",
		"aclmdlExecute",
		"aclmdlGetCurOutputDims",
		"aclrtMemcpy kind=2 count=32",
		"aclmdlGetCurOutputDims",
		"aclrtMemcpy kind=2 count=16",
	}
	if got := f.lines(); !slices.Equal(got, wantRun) {
		t.Errorf("run calls:\n got %q\nwant %q", got, wantRun)
	}
}

func TestSessionDescription(t *testing.T) {
	f := newFake(t)
	s := f.open(gearModel)
	inputs := s.Inputs()
	if len(inputs) != 2 {
		t.Fatalf("Inputs() = %+v, want ids and scale without the gear input", inputs)
	}
	want := TensorInfo{Name: "ids", Index: 0, DType: ir.I64, Shape: []int64{1, -1}, Size: 64}
	if got := inputs[0]; got.Name != want.Name || got.DType != want.DType || !slices.Equal(got.Shape, want.Shape) || got.Size != want.Size {
		t.Errorf("Inputs()[0] = %+v, want %+v", got, want)
	}
	outputs := s.Outputs()
	if len(outputs) != 2 || outputs[1].Name != "out_scale" || outputs[1].DType != ir.F32 || outputs[1].Size != 16 {
		t.Errorf("Outputs() = %+v", outputs)
	}
	gears := s.Gears()
	wantGears := [][]int64{{1, 4, 4}, {1, 8, 4}}
	if len(gears) != 2 || !slices.Equal(gears[0], wantGears[0]) || !slices.Equal(gears[1], wantGears[1]) {
		t.Errorf("Gears() = %v, want %v", gears, wantGears)
	}
}

func TestRunCopiesEveryDType(t *testing.T) {
	f := newFake(t)
	s := f.open(`
input f32 FLOAT 2,2
input f16 FLOAT16 3
input bf16 BF16 3
input f64 DOUBLE 2
input i64 INT64 2
input i32 INT32 1,2
input flag BOOL 3
output o_f32 FLOAT 2,2
output o_f16 FLOAT16 3
output o_bf16 BF16 3
output o_f64 DOUBLE 2
output o_i64 INT64 2
output o_i32 INT32 1,2
output o_flag BOOL 3
`)
	inputs := map[string]*ir.Tensor{
		"f32":  ir.FromF32([]float32{1.5, -2, 3, 4}, 2, 2),
		"f16":  {DType: ir.F16, Shape: []int64{3}, Data: []uint16{ir.F32ToF16(1), ir.F32ToF16(-0.5), 0x7c00}},
		"bf16": {DType: ir.BF16, Shape: []int64{3}, Data: []uint16{ir.F32ToBF16(3), 1, 0xffff}},
		"f64":  ir.FromF64([]float64{1e300, -1e-300}, 2),
		"i64":  ir.FromI64([]int64{-1 << 62, 7}, 2),
		"i32":  {DType: ir.I32, Shape: []int64{1, 2}, Data: []int32{-5, 1 << 30}},
		"flag": {DType: ir.Bool, Shape: []int64{3}, Data: []bool{true, false, true}},
	}
	outputs, err := s.Run(inputs)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if len(outputs) != len(inputs) {
		t.Errorf("Run returned %d outputs, want %d", len(outputs), len(inputs))
	}
	for name, in := range inputs {
		out := outputs["o_"+name]
		if out == nil {
			t.Errorf("output o_%s missing", name)
			continue
		}
		if out.DType != in.DType || !slices.Equal(out.Shape, in.Shape) {
			t.Errorf("o_%s: %v%v, want %v%v", name, out.DType, out.Shape, in.DType, in.Shape)
		}
		if got, want := fmt.Sprint(out.Data), fmt.Sprint(in.Data); got != want {
			t.Errorf("o_%s = %s, want %s", name, got, want)
		}
	}
}

func TestRunSelectsGear(t *testing.T) {
	f := newFake(t)
	s := f.open(gearModel)
	scale := ir.FromF32([]float32{1, 2, 3, 4}, 4)
	for _, n := range []int64{8, 4} {
		f.clearLog()
		ids := ir.NewTensor(ir.I64, 1, n)
		for i := range ids.I64() {
			ids.I64()[i] = int64(100 + i)
		}
		outputs, err := s.Run(map[string]*ir.Tensor{"ids": ids, "scale": scale})
		if err != nil {
			t.Fatalf("Run with ids [1 %d]: %v", n, err)
		}
		want := fmt.Sprintf("aclmdlSetInputDynamicDims dims=1,%d,4", n)
		if got := f.lines()[0]; got != want {
			t.Errorf("first call %q, want %q", got, want)
		}
		out := outputs["out_ids"]
		if !slices.Equal(out.Shape, []int64{1, n}) {
			t.Errorf("out_ids shape %v, want [1 %d] from aclmdlGetCurOutputDims", out.Shape, n)
		}
		if !slices.Equal(out.I64(), ids.I64()) {
			t.Errorf("out_ids = %v, want %v", out.I64(), ids.I64())
		}
		if !slices.Equal(outputs["out_scale"].F32(), scale.F32()) {
			t.Errorf("out_scale = %v, want %v", outputs["out_scale"].F32(), scale.F32())
		}
	}

	_, err := s.Run(map[string]*ir.Tensor{"ids": ir.NewTensor(ir.I64, 1, 5), "scale": scale})
	if err == nil || !strings.Contains(err.Error(), "no gear matches") || !strings.Contains(err.Error(), "ids[1 5]") {
		t.Errorf("Run with ids [1 5] = %v, want an error naming the shapes and the gears", err)
	}
}

func TestRunGearLayoutOfDynamicInputs(t *testing.T) {
	f := newFake(t)
	// The gear vector covers only the inputs with -1 dims, as an ATC
	// --input_shape that lists just those would produce.
	s := f.open(`
input a FLOAT 2
input ids INT32 -1
input mask BOOL -1,-1
output a_out FLOAT 2
output ids_out INT32 -1
output mask_out BOOL -1,-1
gear 2,2,2
gear 3,3,3
shape_order ids mask
`)
	if got, want := s.Gears(), [][]int64{{2, 2, 2}, {3, 3, 3}}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("Gears() = %v, want %v", got, want)
	}
	outputs, err := s.Run(map[string]*ir.Tensor{
		"a":    ir.FromF32([]float32{1, 2}, 2),
		"ids":  {DType: ir.I32, Shape: []int64{3}, Data: []int32{7, 8, 9}},
		"mask": {DType: ir.Bool, Shape: []int64{3, 3}, Data: []bool{true, false, false, true, true, false, false, false, true}},
	})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if got := outputs["mask_out"]; !slices.Equal(got.Shape, []int64{3, 3}) || got.Bools()[3] != true {
		t.Errorf("mask_out = %v%v", got.Shape, got.Data)
	}
	if got := outputs["ids_out"].I32(); !slices.Equal(got, []int32{7, 8, 9}) {
		t.Errorf("ids_out = %v", got)
	}
}

func TestOpenRejectsUnmappableGears(t *testing.T) {
	f := newFake(t)
	_, err := f.lib.Open(f.model(`
input a FLOAT -1
input b FLOAT -1,2
output a_out FLOAT -1
gear 2,3
shape_order b a
`), 0)
	if err == nil || !strings.Contains(err.Error(), "match neither") {
		t.Fatalf("Open = %v, want an error saying the gears match no input layout", err)
	}
	f.assertNothingLive()
}

func TestRunValidatesInputs(t *testing.T) {
	f := newFake(t)
	s := f.open(gearModel)
	ids := ir.FromI64([]int64{1, 2, 3, 4}, 1, 4)
	scale := ir.FromF32(make([]float32, 4), 4)
	tests := []struct {
		name   string
		inputs map[string]*ir.Tensor
		want   []string
	}{
		{"missing input", map[string]*ir.Tensor{"ids": ids},
			[]string{`missing input "scale"`, "ids i64[1 -1]"}},
		{"nil tensor", map[string]*ir.Tensor{"ids": ids, "scale": nil},
			[]string{`missing input "scale"`}},
		{"unknown input", map[string]*ir.Tensor{"ids": ids, "scale": scale, "idz": ids},
			[]string{`unknown input "idz"`, "scale f32[4]"}},
		{"gear input passed", map[string]*ir.Tensor{"ids": ids, "scale": scale, GearInputName: ids},
			[]string{GearInputName, "leave it out"}},
		{"wrong dtype", map[string]*ir.Tensor{"ids": ids, "scale": {DType: ir.F16, Shape: []int64{4}, Data: make([]uint16, 4)}},
			[]string{`input "scale"`, "dtype f16", "expects f32"}},
		{"wrong rank", map[string]*ir.Tensor{"ids": ir.FromI64([]int64{1, 2, 3, 4}, 4), "scale": scale},
			[]string{`input "ids"`, "shape [4]", "expects [1 -1]"}},
		{"wrong static dim", map[string]*ir.Tensor{"ids": ids, "scale": ir.FromF32(make([]float32, 5), 5)},
			[]string{`input "scale"`, "shape [5]", "expects [4]"}},
		{"negative dim", map[string]*ir.Tensor{"ids": {DType: ir.I64, Shape: []int64{1, -4}, Data: []int64{}}, "scale": scale},
			[]string{`input "ids"`, "shape [1 -4]"}},
		{"short data", map[string]*ir.Tensor{"ids": ids, "scale": {DType: ir.F32, Shape: []int64{4}, Data: make([]float32, 3)}},
			[]string{`input "scale"`, "3 elements", "needs 4"}},
		{"data type mismatch", map[string]*ir.Tensor{"ids": ids, "scale": {DType: ir.F32, Shape: []int64{4}, Data: make([]int64, 4)}},
			[]string{`input "scale"`, "[]int64", "dtype f32"}},
		{"unsupported data", map[string]*ir.Tensor{"ids": ids, "scale": {DType: ir.F32, Shape: []int64{4}, Data: "abcd"}},
			[]string{`input "scale"`, "string"}},
		{"too large for buffer", map[string]*ir.Tensor{"ids": ir.NewTensor(ir.I64, 1, 9), "scale": scale},
			[]string{`input "ids"`, "72 bytes exceed", "64 bytes"}},
	}
	f.clearLog()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := s.Run(tc.inputs)
			if err == nil {
				t.Fatal("Run succeeded, want an error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
	if calls := f.lines(); len(calls) != 0 {
		t.Errorf("invalid requests reached AscendCL: %q", calls)
	}
}

func TestRunFromManyGoroutines(t *testing.T) {
	f := newFake(t)
	s := f.open(staticModel)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := range 5 {
				in := make([]float32, 6)
				for i := range in {
					in[i] = float32(g*100 + r*10 + i)
				}
				out, err := s.Run(map[string]*ir.Tensor{"x": ir.FromF32(in, 2, 3)})
				if err != nil {
					errs <- err
					return
				}
				if !slices.Equal(out["y"].F32(), in) {
					errs <- fmt.Errorf("goroutine %d run %d: y = %v, want %v", g, r, out["y"].F32(), in)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestCloseIsIdempotentAndRunFailsAfter(t *testing.T) {
	f := newFake(t)
	s, err := f.lib.Open(f.model(staticModel), 0)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	f.clearLog()
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := s.Run(map[string]*ir.Tensor{"x": ir.FromF32(make([]float32, 6), 2, 3)}); !errors.Is(err, ErrClosed) {
		t.Errorf("Run after Close = %v, want ErrClosed", err)
	}
	if calls := f.lines(); len(calls) != 0 {
		t.Errorf("calls after Close: %q", calls)
	}
}

func TestTwoSessionsShareInit(t *testing.T) {
	f := newFake(t)
	a, err := f.lib.Open(f.model(staticModel), 0)
	if err != nil {
		t.Fatalf("Open a: %v", err)
	}
	b, err := f.lib.Open(f.model(gearModel), 1)
	if err != nil {
		t.Fatalf("Open b: %v", err)
	}
	if n := strings.Count(strings.Join(f.calls(), " "), "aclInit"); n != 1 {
		t.Errorf("aclInit called %d times for two sessions, want 1", n)
	}
	if err := a.Close(); err != nil {
		t.Fatalf("Close a: %v", err)
	}
	if slices.Contains(f.calls(), "aclFinalize") {
		t.Error("aclFinalize called while session b is open")
	}
	if _, err := b.Run(map[string]*ir.Tensor{"ids": ir.NewTensor(ir.I64, 1, 4), "scale": ir.NewTensor(ir.F32, 4)}); err != nil {
		t.Errorf("Run on b after closing a: %v", err)
	}
	if err := b.Close(); err != nil {
		t.Fatalf("Close b: %v", err)
	}
	if calls := f.calls(); calls[len(calls)-1] != "aclFinalize" {
		t.Errorf("last call %q, want aclFinalize", calls[len(calls)-1])
	}
	f.assertNothingLive()
}

func TestOpenToleratesRepeatInitialize(t *testing.T) {
	f := newFake(t)
	t.Setenv("FAKEACL_PREINIT", "1")
	s, err := f.lib.Open(f.model(staticModel), 0)
	if err != nil {
		t.Fatalf("Open with aclInit returning 100002: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if !slices.Contains(f.lines(), "aclInit!100002") {
		t.Errorf("calls %q lack the aclInit that returns 100002", f.lines())
	}
	if slices.Contains(f.calls(), "aclFinalize") {
		t.Error("aclFinalize called although this session did not initialise AscendCL")
	}
	f.assertNothingLive()
}

func TestOpenMissingModelFile(t *testing.T) {
	f := newFake(t)
	_, err := f.lib.Open(f.dir+"/absent.om", 0)
	if err == nil || !strings.Contains(err.Error(), "absent.om") {
		t.Fatalf("Open = %v, want an error naming the missing file", err)
	}
	if calls := f.lines(); len(calls) != 0 {
		t.Errorf("AscendCL called for a missing file: %q", calls)
	}
}

func TestOpenInvalidDevice(t *testing.T) {
	f := newFake(t)
	if _, err := f.lib.Open(f.model(staticModel), -1); err == nil || !strings.Contains(err.Error(), "invalid device id -1") {
		t.Errorf("Open(device -1) = %v, want an invalid device error", err)
	}
	_, err := f.lib.Open(f.model(staticModel), 5)
	var aclErr *Error
	if !errors.As(err, &aclErr) || aclErr.Call != "aclrtSetDevice" || aclErr.Name != "ACL_ERROR_RT_INVALID_DEVICEID" {
		t.Fatalf("Open(device 5) = %v, want an aclrtSetDevice error", err)
	}
	if !strings.Contains(err.Error(), "ASCEND_RT_VISIBLE_DEVICES") || !strings.Contains(err.Error(), "device 5 does not exist") {
		t.Errorf("error %q lacks the hint or the runtime's message", err)
	}
	f.assertNothingLive()
}
