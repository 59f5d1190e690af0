package ort

import (
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/mmadac/mmadac/codegen/onnx/onnxpb"
	"github.com/mmadac/mmadac/ir"
)

func runOK(t *testing.T, s *Session, inputs map[string]*ir.Tensor) map[string]*ir.Tensor {
	t.Helper()
	out, err := s.Run(inputs)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	return out
}

func wantErr(t *testing.T, err error, parts ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("got no error, want one containing %q", parts)
	}
	for _, p := range parts {
		if !strings.Contains(err.Error(), p) {
			t.Errorf("error %q does not contain %q", err, p)
		}
	}
}

func TestAddDynamicRows(t *testing.T) {
	requireORT(t)
	s := newTestSession(t, binaryModel(t, "Add", f32), []string{"a", "b"}, []string{"sum"})
	for _, n := range []int64{2, 5} {
		a, b := ir.NewTensor(ir.F32, n, 3), ir.NewTensor(ir.F32, n, 3)
		for i := range a.F32() {
			a.F32()[i] = float32(i)
			b.F32()[i] = 0.5
		}
		out := runOK(t, s, map[string]*ir.Tensor{"a": a, "b": b})
		sum := out["sum"]
		if sum.DType != ir.F32 || !reflect.DeepEqual(sum.Shape, []int64{n, 3}) {
			t.Fatalf("n=%d: sum is %v%v, want f32[%d 3]", n, sum.DType, sum.Shape, n)
		}
		for i, v := range sum.F32() {
			if want := float32(i) + 0.5; v != want {
				t.Fatalf("n=%d: sum[%d] = %v, want %v", n, i, v, want)
			}
		}
		if got, want := s.LastOutputBytes(), n*3*4; got != want {
			t.Errorf("n=%d: LastOutputBytes = %d, want %d", n, got, want)
		}
		if got, want := s.LastInputBytes(), 2*n*3*4; got != want {
			t.Errorf("n=%d: LastInputBytes = %d, want %d", n, got, want)
		}
	}
}

func TestNewSessionFromFile(t *testing.T) {
	requireORT(t)
	path := filepath.Join(t.TempDir(), "add.onnx")
	if err := os.WriteFile(path, binaryModel(t, "Add", f32), 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := NewSession(path, []string{"a", "b"}, []string{"sum"}, DefaultOptions())
	if err != nil {
		t.Fatalf("NewSession: %v", err)
	}
	defer s.Close()
	one := ir.FromF32([]float32{1, 2, 3}, 1, 3)
	out := runOK(t, s, map[string]*ir.Tensor{"a": one, "b": one})
	if got := out["sum"].F32(); !reflect.DeepEqual(got, []float32{2, 4, 6}) {
		t.Errorf("sum = %v, want [2 4 6]", got)
	}
}

func TestNewSessionMissingFile(t *testing.T) {
	requireORT(t)
	_, err := NewSession(filepath.Join(t.TempDir(), "none.onnx"), []string{"a"}, []string{"b"}, DefaultOptions())
	wantErr(t, err, "read ONNX model", "none.onnx")
}

// TestMatMulDynamicBatchSeq multiplies x[batch, seq, 4] by a constant
// W[4, 3] for two different (batch, seq) pairs in one session.
func TestMatMulDynamicBatchSeq(t *testing.T) {
	requireORT(t)
	w := make([]float32, 12)
	for i := range w {
		w[i] = float32(i%5) - 2
	}
	model := graphModel(t,
		[]*onnxpb.NodeProto{node("MatMul", []string{"x", "w"}, []string{"y"})},
		[]*onnxpb.ValueInfoProto{tensorValue("x", f32, "batch", "seq", 4)},
		[]*onnxpb.ValueInfoProto{tensorValue("y", f32, "batch", "seq", 3)},
		floatInitializer("w", []int64{4, 3}, w))
	s := newTestSession(t, model, []string{"x"}, []string{"y"})

	for _, bs := range [][2]int64{{1, 2}, {3, 5}} {
		batch, seq := bs[0], bs[1]
		x := ir.NewTensor(ir.F32, batch, seq, 4)
		for i := range x.F32() {
			x.F32()[i] = float32(i%7) * 0.25
		}
		y := runOK(t, s, map[string]*ir.Tensor{"x": x})["y"]
		if !reflect.DeepEqual(y.Shape, []int64{batch, seq, 3}) {
			t.Fatalf("y shape = %v, want [%d %d 3]", y.Shape, batch, seq)
		}
		for r := range batch * seq {
			for c := range int64(3) {
				var want float32
				for k := range int64(4) {
					want += x.F32()[r*4+k] * w[k*3+c]
				}
				if got := y.F32()[r*3+c]; got != want {
					t.Fatalf("batch=%d seq=%d: y[%d,%d] = %v, want %v", batch, seq, r, c, got, want)
				}
			}
		}
	}
}

func TestGatherInt64Indices(t *testing.T) {
	requireORT(t)
	table := []float32{0, 1, 10, 11, 20, 21, 30, 31, 40, 41}
	model := graphModel(t,
		[]*onnxpb.NodeProto{node("Gather", []string{"table", "ids"}, []string{"emb"}, intAttr("axis", 0))},
		[]*onnxpb.ValueInfoProto{tensorValue("ids", i64, "batch", "seq")},
		[]*onnxpb.ValueInfoProto{tensorValue("emb", f32, "batch", "seq", 2)},
		floatInitializer("table", []int64{5, 2}, table))
	s := newTestSession(t, model, []string{"ids"}, []string{"emb"})

	ids := ir.FromI64([]int64{4, 0, 2, 1, 3, 3}, 2, 3)
	emb := runOK(t, s, map[string]*ir.Tensor{"ids": ids})["emb"]
	want := []float32{40, 41, 0, 1, 20, 21, 10, 11, 30, 31, 30, 31}
	if !reflect.DeepEqual(emb.Shape, []int64{2, 3, 2}) || !reflect.DeepEqual(emb.F32(), want) {
		t.Errorf("emb = %v %v, want [2 3 2] %v", emb.Shape, emb.F32(), want)
	}

	_, err := s.Run(map[string]*ir.Tensor{"ids": ir.FromI64([]int64{7}, 1, 1)})
	wantErr(t, err, "model bytes")
}

func TestDTypeRoundTrips(t *testing.T) {
	requireORT(t)
	cases := []struct {
		name     string
		model    []byte
		in, want *ir.Tensor
	}{
		{"f64 add", binaryModel(t, "Add", f64),
			ir.FromF64([]float64{1.25, -2, 3}, 1, 3), ir.FromF64([]float64{2.5, -4, 6}, 1, 3)},
		{"i64 add", binaryModel(t, "Add", i64),
			ir.FromI64([]int64{1 << 40, -2, 3}, 1, 3), ir.FromI64([]int64{1 << 41, -4, 6}, 1, 3)},
		{"i32 add", binaryModel(t, "Add", i32),
			&ir.Tensor{DType: ir.I32, Shape: []int64{1, 3}, Data: []int32{7, -8, 9}},
			&ir.Tensor{DType: ir.I32, Shape: []int64{1, 3}, Data: []int32{14, -16, 18}}},
		{"bool xor", binaryModel(t, "Xor", boo),
			&ir.Tensor{DType: ir.Bool, Shape: []int64{1, 3}, Data: []bool{true, false, true}},
			&ir.Tensor{DType: ir.Bool, Shape: []int64{1, 3}, Data: []bool{false, false, false}}},
		{"f16 identity", unaryModel(t, "Identity", f16, f16, []any{"n", 3}),
			&ir.Tensor{DType: ir.F16, Shape: []int64{1, 3}, Data: []uint16{0x3c00, 0xc000, 0x7bff}},
			&ir.Tensor{DType: ir.F16, Shape: []int64{1, 3}, Data: []uint16{0x3c00, 0xc000, 0x7bff}}},
		{"bf16 identity", unaryModel(t, "Identity", bf16, bf16, []any{"n", 3}),
			&ir.Tensor{DType: ir.BF16, Shape: []int64{1, 3}, Data: []uint16{0x3f80, 0xc000, 0x7f7f}},
			&ir.Tensor{DType: ir.BF16, Shape: []int64{1, 3}, Data: []uint16{0x3f80, 0xc000, 0x7f7f}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			inputs := []string{"a", "b"}
			feed := map[string]*ir.Tensor{"a": c.in, "b": c.in}
			output := "sum"
			if strings.HasSuffix(c.name, "identity") {
				inputs, feed, output = []string{"x"}, map[string]*ir.Tensor{"x": c.in}, "y"
			}
			s := newTestSession(t, c.model, inputs, []string{output})
			got := runOK(t, s, feed)[output]
			if got.DType != c.want.DType || !reflect.DeepEqual(got.Shape, c.want.Shape) || !reflect.DeepEqual(got.Data, c.want.Data) {
				t.Errorf("got %v%v %v, want %v%v %v", got.DType, got.Shape, got.Data, c.want.DType, c.want.Shape, c.want.Data)
			}
			if want := int64(c.want.Len() * c.want.DType.Size()); s.LastOutputBytes() != want {
				t.Errorf("LastOutputBytes = %d, want %d", s.LastOutputBytes(), want)
			}
		})
	}
}

// TestHalfCasts converts float to float16 and bfloat16 and back; the float16
// output shape comes from the symbolic dimension n of the input.
func TestHalfCasts(t *testing.T) {
	requireORT(t)
	values := []float32{1, -2.5, 0.099975586, 65504}
	for _, c := range []struct {
		elem    onnxpb.TensorProto_DataType
		dt      ir.DType
		convert func(float32) uint16
	}{{f16, ir.F16, ir.F32ToF16}, {bf16, ir.BF16, ir.F32ToBF16}} {
		t.Run(c.dt.String(), func(t *testing.T) {
			down := newTestSession(t, unaryModel(t, "Cast", f32, c.elem, []any{"n"}, intAttr("to", int64(c.elem))), []string{"x"}, []string{"y"})
			half := runOK(t, down, map[string]*ir.Tensor{"x": ir.FromF32(values, 4)})["y"]
			if half.DType != c.dt || !reflect.DeepEqual(half.Shape, []int64{4}) {
				t.Fatalf("cast output is %v%v, want %v[4]", half.DType, half.Shape, c.dt)
			}
			for i, v := range values {
				if got, want := half.U16()[i], c.convert(v); got != want {
					t.Errorf("cast(%v) = %#04x, want %#04x", v, got, want)
				}
			}
			if down.LastOutputBytes() != 8 {
				t.Errorf("LastOutputBytes = %d, want 8", down.LastOutputBytes())
			}

			up := newTestSession(t, unaryModel(t, "Cast", c.elem, f32, []any{"n"}, intAttr("to", int64(f32))), []string{"x"}, []string{"y"})
			back := runOK(t, up, map[string]*ir.Tensor{"x": half})["y"]
			for i := range values {
				if want := half.AsF32()[i]; back.F32()[i] != want {
					t.Errorf("widen(%#04x) = %v, want %v", half.U16()[i], back.F32()[i], want)
				}
			}
		})
	}
}

func TestHalfOutputShapeUnknown(t *testing.T) {
	requireORT(t)
	model := graphModel(t,
		[]*onnxpb.NodeProto{node("Cast", []string{"x"}, []string{"y"}, intAttr("to", int64(f16)))},
		[]*onnxpb.ValueInfoProto{tensorValue("x", f32, "n")},
		[]*onnxpb.ValueInfoProto{tensorValue("y", f16, "m")})
	s := newTestSession(t, model, []string{"x"}, []string{"y"})
	_, err := s.Run(map[string]*ir.Tensor{"x": ir.FromF32([]float32{1}, 1)})
	wantErr(t, err, `output "y"`, "dimension 0 (m)", "cast it to float")
}

func TestScalarInputAndOutput(t *testing.T) {
	requireORT(t)
	// y = sum(x * s) over all elements, with s a rank-0 input and y rank 0.
	model := graphModel(t,
		[]*onnxpb.NodeProto{
			node("Mul", []string{"x", "s"}, []string{"xs"}),
			node("ReduceSum", []string{"xs"}, []string{"y"}, intAttr("keepdims", 0)),
		},
		[]*onnxpb.ValueInfoProto{tensorValue("x", f32, "n"), tensorValue("s", f32)},
		[]*onnxpb.ValueInfoProto{tensorValue("y", f32)})
	s := newTestSession(t, model, []string{"x", "s"}, []string{"y"})
	scale := &ir.Tensor{DType: ir.F32, Shape: []int64{}, Data: []float32{2}}
	y := runOK(t, s, map[string]*ir.Tensor{"x": ir.FromF32([]float32{1, 2, 3}, 3), "s": scale})["y"]
	if len(y.Shape) != 0 || y.F32()[0] != 12 {
		t.Errorf("y = %v%v, want the scalar 12", y.Shape, y.F32())
	}
	if s.LastOutputBytes() != 4 {
		t.Errorf("LastOutputBytes = %d, want 4", s.LastOutputBytes())
	}
}

func TestRunInputNames(t *testing.T) {
	requireORT(t)
	s := newTestSession(t, binaryModel(t, "Add", f32), []string{"a", "b"}, []string{"sum"})
	x := ir.FromF32([]float32{1, 2, 3}, 1, 3)

	_, err := s.Run(map[string]*ir.Tensor{"a": x, "c": x})
	wantErr(t, err, `unknown input "c"`, `["a" "b"]`)

	_, err = s.Run(map[string]*ir.Tensor{"a": x})
	wantErr(t, err, `missing input "b"`)

	_, err = s.Run(map[string]*ir.Tensor{"a": x, "b": nil})
	wantErr(t, err, `input "b"`, "nil")
}

func TestNewSessionNames(t *testing.T) {
	requireORT(t)
	model := binaryModel(t, "Add", f32)
	cases := []struct {
		name            string
		inputs, outputs []string
		want            []string
	}{
		{"unknown input", []string{"a", "zz"}, []string{"sum"}, []string{`input "zz" is not a graph input`, `["a" "b"]`}},
		{"unknown output", []string{"a", "b"}, []string{"total"}, []string{`output "total" is not a graph output`, `["sum"]`}},
		{"repeated input", []string{"a", "a"}, []string{"sum"}, []string{`input "a" is listed twice`}},
		{"no outputs", []string{"a", "b"}, nil, []string{"no output names given"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := NewSessionFromBytes(model, c.inputs, c.outputs, DefaultOptions())
			wantErr(t, err, c.want...)
		})
	}
}

func TestRunInputChecks(t *testing.T) {
	requireORT(t)
	s := newTestSession(t, binaryModel(t, "Add", f32), []string{"a", "b"}, []string{"sum"})
	ok := ir.FromF32([]float32{1, 2, 3}, 1, 3)
	cases := []struct {
		name string
		a, b *ir.Tensor
		want []string
	}{
		{"dtype", ir.FromI64([]int64{1, 2, 3}, 1, 3), ok, []string{`input "a"`, "expected dtype f32, got i64"}},
		{"rank", ir.FromF32([]float32{1, 2, 3}, 3), ok, []string{`input "a"`, "expected shape [n 3] (rank 2), got [3] (rank 1)"}},
		{"fixed dimension", ir.FromF32([]float32{1, 2, 3, 4}, 1, 4), ok, []string{`input "a"`, "dimension 1 must be 3"}},
		{"symbolic dimension", ok, ir.FromF32(make([]float32, 6), 2, 3), []string{`input "b"`, "dimension 0 (n) is 2", `input "a", dimension 0,`, "size 1"}},
		{"data length", &ir.Tensor{DType: ir.F32, Shape: []int64{1, 3}, Data: []float32{1}}, ok, []string{`input "a"`, "needs 3 elements but Data has 1"}},
		{"data type", &ir.Tensor{DType: ir.F32, Shape: []int64{1, 3}, Data: []int64{1, 2, 3}}, ok, []string{`input "a"`, "dtype f32 but Data is []int64"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := s.Run(map[string]*ir.Tensor{"a": c.a, "b": c.b})
			wantErr(t, err, c.want...)
		})
	}
}

func TestUnsupportedElementType(t *testing.T) {
	requireORT(t)
	model := unaryModel(t, "Identity", u8, u8, []any{3})
	_, err := NewSessionFromBytes(model, []string{"x"}, []string{"y"}, DefaultOptions())
	wantErr(t, err, `input "x"`, "ONNX UINT8", "ir.Tensor cannot hold")
}

func TestRuntimeErrorIsWrapped(t *testing.T) {
	requireORT(t)
	// The inner dimension k is symbolic, so only ONNX Runtime detects that 5
	// does not match W's 4 rows.
	model := graphModel(t,
		[]*onnxpb.NodeProto{node("MatMul", []string{"x", "w"}, []string{"y"})},
		[]*onnxpb.ValueInfoProto{tensorValue("x", f32, "n", "k")},
		[]*onnxpb.ValueInfoProto{tensorValue("y", f32, "n", 3)},
		floatInitializer("w", []int64{4, 3}, make([]float32, 12)))
	s := newTestSession(t, model, []string{"x"}, []string{"y"})
	_, err := s.Run(map[string]*ir.Tensor{"x": ir.NewTensor(ir.F32, 2, 5)})
	wantErr(t, err, "run model bytes")
	// The session stays usable after a failed run.
	runOK(t, s, map[string]*ir.Tensor{"x": ir.NewTensor(ir.F32, 2, 4)})
}

func TestInvalidModelBytes(t *testing.T) {
	requireORT(t)
	_, err := NewSessionFromBytes([]byte("not a model"), []string{"x"}, []string{"y"}, DefaultOptions())
	wantErr(t, err, "model bytes")
}

func TestSessionClose(t *testing.T) {
	requireORT(t)
	s, err := NewSessionFromBytes(binaryModel(t, "Add", f32), []string{"a", "b"}, []string{"sum"}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	x := ir.FromF32([]float32{1, 2, 3}, 1, 3)
	runOK(t, s, map[string]*ir.Tensor{"a": x, "b": x}) // optimisation off works too
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	_, err = s.Run(map[string]*ir.Tensor{"a": x, "b": x})
	wantErr(t, err, "the session is closed")
}

func TestNegativeThreads(t *testing.T) {
	requireORT(t)
	_, err := NewSessionFromBytes(binaryModel(t, "Add", f32), []string{"a", "b"}, []string{"sum"}, Options{IntraOpThreads: -2})
	wantErr(t, err, "IntraOpThreads is -2")
}

func TestSessionNames(t *testing.T) {
	requireORT(t)
	s := newTestSession(t, binaryModel(t, "Add", f32), []string{"b", "a"}, []string{"sum"})
	if got := s.InputNames(); !reflect.DeepEqual(got, []string{"b", "a"}) {
		t.Errorf("InputNames = %v, want [b a]", got)
	}
	if got := s.OutputNames(); !reflect.DeepEqual(got, []string{"sum"}) {
		t.Errorf("OutputNames = %v, want [sum]", got)
	}
}

// TestExternalWeights loads a model whose MatMul weights sit at an offset
// inside a separate file next to the model, as linked safetensors do.
func TestExternalWeights(t *testing.T) {
	requireORT(t)
	dir := t.TempDir()
	const offset = 24
	weights := make([]byte, offset, offset+4*6)
	w := []float32{1, 2, 3, 4, 5, 6}
	for _, v := range w {
		weights = binary.LittleEndian.AppendUint32(weights, math.Float32bits(v))
	}
	if err := os.WriteFile(filepath.Join(dir, "weights.bin"), weights, 0o644); err != nil {
		t.Fatal(err)
	}
	wInit := &onnxpb.TensorProto{Name: proto.String("w"), Dims: []int64{2, 3}, DataType: proto.Int32(int32(f32))}
	onnxpb.SetExternal(wInit, onnxpb.ExternalRef{Location: "weights.bin", Offset: offset, Length: 24})
	model := graphModel(t,
		[]*onnxpb.NodeProto{node("MatMul", []string{"x", "w"}, []string{"y"})},
		[]*onnxpb.ValueInfoProto{tensorValue("x", f32, "n", 2)},
		[]*onnxpb.ValueInfoProto{tensorValue("y", f32, "n", 3)},
		wInit)
	path := filepath.Join(dir, "model.onnx")
	if err := os.WriteFile(path, model, 0o644); err != nil {
		t.Fatal(err)
	}

	s, err := NewSession(path, []string{"x"}, []string{"y"}, DefaultOptions())
	if err != nil {
		t.Fatalf("NewSession: %v", err)
	}
	defer s.Close()
	y := runOK(t, s, map[string]*ir.Tensor{"x": ir.FromF32([]float32{1, 0, 0, 1}, 2, 2)})["y"]
	if !reflect.DeepEqual(y.F32(), w) {
		t.Errorf("y = %v, want the weights %v", y.F32(), w)
	}
}

func TestConcurrentRuns(t *testing.T) {
	requireORT(t)
	s := newTestSession(t, binaryModel(t, "Add", f32), []string{"a", "b"}, []string{"sum"})
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n := int64(g + 1)
			a := ir.NewTensor(ir.F32, n, 3)
			for i := range a.F32() {
				a.F32()[i] = float32(g)
			}
			for range 20 {
				out, err := s.Run(map[string]*ir.Tensor{"a": a, "b": a})
				if err != nil {
					errs <- err
					return
				}
				if sum := out["sum"]; sum.Shape[0] != n || sum.F32()[0] != float32(2*g) {
					errs <- fmt.Errorf("goroutine %d: sum %v%v, want rows of %d", g, sum.Shape, sum.F32(), 2*g)
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

func TestProfileEnvWritesTrace(t *testing.T) {
	requireORT(t)
	prefix := filepath.Join(t.TempDir(), "run")
	t.Setenv(ProfileEnv, prefix)
	s := newTestSession(t, binaryModel(t, "Add", f32), []string{"a", "b"}, []string{"sum"})
	a := ir.NewTensor(ir.F32, 2, 3)
	runOK(t, s, map[string]*ir.Tensor{"a": a, "b": a})
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	files, err := filepath.Glob(prefix + "_*.json")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 1 {
		t.Fatalf("profile files %v, want one %s_<timestamp>.json", files, prefix)
	}
	data, err := os.ReadFile(files[0])
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(data), `"op_name" : "Add"`) && !strings.Contains(string(data), `"op_name":"Add"`) {
		t.Errorf("profile %s has no Add kernel event:\n%.400s", files[0], data)
	}
}

func TestProfileEnvMissingFolder(t *testing.T) {
	requireORT(t)
	prefix := filepath.Join(t.TempDir(), "absent", "run")
	t.Setenv(ProfileEnv, prefix)
	_, err := NewSessionFromBytes(binaryModel(t, "Add", f32), []string{"a", "b"}, []string{"sum"}, DefaultOptions())
	wantErr(t, err, ProfileEnv, "absent", "does not exist")
}
