package ascend

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/mmadac/mmadac/codegen/atc"
	"github.com/mmadac/mmadac/codegen/onnx"
	"github.com/mmadac/mmadac/ir"
	"github.com/mmadac/mmadac/passes"
)

func TestWriteWeights(t *testing.T) {
	dir := t.TempDir()
	g := ir.NewGraph("g")
	f32 := make([]byte, 16)
	binary.LittleEndian.PutUint32(f32[4:], math.Float32bits(1.5))
	bf16 := []byte{0x80, 0x3f, 0x00, 0xc0} // 1.0, -2.0
	g.Param("model.a.weight", ir.F32, ir.Static(2, 2), memSource{f32})
	b := g.Param("model.b.weight", ir.F16, ir.Static(2), passes.NewConvertedSource("model.b.weight", memSource{bf16}, ir.BF16, 2))
	files, err := WriteWeights(g, dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 2 || files[0].File != "model.a.weight.bin" || files[1].Tensor != b.Name {
		t.Fatalf("files %+v", files)
	}
	for i, want := range [][]byte{f32, {0x00, 0x3c, 0x00, 0xc0}} {
		got, err := os.ReadFile(filepath.Join(dir, files[i].File))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s holds % x, want % x", files[i].File, got, want)
		}
		sum := sha256.Sum256(want)
		if files[i].SHA256 != hex.EncodeToString(sum[:]) || files[i].Size != int64(len(want)) {
			t.Errorf("%s: manifest entry %+v does not match the contents", files[i].File, files[i])
		}
	}
	if files[1].DType != ir.F16 || !slices.Equal(files[1].Shape, []int64{2}) {
		t.Errorf("entry of the converted weight: %+v", files[1])
	}
	leftovers, _ := filepath.Glob(filepath.Join(dir, ".tmp-*"))
	if len(leftovers) > 0 {
		t.Errorf("temporary files left: %v", leftovers)
	}
}

func TestWriteWeightsKeepsZerosSparse(t *testing.T) {
	dir := t.TempDir()
	g := ir.NewGraph("g")
	data := make([]byte, 4<<20)
	data[len(data)-1] = 1
	g.Param("big", ir.F32, ir.Static(1<<20), memSource{data})
	files, err := WriteWeights(g, dir)
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(filepath.Join(dir, files[0].File))
	if err != nil {
		t.Fatal(err)
	}
	if st.Size() != int64(len(data)) {
		t.Fatalf("file has %d bytes, want %d", st.Size(), len(data))
	}
	got, _ := os.ReadFile(filepath.Join(dir, files[0].File))
	if !bytes.Equal(got, data) {
		t.Error("sparse file reads back different bytes")
	}
	if sys, ok := st.Sys().(*syscall.Stat_t); ok && sys.Blocks*512 > 1<<20 {
		t.Errorf("4 MiB of mostly zeros take %d bytes on disk; want holes", sys.Blocks*512)
	}
}

func TestWriteWeightsRejects(t *testing.T) {
	for name, tc := range map[string]struct {
		build func(g *ir.Graph)
		want  string
	}{
		"collision": {func(g *ir.Graph) {
			g.Param("a/b", ir.F32, ir.Static(1), memSource{make([]byte, 4)})
			g.Param("a_b", ir.F32, ir.Static(1), memSource{make([]byte, 4)})
		}, "both map to file a_b.bin"},
		"no data": {func(g *ir.Graph) { g.Param("w", ir.F32, ir.Static(1), nil) }, "weight w has no data"},
		"short": {func(g *ir.Graph) { g.Param("w", ir.F32, ir.Static(2), memSource{make([]byte, 4)}) },
			"the source gave 4 bytes, f32[2] needs 8"},
		"overflow": {func(g *ir.Graph) {
			g.Param("w", ir.F16, ir.Static(1), passes.NewConvertedSource("w", memSource{[]byte{0x80, 0x47}}, ir.BF16, 1)) // 65536
		}, "beyond float16's range"},
	} {
		dir := t.TempDir()
		g := ir.NewGraph("g")
		tc.build(g)
		if _, err := WriteWeights(g, dir); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one containing %q", name, err, tc.want)
		}
		if left, _ := filepath.Glob(filepath.Join(dir, ".tmp-*")); len(left) > 0 {
			t.Errorf("%s: temporary files left: %v", name, left)
		}
	}
}

func TestPerTensorFileNames(t *testing.T) {
	for in, want := range map[string]string{
		"model.transformer.blocks.0.q_proj.weight": "model.transformer.blocks.0.q_proj.weight.bin",
		"a/b c:d": "a_b_c_d.bin",
		"é-x":     "_-x.bin",
	} {
		if got := onnx.PerTensorFile(in); got != want {
			t.Errorf("PerTensorFile(%q) = %q, want %q", in, got, want)
		}
	}
}

func transformerInputs() *ir.Graph {
	g := ir.NewGraph("transformer")
	ids := g.Input("input_ids", ir.I64, ir.Shape{ir.S("batch"), ir.S("seq")})
	g.Input("attention_mask", ir.I64, ir.Shape{ir.S("batch"), ir.S("seq")})
	g.SetOutput("logits", g.Op("cast", ir.Attrs{"to": ir.F32}, ids))
	return g
}

func TestShapePlanGears(t *testing.T) {
	g := transformerInputs()
	p := ShapePlan{Fixed: map[string]int64{"batch": 1}, Gear: "seq", Values: []int64{1539, 512}}
	shapes, gears, err := p.ATC(g)
	if err != nil {
		t.Fatal(err)
	}
	want := []atc.InputShape{{Name: "input_ids", Dims: []int64{1, -1}}, {Name: "attention_mask", Dims: []int64{1, -1}}}
	if len(shapes) != 2 || !slices.Equal(shapes[0].Dims, want[0].Dims) || shapes[1].Name != want[1].Name || !slices.Equal(shapes[1].Dims, want[1].Dims) {
		t.Errorf("input shapes %v, want %v", shapes, want)
	}
	if len(gears) != 2 || !slices.Equal(gears[0], []int64{512, 512}) || !slices.Equal(gears[1], []int64{1539, 1539}) {
		t.Errorf("gears %v, want [[512 512] [1539 1539]]", gears)
	}
	o := atc.Options{Model: "m.onnx", Output: "m", SoC: "Ascend910B3", InputShapes: shapes, DynamicDims: gears}
	args, err := o.Args()
	if err != nil {
		t.Fatal(err)
	}
	joined := strings.Join(args, " ")
	if !strings.Contains(joined, "--input_shape=input_ids:1,-1;attention_mask:1,-1 --dynamic_dims=512,512;1539,1539") {
		t.Errorf("ATC arguments %q", joined)
	}
	ins, outs, err := p.Tensors(g)
	if err != nil {
		t.Fatal(err)
	}
	if ins[0].String() != "input_ids i64[1(batch),-1(seq)]" || outs[0].String() != "logits f32[1(batch),-1(seq)]" {
		t.Errorf("manifest tensors %v %v", ins, outs)
	}
}

func TestShapePlanStatic(t *testing.T) {
	shapes, gears, err := ShapePlan{Fixed: map[string]int64{"batch": 2}, Gear: "seq", Values: []int64{256}}.ATC(transformerInputs())
	if err != nil {
		t.Fatal(err)
	}
	if gears != nil || !slices.Equal(shapes[0].Dims, []int64{2, 256}) {
		t.Errorf("static plan gave shapes %v gears %v", shapes, gears)
	}
}

func TestShapePlanRejects(t *testing.T) {
	g := transformerInputs()
	for name, tc := range map[string]struct {
		p    ShapePlan
		want string
	}{
		"unfixed":  {ShapePlan{Gear: "seq", Values: []int64{8, 16}}, "symbolic dimension batch has no size"},
		"no sizes": {ShapePlan{Fixed: map[string]int64{"batch": 1}, Gear: "seq"}, "has no sizes"},
		"repeat":   {ShapePlan{Fixed: map[string]int64{"batch": 1}, Gear: "seq", Values: []int64{8, 8}}, "listed twice"},
		"zero":     {ShapePlan{Fixed: map[string]int64{"batch": 1}, Gear: "seq", Values: []int64{0}}, "not positive"},
		"batch 0":  {ShapePlan{Fixed: map[string]int64{"batch": 0}, Gear: "seq", Values: []int64{8}}, "fixed to 0"},
		"no input": {ShapePlan{Fixed: map[string]int64{"batch": 1, "seq": 4}, Gear: "len", Values: []int64{8, 16}}, "no input of graph transformer has the dimension len"},
		"too many": {ShapePlan{Fixed: map[string]int64{"batch": 1}, Gear: "seq", Values: make([]int64, 101)}, "at most 100 gears"},
	} {
		if _, _, err := tc.p.ATC(g); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one containing %q", name, err, tc.want)
		}
	}
}

func TestKeepDTypeNodes(t *testing.T) {
	m := smallModel(t)
	names := KeepDTypeNodes(m)
	ops := map[string]string{}
	for _, n := range m.Graph.Node {
		ops[n.GetName()] = n.GetOpType()
	}
	var kinds []string
	for _, n := range names {
		kinds = append(kinds, ops[n])
	}
	slices.Sort(kinds)
	// The RMSNorm statistics are Mul (x*x), ReduceMean, Add (eps), Sqrt and
	// Reciprocal. The attention keeps the bias Add and the Softmax. The
	// Identity naming the output follows the last MatMul, so it is kept too.
	want := []string{"Add", "Add", "Identity", "Mul", "Reciprocal", "ReduceMean", "Softmax", "Sqrt"}
	if !slices.Equal(kinds, want) {
		t.Errorf("kept op types %v (nodes %v), want %v", kinds, names, want)
	}
}
