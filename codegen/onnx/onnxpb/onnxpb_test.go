package onnxpb

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// systemPython is Debian's interpreter, the one that has python3-onnx.
const systemPython = "/usr/bin/python3"

// checkScript is scripts/onnx_check.py, relative to this package directory.
var checkScript = filepath.Join("..", "..", "..", "scripts", "onnx_check.py")

// requireOnnxPython fails the test on CI and skips it elsewhere when the
// onnx Python package is not importable.
func requireOnnxPython(t *testing.T) {
	t.Helper()
	out, err := exec.Command(systemPython, "-c", "import onnx").CombinedOutput()
	if err == nil {
		return
	}
	msg := "the ONNX checker is not available: " + systemPython + ` -c "import onnx" failed (` +
		strings.TrimSpace(string(out)) + "); install it with `bash scripts/setup.sh` (Debian package python3-onnx)"
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// modelSummary is the part of onnx_check.py --summary output the tests read.
type modelSummary struct {
	IRVersion   int64 `json:"ir_version"`
	OpsetImport []struct {
		Domain  string `json:"domain"`
		Version int64  `json:"version"`
	} `json:"opset_import"`
	Inputs []struct {
		Name     string `json:"name"`
		ElemType int32  `json:"elem_type"`
		Dims     []any  `json:"dims"`
	} `json:"inputs"`
	Nodes        []string `json:"nodes"`
	Initializers []struct {
		Name         string            `json:"name"`
		DataLocation int32             `json:"data_location"`
		RawDataBytes int               `json:"raw_data_bytes"`
		ExternalData map[string]string `json:"external_data"`
	} `json:"initializers"`
}

// runChecker writes model to dir/name, runs onnx_check.py --summary on it
// and returns the summary, or the checker's message as an error.
func runChecker(t *testing.T, dir, name string, model *ModelProto, extraArgs ...string) (*modelSummary, error) {
	t.Helper()
	data, err := proto.Marshal(model)
	if err != nil {
		t.Fatalf("marshal: %v", err)
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	args := append([]string{checkScript, "--summary"}, extraArgs...)
	cmd := exec.Command(systemPython, append(args, path)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.Output()
	if err != nil {
		return nil, &checkerError{err: err, stderr: stderr.String()}
	}
	var s modelSummary
	if err := json.Unmarshal(stdout, &s); err != nil {
		t.Fatalf("parse checker summary %q: %v", stdout, err)
	}
	return &s, nil
}

type checkerError struct {
	err    error
	stderr string
}

func (e *checkerError) Error() string { return e.err.Error() + ": " + e.stderr }

func floatInput(name string, dims ...any) *ValueInfoProto {
	shape := &TensorShapeProto{}
	for _, d := range dims {
		switch d := d.(type) {
		case int:
			shape.Dim = append(shape.Dim, &TensorShapeProto_Dimension{Value: &TensorShapeProto_Dimension_DimValue{DimValue: int64(d)}})
		case string:
			shape.Dim = append(shape.Dim, &TensorShapeProto_Dimension{Value: &TensorShapeProto_Dimension_DimParam{DimParam: d}})
		}
	}
	return &ValueInfoProto{
		Name: proto.String(name),
		Type: &TypeProto{Value: &TypeProto_TensorType{TensorType: &TypeProto_Tensor{
			ElemType: proto.Int32(int32(TensorProto_FLOAT)),
			Shape:    shape,
		}}},
	}
}

// addModel returns a model computing sum = a + b on float tensors of shape
// [n, 3], with IR version 8 and opset 17.
func addModel() *ModelProto {
	return &ModelProto{
		IrVersion:    proto.Int64(8),
		ProducerName: proto.String("mmadac-test"),
		OpsetImport:  []*OperatorSetIdProto{{Domain: proto.String(""), Version: proto.Int64(17)}},
		Graph: &GraphProto{
			Name: proto.String("add"),
			Node: []*NodeProto{{
				OpType: proto.String("Add"),
				Input:  []string{"a", "b"},
				Output: []string{"sum"},
				Name:   proto.String("add0"),
			}},
			Input:  []*ValueInfoProto{floatInput("a", "n", 3), floatInput("b", "n", 3)},
			Output: []*ValueInfoProto{floatInput("sum", "n", 3)},
		},
	}
}

func TestAddModelPassesChecker(t *testing.T) {
	requireOnnxPython(t)
	s, err := runChecker(t, t.TempDir(), "add.onnx", addModel())
	if err != nil {
		t.Fatalf("checker rejected the Add model: %v", err)
	}
	if s.IRVersion != 8 {
		t.Errorf("ir_version = %d, want 8", s.IRVersion)
	}
	if len(s.OpsetImport) != 1 || s.OpsetImport[0].Version != 17 || s.OpsetImport[0].Domain != "" {
		t.Errorf("opset_import = %+v, want one entry for the default domain at version 17", s.OpsetImport)
	}
	if len(s.Nodes) != 1 || s.Nodes[0] != "Add" {
		t.Errorf("nodes = %v, want [Add]", s.Nodes)
	}
	if len(s.Inputs) != 2 || s.Inputs[0].Name != "a" || s.Inputs[0].ElemType != int32(TensorProto_FLOAT) {
		t.Fatalf("inputs = %+v, want a and b of elem_type FLOAT", s.Inputs)
	}
	if got := s.Inputs[0].Dims; len(got) != 2 || got[0] != "n" || got[1] != float64(3) {
		t.Errorf("dims of a = %v, want [n 3]", got)
	}
}

func TestCheckerRejectsUndefinedInput(t *testing.T) {
	requireOnnxPython(t)
	m := addModel()
	m.Graph.Node[0].Input[1] = "missing"
	_, err := runChecker(t, t.TempDir(), "bad.onnx", m)
	if err == nil {
		t.Fatal("checker accepted a node that reads an undefined value")
	}
	if !strings.Contains(err.Error(), "missing") {
		t.Errorf("checker message does not name the undefined value: %v", err)
	}
}

// externalModel returns a model computing y = x + w where the float
// initializer w of shape [2, 3] lives in weights.bin at the given offset.
func externalModel(offset int64) *ModelProto {
	m := addModel()
	m.Graph.Node[0].Input = []string{"x", "w"}
	m.Graph.Node[0].Output = []string{"y"}
	m.Graph.Input = []*ValueInfoProto{floatInput("x", 2, 3)}
	m.Graph.Output = []*ValueInfoProto{floatInput("y", 2, 3)}
	w := &TensorProto{
		Name:     proto.String("w"),
		Dims:     []int64{2, 3},
		DataType: proto.Int32(int32(TensorProto_FLOAT)),
	}
	SetExternal(w, ExternalRef{Location: "weights.bin", Offset: offset, Length: 24})
	m.Graph.Initializer = []*TensorProto{w}
	return m
}

func TestExternalDataRoundTrip(t *testing.T) {
	m := externalModel(4096)
	data, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	var back ModelProto
	if err := proto.Unmarshal(data, &back); err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(m, &back) {
		t.Fatalf("model changed in a marshal round trip:\nwant %v\ngot  %v", m, &back)
	}
	w := back.GetGraph().GetInitializer()[0]
	if w.DataLocation == nil || *w.DataLocation != TensorProto_EXTERNAL {
		t.Errorf("data_location = %v, want EXTERNAL", w.DataLocation)
	}
	ref, ok, err := External(w)
	if err != nil || !ok {
		t.Fatalf("External() = %v, %v, %v; want a reference", ref, ok, err)
	}
	want := ExternalRef{Location: "weights.bin", Offset: 4096, Length: 24}
	if ref != want {
		t.Errorf("External() = %+v, want %+v", ref, want)
	}
}

func TestExternalDataPassesChecker(t *testing.T) {
	requireOnnxPython(t)
	dir := t.TempDir()
	// The weights start after 40 bytes of unrelated data, as they do inside
	// a safetensors file, and are followed by more bytes that must be ignored.
	const offset = 40
	file := make([]byte, offset, offset+24+8)
	for i := range 6 {
		file = binary.LittleEndian.AppendUint32(file, math.Float32bits(float32(i)))
	}
	file = append(file, make([]byte, 8)...)
	if err := os.WriteFile(filepath.Join(dir, "weights.bin"), file, 0o644); err != nil {
		t.Fatal(err)
	}

	for _, mode := range [][]string{nil, {"--by-path"}} {
		s, err := runChecker(t, dir, "ext.onnx", externalModel(offset), mode...)
		if err != nil {
			t.Fatalf("checker %v rejected the external-data model: %v", mode, err)
		}
		if len(s.Initializers) != 1 {
			t.Fatalf("initializers = %+v, want one", s.Initializers)
		}
		w := s.Initializers[0]
		if w.DataLocation != int32(TensorProto_EXTERNAL) || w.RawDataBytes != 0 {
			t.Errorf("initializer as read by onnx: data_location %d, %d raw bytes; want EXTERNAL and none", w.DataLocation, w.RawDataBytes)
		}
		wantEntries := map[string]string{"location": "weights.bin", "offset": "40", "length": "24"}
		for k, v := range wantEntries {
			if w.ExternalData[k] != v {
				t.Errorf("external_data[%q] as read by onnx = %q, want %q", k, w.ExternalData[k], v)
			}
		}
	}
}

func TestCheckerRejectsMissingExternalFile(t *testing.T) {
	requireOnnxPython(t)
	_, err := runChecker(t, t.TempDir(), "ext.onnx", externalModel(0))
	if err == nil {
		t.Fatal("checker accepted a model whose external-data file does not exist")
	}
}

func TestExternalInlineTensor(t *testing.T) {
	w := &TensorProto{Name: proto.String("w"), RawData: []byte{1, 2, 3, 4}}
	ref, ok, err := External(w)
	if ok || err != nil {
		t.Errorf("External(inline tensor) = %v, %v, %v; want ok=false and no error", ref, ok, err)
	}
}

func TestExternalWithoutLength(t *testing.T) {
	w := &TensorProto{Name: proto.String("w")}
	SetExternal(w, ExternalRef{Location: "a.bin", Offset: 8, Length: -1})
	if len(w.ExternalData) != 2 {
		t.Errorf("entries = %v, want location and offset only", w.ExternalData)
	}
	ref, _, err := External(w)
	if err != nil {
		t.Fatal(err)
	}
	if ref.Length != -1 {
		t.Errorf("Length = %d, want -1 for a missing length entry", ref.Length)
	}
}

func TestSetExternalClearsInlineData(t *testing.T) {
	w := &TensorProto{RawData: []byte{1}, FloatData: []float32{1}, Int64Data: []int64{1}}
	SetExternal(w, ExternalRef{Location: "a.bin"})
	if w.RawData != nil || w.FloatData != nil || w.Int64Data != nil {
		t.Errorf("inline data kept after SetExternal: %v", w)
	}
}

func TestExternalInvalidEntries(t *testing.T) {
	entry := func(k, v string) *StringStringEntryProto {
		return &StringStringEntryProto{Key: proto.String(k), Value: proto.String(v)}
	}
	cases := []struct {
		name    string
		entries []*StringStringEntryProto
		want    string
	}{
		{"no location", []*StringStringEntryProto{entry("offset", "0")}, `no "location" entry`},
		{"offset not a number", []*StringStringEntryProto{entry("location", "a"), entry("offset", "1k")}, `offset "1k"`},
		{"negative length", []*StringStringEntryProto{entry("location", "a"), entry("length", "-4")}, `length "-4"`},
		{"repeated key", []*StringStringEntryProto{entry("location", "a"), entry("location", "b")}, `"location" appears twice`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w := &TensorProto{Name: proto.String("w"), DataLocation: TensorProto_EXTERNAL.Enum(), ExternalData: c.entries}
			_, _, err := External(w)
			if err == nil {
				t.Fatal("External accepted invalid entries")
			}
			if !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), `"w"`) {
				t.Errorf("error %q does not name the tensor and contain %q", err, c.want)
			}
		})
	}
}

func TestPresenceOfUnsetFields(t *testing.T) {
	data, err := proto.Marshal(&ModelProto{IrVersion: proto.Int64(0)})
	if err != nil {
		t.Fatal(err)
	}
	var back ModelProto
	if err := proto.Unmarshal(data, &back); err != nil {
		t.Fatal(err)
	}
	if back.IrVersion == nil {
		t.Error("an explicit ir_version 0 read back as unset")
	}
	if back.ModelVersion != nil {
		t.Error("an unset model_version read back as set")
	}
}

func TestUnknownFieldsSurvive(t *testing.T) {
	data, err := proto.Marshal(addModel())
	if err != nil {
		t.Fatal(err)
	}
	// ModelProto field 25 (functions) is not in this schema: append one
	// length-delimited record for it.
	foreign := protowire.AppendTag(nil, 25, protowire.BytesType)
	foreign = protowire.AppendBytes(foreign, []byte("opaque function"))
	data = append(data, foreign...)

	var m ModelProto
	if err := proto.Unmarshal(data, &m); err != nil {
		t.Fatal(err)
	}
	again, err := proto.Marshal(&m)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(again, foreign) {
		t.Error("the unknown field 25 was dropped in a read and re-write")
	}
}
