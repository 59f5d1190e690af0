package onnx_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/mmadac/mmadac/codegen/onnx"
	"github.com/mmadac/mmadac/codegen/onnx/onnxpb"
	"github.com/mmadac/mmadac/ir"
)

// fileSource is a weight stored at an offset of a file on disk, as a
// checkpoint's tensors are.
type fileSource struct {
	file      string
	off, size int64
}

func (s fileSource) Location() (string, int64, int64) { return s.file, s.off, s.size }

func (s fileSource) Bytes() ([]byte, error) {
	data, err := os.ReadFile(s.file)
	if err != nil {
		return nil, err
	}
	return data[s.off : s.off+s.size], nil
}

// twoWeights builds y = x*a + b. Its two [4] float32 weights lie one after
// the other in file.
func twoWeights(t *testing.T, file string) *ir.Graph {
	t.Helper()
	raw := make([]byte, 32)
	for i := range raw {
		raw[i] = byte(i)
	}
	if err := os.WriteFile(file, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	g := ir.NewGraph("two")
	x := g.Input("x", ir.F32, ir.Static(4))
	a := g.Param("a", ir.F32, ir.Static(4), fileSource{file, 0, 16})
	b := g.Param("b", ir.F32, ir.Static(4), fileSource{file, 16, 16})
	g.SetOutput("y", g.Op("add", nil, g.Op("mul", nil, x, a), b))
	return g
}

// TestReferencedWeightsPointAtTheBuild emits a graph with external
// weights, reads the references back, and emits it again in referenced
// mode: the second model must point at the same bytes without linking
// anything, store an unlisted parameter inline, and refuse a listed one
// whose size differs.
func TestReferencedWeightsPointAtTheBuild(t *testing.T) {
	src := filepath.Join(t.TempDir(), "weights.bin")
	g := twoWeights(t, src)
	dir := t.TempDir()
	model := filepath.Join(dir, "model.onnx")
	if err := onnx.Write(g, model, onnx.Options{Weights: onnx.WeightsExternal}); err != nil {
		t.Fatal(err)
	}

	inits, err := onnx.ReadInitializers(model)
	if err != nil {
		t.Fatal(err)
	}
	refs := map[string]onnxpb.ExternalRef{}
	for _, in := range inits {
		if !in.External {
			t.Errorf("initializer %s is inline in an external build", in.Name)
		}
		refs[in.Name] = in.Ref
	}
	if len(refs) != 2 {
		t.Fatalf("read %d references, want 2: %+v", len(refs), refs)
	}
	if got := refs["b"].Offset; got != 16 {
		t.Errorf("b is at offset %d, want 16", got)
	}
	if got := refs["b"].Length; got != 16 {
		t.Errorf("b has length %d, want 16", got)
	}
	if got := refs["b"].Location; !strings.HasPrefix(got, "weights/") {
		t.Errorf("b's location is %q, want one under weights/", got)
	}
	if n := onnx.UnreferencedBytes(g, refs); n != 0 {
		t.Errorf("UnreferencedBytes = %d with every weight listed, want 0", n)
	}

	delete(refs, "a")
	if n := onnx.UnreferencedBytes(g, refs); n != 16 {
		t.Errorf("UnreferencedBytes = %d with a unlisted, want 16", n)
	}
	before, _ := os.ReadDir(filepath.Join(dir, "weights"))
	m, err := onnx.Emit(g, onnx.Options{Weights: onnx.WeightsReferenced, Dir: dir, Refs: refs})
	if err != nil {
		t.Fatal(err)
	}
	for _, init := range m.GetGraph().GetInitializer() {
		ref, external, err := onnxpb.External(init)
		if err != nil {
			t.Fatal(err)
		}
		switch init.GetName() {
		case "a":
			if external || len(init.GetRawData()) != 16 {
				t.Errorf("a is not listed, so it must be inline; got external=%v and %d bytes", external, len(init.GetRawData()))
			}
		case "b":
			if !external || ref != refs["b"] {
				t.Errorf("b: got %+v (external %v), want %+v", ref, external, refs["b"])
			}
		}
	}
	if after, _ := os.ReadDir(filepath.Join(dir, "weights")); len(after) != len(before) {
		t.Errorf("referenced emission changed the weights folder: %d files before, %d after", len(before), len(after))
	}
	if _, err := proto.Marshal(m); err != nil {
		t.Fatal(err)
	}

	refs["b"] = onnxpb.ExternalRef{Location: refs["b"].Location, Offset: 16, Length: 20}
	_, err = onnx.Emit(g, onnx.Options{Weights: onnx.WeightsReferenced, Dir: dir, Refs: refs})
	if err == nil || !strings.Contains(err.Error(), "parameter b has 16 bytes") {
		t.Errorf("a size mismatch: got %v, want an error naming b", err)
	}
	if err == nil || !strings.Contains(err.Error(), "build it again") {
		t.Errorf("a size mismatch: got %v, want the advice to build again", err)
	}
	if _, err := onnx.Emit(g, onnx.Options{Weights: onnx.WeightsReferenced, Refs: refs}); err == nil || !strings.Contains(err.Error(), "model folder") {
		t.Errorf("no folder: got %v, want an error asking for it", err)
	}
	if _, err := onnx.ReadInitializers(filepath.Join(dir, "missing.onnx")); err == nil || !strings.Contains(err.Error(), "missing.onnx") {
		t.Errorf("a missing model: got %v, want an error naming it", err)
	}
}
