package ascend

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/mmadac/mmadac/codegen/onnx"
	"github.com/mmadac/mmadac/codegen/onnx/onnxpb"
	"github.com/mmadac/mmadac/ir"
)

// smallModel emits a graph that uses what the transformer uses: a float16
// weight cast to float32, matmul, an RMSNorm written out, softmax with an
// additive bias, and the ops arange lowers to (Shape, Gather, Range).
func smallModel(t *testing.T) *onnxpb.ModelProto {
	t.Helper()
	g := ir.NewGraph("small")
	x := g.Input("x", ir.F32, ir.Shape{ir.D(1), ir.S("seq"), ir.D(4)})
	w := g.Param("w", ir.F16, ir.Static(4, 4), memSource{make([]byte, 32)})
	wf := g.Op("cast", ir.Attrs{"to": ir.F32}, w)
	h := g.Op("matmul", nil, x, wf)
	sq := g.Op("mul", nil, h, h)
	ms := g.Op("reduce_mean", ir.Attrs{"axes": []int64{-1}, "keepdims": int64(1)}, sq)
	r := g.Op("rsqrt", nil, g.Op("add", nil, ms, g.Scalar(ir.F32, 1e-5)))
	n := g.Op("mul", nil, h, r)
	pos := g.Op("arange", ir.Attrs{"axis": int64(1), "dtype": ir.F32}, x)
	b := g.Op("add", nil, n, g.Op("unsqueeze", ir.Attrs{"axes": []int64{1}}, pos))
	g.SetOutput("y", g.Op("softmax", ir.Attrs{"axis": int64(-1)}, b))
	m, err := onnx.Emit(g, onnx.Options{Weights: onnx.WeightsPerTensor})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

type memSource struct{ data []byte }

func (m memSource) Location() (string, int64, int64) { return "", 0, int64(len(m.data)) }
func (m memSource) Bytes() ([]byte, error)           { return m.data, nil }

func TestCheckAcceptsEmittedModel(t *testing.T) {
	if f := Check(smallModel(t)); len(f) != 0 {
		t.Errorf("an emitted opset-17 model has findings: %v", f)
	}
}

func TestSupported(t *testing.T) {
	for _, tc := range []struct {
		op    string
		opset int64
		ok    bool
		why   string
	}{
		{"MatMul", 17, true, ""},
		{"ArgMax", 18, true, ""},
		{"MatMul", 19, false, "opsets 8 to 18"},
		{"LayerNormalization", 16, false, "opsets 17 to 18"},
		{"LayerNormalization", 17, true, ""},
		{"Trilu", 13, false, "opsets 14 to 18"},
		{"RMSNormalization", 18, false, "not in CANN 8.0's ONNX operator list"},
		{"Loop", 17, false, "not in CANN 8.0's ONNX operator list"},
		{"Einsum", 17, false, "MatMul and Transpose"},
		{"NonZero", 17, false, "dynamic-shape"},
	} {
		ok, why := Supported(tc.op, tc.opset)
		if ok != tc.ok || !strings.Contains(why, tc.why) {
			t.Errorf("Supported(%s, %d) = %v, %q; want %v with %q", tc.op, tc.opset, ok, why, tc.ok, tc.why)
		}
	}
}

// findingFor returns the reason of the first finding about name, or "".
func findingFor(fs []Finding, name string) string {
	for _, f := range fs {
		if f.Name == name {
			return f.Reason
		}
	}
	return ""
}

func TestCheckReportsEveryRule(t *testing.T) {
	m := smallModel(t)
	g := m.Graph
	node := func(name, op, domain string, attrs ...*onnxpb.AttributeProto) *onnxpb.NodeProto {
		n := &onnxpb.NodeProto{Name: proto.String(name), OpType: proto.String(op), Input: []string{"x"}, Output: []string{name + "_out"}, Attribute: attrs}
		if domain != "" {
			n.Domain = proto.String(domain)
		}
		return n
	}
	toBF16 := &onnxpb.AttributeProto{Name: proto.String("to"), Type: onnxpb.AttributeProto_INT.Enum(), I: proto.Int64(int64(onnxpb.TensorProto_BFLOAT16))}
	loop := &onnxpb.GraphProto{Name: proto.String("then"), Node: []*onnxpb.NodeProto{node("inner_loop", "Loop", "")}}
	branch := &onnxpb.AttributeProto{Name: proto.String("then_branch"), Type: onnxpb.AttributeProto_GRAPH.Enum(), G: loop}
	g.Node = append(g.Node,
		node("einsum", "Einsum", ""),
		node("mha", "MultiHeadAttention", "com.microsoft"),
		node("to_bf16", "Cast", "", toBF16),
		node("cond", "If", "", branch),
	)
	bf16Weight := &onnxpb.TensorProto{Name: proto.String("bf16_weight"), DataType: proto.Int32(int32(onnxpb.TensorProto_BFLOAT16)), Dims: []int64{1}, RawData: []byte{0, 0}}
	linked := &onnxpb.TensorProto{Name: proto.String("linked"), DataType: proto.Int32(int32(onnxpb.TensorProto_FLOAT)), Dims: []int64{1}}
	onnxpb.SetExternal(linked, onnxpb.ExternalRef{Location: "weights/model.safetensors", Offset: 4096, Length: 4})
	outside := &onnxpb.TensorProto{Name: proto.String("outside"), DataType: proto.Int32(int32(onnxpb.TensorProto_FLOAT)), Dims: []int64{1}}
	onnxpb.SetExternal(outside, onnxpb.ExternalRef{Location: "../ckpt/w.bin", Length: 4})
	g.Initializer = append(g.Initializer, bf16Weight, linked, outside)
	// A local function, as field 25 of ModelProto, which onnxpb keeps as an
	// unknown field.
	fn := protowire.AppendTag(nil, 25, protowire.BytesType)
	fn = protowire.AppendBytes(fn, []byte{0x0a, 0x01, 'f'})
	m.ProtoReflect().SetUnknown(fn)

	findings := Check(m)
	for name, want := range map[string]string{
		"einsum":      "20 two-input Einsum equations",
		"mha":         `custom domain "com.microsoft"`,
		"to_bf16":     "casts to bfloat16",
		"inner_loop":  "not in CANN 8.0's ONNX operator list",
		"bf16_weight": "element type bfloat16",
		"linked":      "offset 4096",
		"outside":     "not a path inside the model folder",
		"":            "1 ONNX local function",
	} {
		if got := findingFor(findings, name); !strings.Contains(got, want) {
			t.Errorf("finding for %q is %q, want one containing %q", name, got, want)
		}
	}
	for _, f := range findings {
		if f.Name == "mha" && !strings.Contains(f.String(), "com.microsoft::MultiHeadAttention") {
			t.Errorf("the report line %q does not show the domain", f.String())
		}
		if f.Name == "einsum" && f.Opset != 17 {
			t.Errorf("einsum is reported at opset %d, want 17", f.Opset)
		}
	}
	var report strings.Builder
	if err := WriteReport(&report, "m.onnx", findings); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(report.String(), "einsum\tEinsum\topset 17\t") {
		t.Errorf("report lacks the tab-separated einsum line:\n%s", report.String())
	}
}

func TestCheckOpsetImports(t *testing.T) {
	for _, tc := range []struct {
		imports []*onnxpb.OperatorSetIdProto
		want    string
	}{
		{[]*onnxpb.OperatorSetIdProto{{Domain: proto.String(""), Version: proto.Int64(19)}}, "opset 19 is outside 8 to 18"},
		{[]*onnxpb.OperatorSetIdProto{{Domain: proto.String(""), Version: proto.Int64(17)}, {Domain: proto.String("ai.onnx"), Version: proto.Int64(17)}}, "(error E16005)"},
		{[]*onnxpb.OperatorSetIdProto{{Domain: proto.String("npu"), Version: proto.Int64(1)}}, "no entry for the default domain"},
	} {
		m := smallModel(t)
		m.OpsetImport = tc.imports
		if got := findingFor(Check(m), ""); !strings.Contains(got, tc.want) {
			t.Errorf("imports %v: model finding %q, want %q", tc.imports, got, tc.want)
		}
	}
	if got := findingFor(Check(&onnxpb.ModelProto{OpsetImport: smallModel(t).OpsetImport}), ""); !strings.Contains(got, "no graph") {
		t.Errorf("a model without a graph: %q", got)
	}
}

func TestCheckFile(t *testing.T) {
	dir := t.TempDir()
	m := smallModel(t)
	data, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "m.onnx")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	findings, err := CheckFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := findingFor(findings, "w"); !strings.Contains(got, "w.bin does not exist") {
		t.Errorf("missing weight file: finding %q", got)
	}
	if err := os.WriteFile(filepath.Join(dir, "w.bin"), make([]byte, 10), 0o644); err != nil {
		t.Fatal(err)
	}
	findings, _ = CheckFile(path)
	if got := findingFor(findings, "w"); !strings.Contains(got, "has 10 bytes, the tensor needs 32") {
		t.Errorf("short weight file: finding %q", got)
	}
	if err := os.WriteFile(filepath.Join(dir, "w.bin"), make([]byte, 32), 0o644); err != nil {
		t.Fatal(err)
	}
	if findings, _ = CheckFile(path); len(findings) != 0 {
		t.Errorf("complete model has findings: %v", findings)
	}
	if err := os.WriteFile(path, []byte("not protobuf \xff\xff"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := CheckFile(path); err == nil || !strings.Contains(err.Error(), "is not an ONNX model") {
		t.Errorf("garbage file: %v", err)
	}
	if _, err := CheckFile(filepath.Join(dir, "none.onnx")); err == nil {
		t.Error("a missing file gives no error")
	}
}
