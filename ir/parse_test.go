package ir

import (
	"errors"
	"flag"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/golden")

// testSplitOp is registered for tests only: the op table has no op with
// several results yet, and the text form must still read "%1, %2 = op".
const testSplitOp = "test_split_pair"

func init() {
	register(&OpDef{
		Name: testSplitOp, MinInputs: 1, MaxInputs: 1,
		Doc: "test only: the two halves of the last axis",
		Infer: func(in []*Value, a Attrs) ([]Type, error) {
			s := in[0].Type.Shape
			if s.Rank() == 0 || !s[len(s)-1].IsStatic() || s[len(s)-1].Size%2 != 0 {
				return nil, fmt.Errorf("last dimension of %v must be static and even", s)
			}
			half := s.Clone()
			half[len(s)-1] = D(s[len(s)-1].Size / 2)
			t := T(in[0].Type.DType, half)
			return []Type{t, t}, nil
		},
	})
}

// testGraph is a hand-written graph for the round-trip tests and the fuzz
// seed corpus. Its printed form is kept in testdata/golden/<name>.ir.
type testGraph struct {
	name  string
	build func(g *Graph)
}

func testGraphs() []testGraph {
	return []testGraph{
		{"unary", buildUnary},
		{"binary", buildBinary},
		{"constants", buildConstants},
		{"shapes", buildShapes},
		{"reductions", buildReductions},
		{"conv", buildConv},
		{"fused", buildFused},
		{"attributes", buildAttributes},
		{"multi_result", buildMultiResult},
		{"unnamed", buildUnnamed},
	}
}

func buildUnary(g *Graph) {
	x := g.Input("x", F32, Shape{S("batch"), D(4)})
	v := x
	for _, op := range []string{"neg", "exp", "log", "sqrt", "rsqrt", "reciprocal", "sigmoid", "silu", "tanh", "sin", "cos", "abs"} {
		v = g.Op(op, nil, v)
	}
	g.SetOutput("y", v)
	mask := g.Input("mask", Bool, Static(4))
	g.SetOutput("not_mask", g.Op("not", nil, mask))
}

func buildBinary(g *Graph) {
	a := g.Input("a", F32, Static(2, 3))
	b := g.Param("layer.0.bias", F32, Static(3), nil)
	v := a
	for _, op := range []string{"add", "sub", "mul", "div", "pow", "max", "min"} {
		v = g.Op(op, nil, v, b)
	}
	eq := g.Op("equal", nil, v, a)
	lt := g.Op("less", nil, v, b)
	gt := g.Op("greater", nil, b, v)
	both := g.Op("and", nil, eq, lt)
	either := g.Op("or", nil, both, gt)
	g.SetOutput("picked", g.Op("where", nil, either, v, b))
}

func buildConstants(g *Graph) {
	x := g.Input("x", F32, Static(3))
	f32 := g.Constant(FromF32([]float32{0, float32(math.Copysign(0, -1)), float32(math.Inf(1)), float32(math.Inf(-1)),
		float32(math.NaN()), -math.MaxFloat32, 1e-5, 3.25, 1e-45}, 9))
	f64 := g.Constant(FromF64([]float64{math.Pi, 1e300, -2}, 3))
	i64 := g.Constant(FromI64([]int64{math.MinInt64, math.MaxInt64, 0, -1}, 2, 2))
	i32 := NewTensor(I32, 2)
	copy(i32.I32(), []int32{math.MinInt32, 7})
	bools := NewTensor(Bool, 3)
	copy(bools.Bools(), []bool{true, false, true})
	f16 := NewTensor(F16, 2)
	copy(f16.U16(), []uint16{F32ToF16(1), F32ToF16(-65504)})
	bf16 := NewTensor(BF16, 1, 2)
	copy(bf16.U16(), []uint16{F32ToBF16(1.5), 0x7fc0})
	large := NewTensor(F32, 10, 10)
	for i := range large.F32() {
		large.F32()[i] = float32(i) / 7
	}
	for _, t := range []*Tensor{i32, bools, f16, bf16, NewTensor(F32, 0)} {
		g.SetOutput(fmt.Sprintf("%v_const", t.DType)+strings.Repeat("_empty", boolInt(t.Len() == 0)), g.Constant(t))
	}
	g.SetOutput("f32", g.Op("add", nil, x, g.Op("slice", Attrs{"starts": []int64{0}, "ends": []int64{3}, "axes": []int64{0}}, f32)))
	g.SetOutput("f64", f64)
	g.SetOutput("i64", g.Op("cast", Attrs{"to": BF16}, i64))
	g.SetOutput("large", g.Constant(large))
	g.SetOutput("scalar", g.Op("mul", nil, x, g.Scalar(F32, -0.5)))
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

func buildShapes(g *Graph) {
	x := g.Input("x", F32, Shape{S("batch"), S("seq"), D(8)})
	r := g.Op("reshape", Attrs{"shape": []int64{0, 0, 2, 4}}, x)
	t := g.Op("transpose", Attrs{"perm": []int64{0, 2, 1, 3}}, r)
	u := g.Op("unsqueeze", Attrs{"axes": []int64{0, -1}}, t)
	s := g.Op("squeeze", Attrs{"axes": []int64{0, 5}}, u)
	back := g.Op("transpose", Attrs{"perm": []int64{0, 2, 1, 3}}, s)
	back = g.Op("reshape", Attrs{"shape": []int64{0, 0, -1}}, back)
	rev := g.Op("slice", Attrs{"starts": []int64{-1}, "ends": []int64{-100}, "axes": []int64{2}, "steps": []int64{-2}}, back)
	g.SetOutput("joined", g.Op("concat", Attrs{"axis": int64(2)}, back, rev, rev))
	table := g.Param("model.wte.weight", BF16, Static(10, 8), nil)
	ids := g.Input("ids", I64, Shape{S("batch"), S("seq")})
	g.SetOutput("embedded", g.Op("gather", Attrs{"axis": int64(0)}, table, ids))
}

func buildReductions(g *Graph) {
	x := g.Input("x", F32, Shape{S("batch"), D(3), D(5)})
	g.SetOutput("mean", g.Op("reduce_mean", Attrs{"axes": []int64{-1}, "keepdims": int64(1)}, x))
	g.SetOutput("sum", g.Op("reduce_sum", Attrs{"axes": []int64{0, 2}, "keepdims": int64(0)}, x))
	g.SetOutput("max", g.Op("reduce_max", Attrs{"axes": []int64{1}}, x))
	g.SetOutput("softmax", g.Op("softmax", Attrs{"axis": int64(-1)}, x))
	g.SetOutput("argmax", g.Op("argmax", Attrs{"axis": int64(-1), "keepdims": int64(1)}, x))
	g.SetOutput("positions", g.Op("arange", Attrs{"axis": int64(2), "dtype": F32}, x))
}

func buildConv(g *Graph) {
	x := g.Input("image", F32, Shape{S("batch"), D(4), D(8), D(8)})
	w := g.Param("encoder.conv_in.weight", F32, Static(8, 4, 3, 3), nil)
	b := g.Param("encoder.conv_in.bias", F32, Static(8), nil)
	y := g.Op("conv2d", Attrs{"strides": []int64{2, 2}, "pads": []int64{1, 1, 1, 1}}, x, w, b)
	scale := g.Param("encoder.norm.weight", F32, Static(8), nil)
	y = g.Op("group_norm", Attrs{"groups": int64(2), "eps": 1e-6}, y, scale, b)
	y = g.Op("resize_nearest", Attrs{"scale": int64(2)}, y)
	w2 := g.Param("encoder.conv_out.weight", F32, Static(4, 8, 1, 1), nil)
	y = g.Op("conv2d", nil, y, w2)
	g.SetOutput("padded", g.Op("pad", Attrs{"pads": []int64{0, 0, 1, 0, 0, 0, 0, 2}, "value": 0.5}, y))
}

func buildFused(g *Graph) {
	x := g.Input("x", F32, Shape{S("batch"), S("seq"), D(16)})
	w := g.Param("norm.weight", F32, Static(16), nil)
	h := g.Op("rms_norm", Attrs{"eps": 1e-5}, x, w)
	up := g.Param("up.weight", F32, Static(32, 16), nil)
	proj := g.Op("matmul", nil, h, g.Op("transpose", Attrs{"perm": []int64{1, 0}}, up))
	g.SetOutput("mlp", g.Op("swiglu", nil, proj, proj))
	q := g.Op("transpose", Attrs{"perm": []int64{0, 2, 1, 3}}, g.Op("reshape", Attrs{"shape": []int64{0, 0, 2, 8}}, h))
	bias := g.Input("bias", F32, Shape{S("batch"), D(1), S("seq"), S("seq")})
	g.SetOutput("attn", g.Op("attention", Attrs{"scale": 0.35355339059327373}, q, q, q))
	g.SetOutput("attn_bias", g.Op("attention", Attrs{"scale": 0.125}, q, q, q, bias))
	cos := g.Input("cos", F32, Shape{S("seq"), D(4)})
	g.SetOutput("rotated", g.Op("rope", nil, q, cos, cos))
}

func buildAttributes(g *Graph) {
	g.Meta = map[string]string{
		"seq_lengths": "[64,128]",
		"quoted":      "tab\there \"quotes\" back\\slash é \x00",
		"":            "empty key",
	}
	x := g.Input("x", F32, Static(2))
	y := g.Op("add", Attrs{
		"note":    "tab\t \"quoted\" é\n",
		"floats":  []float64{1.5, math.Copysign(0, -1), math.Inf(1), math.NaN(), 1e-300},
		"ints":    []int64{math.MinInt64, 0, math.MaxInt64},
		"empty":   []int64{},
		"dt":      F16,
		"big":     1e21,
		"neg_inf": math.Inf(-1),
		"whole":   2.0,
		"minus":   int64(-3),
		"blank":   "",
	}, x, x)
	g.SetOutput("y", y)
	g.SetOutput("y_again", y)
}

func buildMultiResult(g *Graph) {
	x := g.Input("x", F32, Shape{S("batch"), D(6)})
	parts := g.AddNode(testSplitOp, nil, x)
	g.SetOutput("sum", g.Op("add", nil, parts[1], parts[0]))
	g.SetOutput("second", parts[1])
}

// buildUnnamed declares an input and a parameter without names, which the
// printer numbers like results.
func buildUnnamed(g *Graph) {
	x := g.Input("", F32, Static(2))
	p := g.Param("", F32, Static(2), nil)
	g.SetOutput("y", g.Op("mul", nil, x, p))
}

func mustBuild(t testing.TB, tg testGraph) *Graph {
	t.Helper()
	g, err := Build(tg.name, tg.build)
	if err != nil {
		t.Fatalf("building %s: %v", tg.name, err)
	}
	if err := Verify(g); err != nil {
		t.Fatalf("built graph %s fails Verify: %v", tg.name, err)
	}
	return g
}

func TestRoundTripTestGraphs(t *testing.T) {
	for _, tg := range testGraphs() {
		t.Run(tg.name, func(t *testing.T) {
			g := mustBuild(t, tg)
			text := g.String()
			checkGolden(t, filepath.Join("testdata", "golden", tg.name+".ir"), text)

			parsed, err := ParseString(text)
			if err != nil {
				t.Fatalf("parse printed graph: %v\n%s", err, text)
			}
			if err := Verify(parsed); err != nil {
				t.Fatalf("parsed graph fails Verify: %v", err)
			}
			if again := parsed.String(); again != text {
				t.Fatalf("print(parse(text)) differs from text\n--- text\n%s--- again\n%s", text, again)
			}
			compareGraphs(t, g, parsed)
		})
	}
}

func checkGolden(t *testing.T, path, got string) {
	t.Helper()
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./ir -run TestRoundTripTestGraphs -update to create it)", err)
	}
	if string(want) != got {
		t.Errorf("printed form differs from %s (rerun with -update if the change is intended)\n--- want\n%s--- got\n%s", path, want, got)
	}
}

// compareGraphs checks what the text cannot show by printing alone: value
// kinds, names, nil parameter sources and constant data.
func compareGraphs(t *testing.T, want, got *Graph) {
	t.Helper()
	if got.Name != want.Name {
		t.Errorf("name %q, want %q", got.Name, want.Name)
	}
	if len(want.Meta) > 0 && !reflect.DeepEqual(got.Meta, want.Meta) {
		t.Errorf("meta %q, want %q", got.Meta, want.Meta)
	}
	if len(got.Inputs) != len(want.Inputs) || len(got.Params) != len(want.Params) ||
		len(got.Consts) != len(want.Consts) || len(got.Nodes) != len(want.Nodes) || len(got.Outputs) != len(want.Outputs) {
		t.Fatalf("counts (inputs, params, consts, nodes, outputs) = (%d,%d,%d,%d,%d), want (%d,%d,%d,%d,%d)",
			len(got.Inputs), len(got.Params), len(got.Consts), len(got.Nodes), len(got.Outputs),
			len(want.Inputs), len(want.Params), len(want.Consts), len(want.Nodes), len(want.Outputs))
	}
	for i, v := range got.Inputs {
		if v.Name != want.Inputs[i].Name || v.Kind != KindInput {
			t.Errorf("input %d is %q (kind %d), want %q", i, v.Name, v.Kind, want.Inputs[i].Name)
		}
	}
	for i, v := range got.Params {
		if v.Name != want.Params[i].Name || v.Kind != KindParam || v.Source != nil {
			t.Errorf("param %d is %q (kind %d, source %v), want %q with nil source", i, v.Name, v.Kind, v.Source, want.Params[i].Name)
		}
	}
	for i, v := range got.Consts {
		compareConst(t, i, want.Consts[i].Const, v.Const)
	}
	for i, n := range got.Nodes {
		w := want.Nodes[i]
		if n.Op != w.Op || len(n.Inputs) != len(w.Inputs) || len(n.Outputs) != len(w.Outputs) {
			t.Errorf("node %d is %s with %d operands and %d results, want %s with %d and %d",
				i, n.Op, len(n.Inputs), len(n.Outputs), w.Op, len(w.Inputs), len(w.Outputs))
		}
	}
}

func compareConst(t *testing.T, i int, want, got *Tensor) {
	t.Helper()
	if got.DType != want.DType || !reflect.DeepEqual(got.Shape, want.Shape) {
		t.Errorf("const %d is %v%v, want %v%v", i, got.DType, got.Shape, want.DType, want.Shape)
		return
	}
	if want.Len() > MaxInlineConst {
		if od, ok := got.Data.(OpaqueData); !ok || string(od) != Digest(want) {
			t.Errorf("const %d data is %v, want OpaqueData(%s)", i, got.Data, Digest(want))
		}
		return
	}
	// Byte comparison keeps NaN and -0 exact.
	if g, w := TensorBytes(got), TensorBytes(want); !reflect.DeepEqual(g, w) {
		t.Errorf("const %d bytes %x, want %x", i, g, w)
	}
}

func TestTestGraphsCoverEveryOp(t *testing.T) {
	seen := map[string]bool{}
	for _, tg := range testGraphs() {
		for _, n := range mustBuild(t, tg).Nodes {
			seen[n.Op] = true
		}
	}
	for _, op := range OpNames() {
		if !seen[op] {
			t.Errorf("op %s appears in no test graph; add it to testGraphs", op)
		}
	}
}

func TestParseReadsHandWrittenText(t *testing.T) {
	// Comments, blank lines, CRLF line ends, named results and a numbered
	// input label are accepted and normalised by the printer.
	src := "// a comment before the graph\r\n" +
		"\n" +
		"graph @hand {   // trailing comment\r\n" +
		"  input %7 : f32[n,2]\r\n" +
		"\n" +
		"  const %two:f32[]=[2]\n" +
		"  %scaled = mul %7,%two : f32[n,2]\n" +
		"  %h16 = cast %scaled {to=f16} : f16[n,2]\n" +
		"  output out = %h16\n" +
		"}"
	want := "graph @hand {\n" +
		"  input %0 : f32[n,2]\n" +
		"  const %1 : f32[] = [2.0]\n" +
		"  %2 = mul %0, %1 : f32[n,2]\n" +
		"  %3 = cast %2 {to=f16} : f16[n,2]\n" +
		"  output out = %3\n" +
		"}\n"
	g, err := ParseString(src)
	if err != nil {
		t.Fatal(err)
	}
	if got := g.String(); got != want {
		t.Errorf("printed\n%s\nwant\n%s", got, want)
	}
	if g.Inputs[0].Name != "" {
		t.Errorf("input labelled %%7 got name %q; a numeric label is not a name", g.Inputs[0].Name)
	}
}

func TestParseConstForms(t *testing.T) {
	src := `graph @c {
  const %0 : f16[2] = [0x3c00, 1.5]
  const %1 : bf16[] = [-2]
  const %2 : f32[1000,1000] = dense<sha256:00ff00ff00ff00ff>
  const %3 : i32[0] = []
  const %4 : bool[2] = [true, 0]
  const %5 : f32[3] = dense<missing>
  output a = %0
}
`
	g, err := ParseString(src)
	if err != nil {
		t.Fatal(err)
	}
	if got := g.Consts[0].Const.U16(); got[0] != 0x3c00 || got[1] != F32ToF16(1.5) {
		t.Errorf("f16 data %#x, want [0x3c00 %#x]", got, F32ToF16(1.5))
	}
	if got := g.Consts[1].Const.U16()[0]; got != F32ToBF16(-2) {
		t.Errorf("bf16 data %#x, want %#x", got, F32ToBF16(-2))
	}
	if od, ok := g.Consts[2].Const.Data.(OpaqueData); !ok || od != "sha256:00ff00ff00ff00ff" {
		t.Errorf("digest const data %v, want OpaqueData", g.Consts[2].Const.Data)
	}
	if !reflect.DeepEqual(g.Consts[2].Const.Shape, []int64{1000, 1000}) {
		t.Errorf("digest const shape %v, want [1000 1000]", g.Consts[2].Const.Shape)
	}
	if got := g.Consts[4].Const.Bools(); !got[0] || got[1] {
		t.Errorf("bool data %v, want [true false]", got)
	}
	if g.Consts[5].Const != nil {
		t.Errorf("dense<missing> gave %v, want a nil tensor", g.Consts[5].Const)
	}
	if again, err := ParseString(g.String()); err != nil || again.String() != g.String() {
		t.Errorf("second round trip failed: %v", err)
	}
}

func TestParseEmptyListIsNilInts(t *testing.T) {
	g, err := ParseString("graph @g {\n  input %x : f32[2]\n  %0 = neg %x {l=[]} : f32[2]\n  output y = %0\n}\n")
	if err != nil {
		t.Fatal(err)
	}
	v, ok := g.Nodes[0].Attrs["l"].([]int64)
	if !ok || v != nil {
		t.Errorf("attribute l = %#v, want []int64(nil)", g.Nodes[0].Attrs["l"])
	}
}

type failingReader struct{}

func (failingReader) Read([]byte) (int, error) { return 0, errors.New("disk on fire") }

func TestParseReportsReadError(t *testing.T) {
	_, err := Parse(failingReader{})
	if err == nil || !strings.Contains(err.Error(), "read IR text: disk on fire") {
		t.Errorf("error %v, want it to wrap the read error", err)
	}
}

func TestParseFromReader(t *testing.T) {
	g := mustBuild(t, testGraphs()[0])
	parsed, err := Parse(strings.NewReader(g.String()))
	if err != nil {
		t.Fatal(err)
	}
	if parsed.String() != g.String() {
		t.Error("Parse(reader) differs from the printed graph")
	}
}

func TestParseErrors(t *testing.T) {
	// head declares %x : f32[2,3] and %w : f32[3,4] on lines 2 and 3.
	const head = "graph @g {\n  input %x : f32[2,3]\n  param %w : f32[3,4]\n"
	cases := []struct {
		name, src, want string
	}{
		// Unknown names.
		{"unknown op", head + "  %0 = frobnicate %x : f32[2,3]\n}\n",
			`4:8: unknown op "frobnicate"`},
		{"undefined value", head + "  %0 = neg %y : f32[2,3]\n}\n",
			"4:12: undefined value %y: values must be defined on an earlier line"},
		{"use before definition", head + "  %0 = neg %1 : f32[2,3]\n  %1 = neg %x : f32[2,3]\n}\n",
			"4:12: undefined value %1"},
		{"undefined output", head + "  output y = %3\n}\n",
			"4:14: undefined value %3"},
		{"printer's undefined marker", head + "  %0 = neg %<undefined 5> : f32[2,3]\n}\n",
			"4:12: expected a value name after '%'"},
		{"unknown dtype", head + "  param %z : f31[2]\n}\n",
			`4:14: unknown dtype "f31" (want one of f32, f16, bf16, f64, i64, i32, bool)`},

		// Types.
		{"result type mismatch", head + "  %0 = matmul %x, %w : f32[2,3]\n}\n",
			"4:24: op matmul: result %0 is printed as f32[2,3], but type inference gives f32[2,4]"},
		{"result dtype mismatch", head + "  %0 = neg %x : f16[2,3]\n}\n",
			"4:17: op neg: result %0 is printed as f16[2,3], but type inference gives f32[2,3]"},
		{"inference error", head + "  %0 = matmul %w, %x : f32[3,3]\n}\n",
			"4:8: op matmul: inner dimensions differ: [3,4] x [2,3]"},
		{"operand count", head + "  %0 = neg %x, %w : f32[2,3]\n}\n",
			"4:8: op neg: takes 1 to 1 operands, got 2"},
		{"result count", head + "  %0, %1 = neg %x : f32[2,3], f32[2,3]\n}\n",
			"4:3: op neg defines 1 results, the line names 2"},
		{"types fewer than results", head + "  %0, %1 = neg %x : f32[2,3]\n}\n",
			"4:21: op neg: 2 results are named but 1 result types follow"},
		{"attribute of wrong kind", head + "  %0 = transpose %x {perm=1.5} : f32[3,2]\n}\n",
			"4:8: op transpose: type inference failed"},
		{"type rule panics", "graph @g {\n  input %x : f32[1,1,4,4]\n  input %w : f32[1,1,1,1]\n  %0 = conv2d %x, %w {strides=[0,1]} : f32[1,1,4,4]\n}\n",
			"4:8: op conv2d: type inference failed: runtime error: integer divide by zero (attributes: {strides: integer list})"},
		{"bad dimension", head + "  param %z : f32[2,-x]\n}\n",
			`4:20: invalid dimension "-x"`},
		{"dimension out of range", head + "  param %z : f32[99999999999999999999]\n}\n",
			"4:18: dimension 99999999999999999999 is out of the int64 range"},
		{"symbolic const", head + "  const %c : f32[n] = [1.0]\n}\n",
			"4:14: const type f32[n] needs a static shape of sizes >= 0"},

		// Duplicates.
		{"duplicate value", head + "  %0 = neg %x : f32[2,3]\n  %0 = neg %x : f32[2,3]\n}\n",
			"5:3: value %0 is already defined at line 4"},
		{"duplicate input name", "graph @g {\n  input %x : f32[1]\n  input %x : f32[1]\n}\n",
			"3:9: value %x is already defined at line 2"},
		{"input after param", head + "  input %v : f32[1]\n}\n",
			"4:3: input statement after param statements"},
		{"duplicate param name", "graph @g {\n  param %w : f32[1]\n  param %w : f32[1]\n}\n",
			"3:9: value %w is already defined at line 2"},
		{"duplicate output", head + "  output y = %x\n  output y = %w\n}\n",
			"5:10: output y is already defined at line 4"},
		{"duplicate meta key", "graph @g {\n  meta \"k\" = \"1\"\n  meta \"k\" = \"2\"\n}\n",
			`3:8: meta key "k" is given twice`},
		{"duplicate attribute", head + "  %0 = neg %x {a=1, a=2} : f32[2,3]\n}\n",
			"4:21: attribute a is given twice"},

		// Attribute syntax.
		{"attribute without value", head + "  %0 = neg %x {a=} : f32[2,3]\n}\n",
			"4:18: expected a value for attribute a (an integer, a float, a quoted string, a dtype or a list), found '}'"},
		{"attribute without =", head + "  %0 = neg %x {a 1} : f32[2,3]\n}\n",
			"4:18: expected '=' after attribute a, found \"1\""},
		{"attribute bad number", head + "  %0 = neg %x {a=1.2.3} : f32[2,3]\n}\n",
			`4:18: invalid float "1.2.3" in attribute a`},
		{"attribute bare word", head + "  %0 = neg %x {a=relu} : f32[2,3]\n}\n",
			`4:18: invalid value "relu" for attribute a: expected an integer, a float (with '.', 'e', inf or nan), a quoted string, a dtype name or a list`},
		{"attribute integer overflow", head + "  %0 = neg %x {a=9223372036854775808} : f32[2,3]\n}\n",
			"4:18: integer 9223372036854775808 in attribute a is out of the int64 range"},
		{"attribute mixed list", head + "  %0 = neg %x {a=[1,2.0]} : f32[2,3]\n}\n",
			"4:21: attribute a: list mixes integers and floats"},
		{"attribute dtype in list", head + "  %0 = neg %x {a=[f32]} : f32[2,3]\n}\n",
			"4:19: attribute a: a list holds integers or floats, not the dtype f32"},
		{"attribute missing comma", head + "  %0 = neg %x {a=1 b=2} : f32[2,3]\n}\n",
			"4:20: expected ',' or '}' after the value of attribute a, found \"b\""},
		{"attribute unterminated string", head + "  %0 = neg %x {a=\"abc} : f32[2,3]\n}\n",
			"4:18: string literal is not terminated before the end of the line"},
		{"attribute bad escape", head + "  %0 = neg %x {a=\"\\q\"} : f32[2,3]\n}\n",
			`4:18: invalid string literal "\q"`},
		{"unexpected character", head + "  %0 = neg %x {a=$} : f32[2,3]\n}\n",
			"4:18: unexpected character '$'"},

		// Constants.
		{"const count", head + "  const %c : f32[2,2] = [1.0,2.0,3.0]\n}\n",
			"4:25: const of type f32[2,2] needs 4 values, the list has 3"},
		{"const value range", head + "  const %c : i32[1] = [3000000000]\n}\n",
			`4:24: invalid i32 value "3000000000" in const data: value out of range`},
		{"const f32 overflow", head + "  const %c : f32[1] = [1e39]\n}\n",
			`4:24: invalid f32 value "1e39" in const data: value out of range`},
		{"const bad bool", head + "  const %c : bool[1] = [yes]\n}\n",
			`4:25: invalid bool value "yes" in const data: invalid syntax`},
		{"const bad digest", head + "  const %c : f32[100] = dense<sha256:xyz>\n}\n",
			`4:38: digest "xyz" is not hexadecimal`},
		{"const unknown digest", head + "  const %c : f32[100] = dense<md5:00>\n}\n",
			`4:31: unknown digest "md5" in dense<...>: expected sha256:<hex> or missing`},

		// Structure and truncation.
		{"empty input", "",
			"1:1: expected 'graph @name {' to start the text, found end of input"},
		{"missing graph name", "graph g {\n}\n",
			`1:7: expected the graph name as @name, found "g"`},
		{"truncated before brace", head,
			"4:1: unexpected end of input: expected a statement or '}' closing graph @g"},
		{"truncated mid statement", head + "  %0 = neg %x : f32[2,",
			"4:23: expected a dimension (a size or a symbol name) or ']', found end of input"},
		{"truncated after equals", head + "  %0 =",
			"4:7: expected an op name, found end of input"},
		{"trailing text", head + "}\ngraph @h {\n}\n",
			"5:1: unexpected \"graph\" after the '}' closing graph @g; the text holds one graph"},
		{"junk after statement", head + "  output y = %x %w\n}\n",
			"4:17: expected end of line after the output statement, found %w"},
		{"unknown statement", head + "  return %x\n}\n",
			`4:3: expected a statement (meta, input, param, const, %result = op ..., output) or '}', found "return"`},
		{"operand after comma", head + "  %0 = add %x, {a=1} : f32[2,3]\n}\n",
			"4:16: expected an operand as %name after ',', found '{'"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			g, err := ParseString(c.src)
			if err == nil {
				t.Fatalf("parse succeeded, want error %q; printed:\n%s", c.want, g)
			}
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Errorf("error %T is not a *ParseError", err)
			}
			if !strings.HasPrefix(err.Error(), c.want) {
				t.Errorf("error\n  %s\nwant prefix\n  %s", err, c.want)
			}
		})
	}
}

func TestParseRejectsEveryTruncation(t *testing.T) {
	for _, tg := range testGraphs() {
		text := mustBuild(t, tg).String()
		end := strings.LastIndexByte(text, '}')
		for i := 0; i < end; i++ {
			if _, err := ParseString(text[:i]); err == nil {
				t.Fatalf("%s: prefix of %d bytes parsed without error:\n%s", tg.name, i, text[:i])
			}
		}
	}
}

// TestDocExampleParses keeps the example in the package documentation
// true: it must parse and print back unchanged.
func TestDocExampleParses(t *testing.T) {
	src, err := os.ReadFile("doc.go")
	if err != nil {
		t.Fatal(err)
	}
	var example strings.Builder
	inside := false
	for _, line := range strings.Split(string(src), "\n") {
		if strings.HasPrefix(line, "//\tgraph @") {
			inside = true
		}
		if inside {
			example.WriteString(strings.TrimPrefix(line, "//\t") + "\n")
			if line == "//\t}" {
				break
			}
		}
	}
	if example.Len() == 0 {
		t.Fatal("doc.go has no example graph")
	}
	g, err := ParseString(example.String())
	if err != nil {
		t.Fatalf("doc example: %v\n%s", err, example.String())
	}
	if got := g.String(); got != example.String() {
		t.Errorf("doc example prints differently\n--- doc\n%s--- printed\n%s", example.String(), got)
	}
}
