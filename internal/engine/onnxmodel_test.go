package engine

import (
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mmadac/mmadac/codegen/onnx"
	"github.com/mmadac/mmadac/ir"
)

// writeTinyONNX emits the unoptimised tiny transformer as an ONNX file
// (inputs input_ids and attention_mask, output logits, the signature of a
// torch.onnx.export file) and returns its path.
func writeTinyONNX(t *testing.T) string {
	t.Helper()
	_, ck, g, err := OpenCheckpointModelWith(filepath.Join(goldenDir, "mmada"), PassOptions{None: true})
	if err != nil {
		t.Fatal(err)
	}
	defer ck.Close()
	data, err := onnx.MarshalWith(g, onnx.Options{Weights: onnx.WeightsInline})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "tiny.onnx")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func requireORT(t *testing.T) {
	t.Helper()
	if _, err := openORTCheck(); err != nil {
		t.Skipf("ONNX Runtime is not available: %v", err)
	}
}

func TestONNXModelMatchesTextModel(t *testing.T) {
	requireORT(t)
	m, err := OpenONNXModel(writeTinyONNX(t), 320)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	ref, err := LoadTextModel(filepath.Join(goldenDir, "mmada"), BackendInterp)
	if err != nil {
		t.Fatal(err)
	}
	defer ref.Close()

	ids := ir.NewTensor(ir.I64, 1, 10)
	mask := ir.NewTensor(ir.I64, 1, 10)
	for i := range ids.I64() {
		ids.I64()[i] = int64(i * 23 % 240)
		mask.I64()[i] = 1
	}
	got, err := m.Forward(ids, mask)
	if err != nil {
		t.Fatal(err)
	}
	want, err := ref.Forward(ids, mask)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Shape) != 3 || got.Shape[2] != 320 || got.Len() != want.Len() {
		t.Fatalf("logits shape %v, want %v", got.Shape, want.Shape)
	}
	worst := 0.0
	for i, v := range got.F32() {
		worst = math.Max(worst, math.Abs(float64(v-want.F32()[i])))
	}
	if worst > 1e-4 {
		t.Errorf("ONNX Runtime logits differ from the interpreter's by %g, want at most 1e-4", worst)
	}
	if m.Head() != nil {
		t.Error("an ONNX model reported a folded head")
	}
	if b := m.LastStepBytes(); b != int64(got.Len()*4) {
		t.Errorf("LastStepBytes = %d, want the full logits' %d", b, got.Len()*4)
	}

	ids.I64()[3] = 320
	if _, err := m.Forward(ids, mask); err == nil || !strings.Contains(err.Error(), "token id 320") {
		t.Errorf("out-of-vocabulary id: %v, want an error naming it", err)
	}
}

func TestOpenONNXModelRejects(t *testing.T) {
	dir := t.TempDir()
	if _, err := OpenONNXModel(filepath.Join(dir, "absent.onnx"), 0); err == nil || !strings.Contains(err.Error(), "absent.onnx") {
		t.Errorf("missing file: %v", err)
	}
	if _, err := OpenONNXModel(dir, 0); err == nil || !strings.Contains(err.Error(), "is a folder") {
		t.Errorf("folder: %v", err)
	}
	requireORT(t)
	path := writeTinyONNX(t)
	if _, err := OpenONNXModel(path, -1); err == nil || !strings.Contains(err.Error(), "negative") {
		t.Errorf("negative vocabulary: %v", err)
	}

	// A model with other input names: one matmul named a -> c.
	g, err := ir.Build("other", func(g *ir.Graph) {
		a := g.Input("a", ir.F32, ir.Static(2, 2))
		g.SetOutput("c", g.Op("matmul", nil, a, a))
	})
	if err != nil {
		t.Fatal(err)
	}
	data, err := onnx.Marshal(g)
	if err != nil {
		t.Fatal(err)
	}
	other := filepath.Join(dir, "other.onnx")
	if err := os.WriteFile(other, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenONNXModel(other, 0); err == nil || !strings.Contains(err.Error(), "input_ids") {
		t.Errorf("model without input_ids: %v, want an error naming the required inputs", err)
	}
}
