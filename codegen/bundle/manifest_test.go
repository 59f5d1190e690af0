package bundle

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/mmadac/mmadac/ir"
)

func sampleManifest() *Manifest {
	return &Manifest{
		Kind:          "mmada",
		Config:        []byte(`{"d_model": 64}`),
		Checkpoint:    "/ckpt",
		Target:        "ascend",
		Created:       "2026-01-02T03:04:05Z",
		SpecialTokens: map[string]int64{"mask": 250, "bos": 240},
		Graphs: []Graph{{
			Name: "transformer", ONNXFile: "transformer.onnx", OMFile: "transformer.om", SoC: "Ascend910B3",
			Inputs: []Tensor{
				{Name: "input_ids", DType: ir.I64, Dims: []int64{1, -1}, Symbols: []string{"", "seq"}},
				{Name: "attention_mask", DType: ir.I64, Dims: []int64{1, -1}, Symbols: []string{"", "seq"}},
			},
			Outputs: []Tensor{{Name: "logits", DType: ir.F32, Dims: []int64{1, -1, 320}, Symbols: []string{"", "seq", ""}}},
			Gears:   [][]int64{{256, 256}, {512, 512}},
		}},
		Schedules:    []Schedule{{Name: "rope_table_length", Ints: []int64{4096}}, {Name: "mask_value", Floats: []float64{-32768}}},
		BuildOptions: []Option{{"target", "ascend"}, {"precision", "f16"}},
		Weights: []WeightFile{{File: "w.bin", Tensor: "model.w", DType: ir.F16, Shape: []int64{2, 3}, Size: 12,
			SHA256: strings.Repeat("ab", 32)}},
	}
}

func TestManifestRoundTrip(t *testing.T) {
	m := sampleManifest()
	data, err := Encode(m)
	if err != nil {
		t.Fatal(err)
	}
	if got := string(data[4:8]); got != "MMDB" {
		t.Errorf("file identifier %q, want MMDB", got)
	}
	back, err := Decode(data)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, m) {
		t.Errorf("round trip changed the manifest:\n got %+v\nwant %+v", back, m)
	}
	if v, ok := back.Option("precision"); !ok || v != "f16" {
		t.Errorf("Option(precision) = %q, %v", v, ok)
	}
	if back.Graph("transformer") == nil || back.Graph("nope") != nil {
		t.Error("Graph lookup by name is wrong")
	}
}

func TestDecodeRejects(t *testing.T) {
	good, err := Encode(sampleManifest())
	if err != nil {
		t.Fatal(err)
	}
	wrongID := bytes.Clone(good)
	copy(wrongID[4:8], "XXXX")
	truncated := good[:len(good)/3]
	otherVersion, _ := Encode(&Manifest{Kind: "mmada"})
	// Patch the little-endian format version in place, which is simpler
	// than walking the table's vtable to find the field.
	idx := bytes.Index(otherVersion, []byte{FormatVersion, 0, 0, 0})
	if idx < 0 {
		t.Fatal("format version not found in the encoding")
	}
	otherVersion = bytes.Clone(otherVersion)
	otherVersion[idx] = 9
	for name, tc := range map[string]struct {
		data []byte
		want string
	}{
		"empty":      {nil, "file identifier"},
		"identifier": {wrongID, "file identifier"},
		"truncated":  {truncated, "corrupt"},
		"version":    {otherVersion, "format version 9"},
		"random":     {append([]byte{1, 0, 0, 0}, []byte("MMDB\xff\xff\xff\xff\xff\xff")...), "corrupt"},
	} {
		if _, err := Decode(tc.data); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: Decode error %v, want one containing %q", name, err, tc.want)
		}
	}
}

func TestValidateRejects(t *testing.T) {
	for name, tc := range map[string]struct {
		edit func(m *Manifest)
		want string
	}{
		"kind":        {func(m *Manifest) { m.Kind = "" }, "kind is empty"},
		"graph name":  {func(m *Manifest) { m.Graphs = append(m.Graphs, m.Graphs[0]) }, "repeated name"},
		"no files":    {func(m *Manifest) { m.Graphs[0].ONNXFile, m.Graphs[0].OMFile = "", "" }, "names no ONNX or OM file"},
		"dtype":       {func(m *Manifest) { m.Graphs[0].Inputs[0].DType = ir.InvalidDType }, "invalid dtype"},
		"symbols":     {func(m *Manifest) { m.Graphs[0].Inputs[0].Symbols = []string{"x"} }, "1 symbols for 2 dimensions"},
		"dim":         {func(m *Manifest) { m.Graphs[0].Inputs[0].Dims[0] = -2 }, "dimension 0 is -2"},
		"gear":        {func(m *Manifest) { m.Graphs[0].Gears[1] = []int64{512} }, "gear 1 has 1 values for 2"},
		"weight file": {func(m *Manifest) { m.Weights = append(m.Weights, m.Weights[0]) }, "repeated file"},
		"weight hash": {func(m *Manifest) { m.Weights[0].SHA256 = "abc" }, "64 hex digits"},
		"weight size": {func(m *Manifest) { m.Weights[0].Size = -1 }, "negative size"},
	} {
		m := sampleManifest()
		tc.edit(m)
		if _, err := Encode(m); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: Encode error %v, want one containing %q", name, err, tc.want)
		}
	}
}

func TestWriteReadVerify(t *testing.T) {
	dir := t.TempDir()
	if IsBundle(dir) {
		t.Fatal("an empty folder reads as a bundle")
	}
	if _, err := Read(dir); err == nil || !strings.Contains(err.Error(), "is missing") {
		t.Errorf("Read of an empty folder: %v", err)
	}
	data := []byte("twelve bytes")
	if err := os.WriteFile(filepath.Join(dir, "w.bin"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	sum, size, err := HashFile(filepath.Join(dir, "w.bin"))
	if err != nil {
		t.Fatal(err)
	}
	m := sampleManifest()
	m.Weights[0].SHA256, m.Weights[0].Size = sum, size
	if err := Write(dir, m); err != nil {
		t.Fatal(err)
	}
	if !IsBundle(dir) {
		t.Fatal("IsBundle is false after Write")
	}
	back, err := Read(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := VerifyWeights(dir, back); err != nil {
		t.Fatalf("VerifyWeights on intact files: %v", err)
	}

	// Same size, different bytes: the hash must catch it.
	if err := os.WriteFile(filepath.Join(dir, "w.bin"), []byte("twelve BYTES"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := VerifyWeights(dir, back); err == nil || !strings.Contains(err.Error(), "has SHA-256") {
		t.Errorf("VerifyWeights on a changed file: %v", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "w.bin"), []byte("short"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := VerifyWeights(dir, back); err == nil || !strings.Contains(err.Error(), "has 5 bytes, the manifest records 12") {
		t.Errorf("VerifyWeights on a truncated file: %v", err)
	}
	os.Remove(filepath.Join(dir, "w.bin"))
	if err := VerifyWeights(dir, back); err == nil || !strings.Contains(err.Error(), "w.bin") {
		t.Errorf("VerifyWeights on a missing file: %v", err)
	}
	back.Weights[0].File = "../outside.bin"
	if err := VerifyWeights(dir, back); err == nil || !strings.Contains(err.Error(), "leaves the bundle folder") {
		t.Errorf("VerifyWeights on an escaping path: %v", err)
	}
}

func TestFormatListsEverything(t *testing.T) {
	var b strings.Builder
	if err := Format(&b, sampleManifest(), true); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"kind:       mmada", "mask           250", "graph transformer:", "om:   transformer.om",
		"input  input_ids i64[1,-1(seq)]", "output logits f32[1,-1(seq),320]", "[[256 256] [512 512]]",
		"rope_table_length ints=[4096]", "precision = f16", "w.bin  f16[2 3]  12 bytes",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("Format output lacks %q:\n%s", want, out)
		}
	}
}
