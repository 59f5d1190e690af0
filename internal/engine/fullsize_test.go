package engine

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/mmadac/mmadac/codegen/onnx"
	"github.com/mmadac/mmadac/frontend"
	"github.com/mmadac/mmadac/ir"
)

// writeSparse8B writes the MMaDA-8B manifest as a sparse bf16 checkpoint:
// headers followed by holes, 16 GB long and a few blocks on disk.
func writeSparse8B(tb testing.TB, dir string) []frontend.TensorInfo {
	tb.Helper()
	cfg, infos, err := frontend.LoadManifest("../../testdata/manifests/mmada-8b-tensors.json")
	if err != nil {
		tb.Fatal(err)
	}
	frontend.ApplyDefaultDType(infos, ir.BF16)
	if err := frontend.WriteSparseCheckpoint(dir, cfg, infos, 6); err != nil {
		tb.Fatal(err)
	}
	return infos
}

// pythonONNX reports whether Debian's python3 can import onnx; in CI its
// absence is a failure.
func pythonONNX(t *testing.T) bool {
	t.Helper()
	if err := exec.Command("/usr/bin/python3", "-c", "import onnx").Run(); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("python3-onnx is required in CI: %v", err)
		}
		t.Logf("python3-onnx is not installed (run scripts/setup.sh); skipping the checker")
		return false
	}
	return true
}

func TestBuildFullSize8B(t *testing.T) {
	if testing.Short() {
		t.Skip("full-size build skipped in -short mode")
	}
	dir := t.TempDir()
	ckpt := filepath.Join(dir, "ckpt")
	infos := writeSparse8B(t, ckpt)
	out := filepath.Join(dir, "bundle")
	res, err := Build(BuildOptions{Model: ckpt, Out: out, Weights: onnx.WeightsExternal})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("8B build: %d nodes, %d weights, %.1f GB, %v", res.GraphNodes, res.Params, float64(res.ParamBytes)/1e9, res.Elapsed)
	if res.Params != 291 || len(infos) != 291 {
		t.Fatalf("graph uses %d weights of %d in the checkpoint, want all 291", res.Params, len(infos))
	}
	byName := map[string]frontend.TensorInfo{}
	for _, in := range infos {
		byName[in.Name] = in
	}
	for _, p := range res.Transformer.Params {
		want, ok := byName[p.Name]
		if !ok {
			t.Errorf("graph weight %s is not in the checkpoint", p.Name)
			continue
		}
		if !equalInts(p.Type.Shape.Sizes(), want.Shape) {
			t.Errorf("weight %s has shape %v in the graph, %v in the checkpoint", p.Name, p.Type.Shape, want.Shape)
		}
		delete(byName, p.Name)
	}
	for name := range byName {
		t.Errorf("checkpoint tensor %s is not used", name)
	}
	if !pythonONNX(t) {
		return
	}
	cmd := exec.Command("/usr/bin/python3", "../../scripts/onnx_check.py", "--by-path", res.ModelFile)
	if outb, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("onnx checker rejected the 8B model: %v\n%s", err, outb)
	}
}

func equalInts(a, b []int64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// BenchmarkBuild8B measures `mmadac build` of the full MMaDA-8B graph from
// a sparse checkpoint with external weights. Peak memory of the whole
// process is best read with /usr/bin/time -v on the mmadac binary.
func BenchmarkBuild8B(b *testing.B) {
	dir := b.TempDir()
	ckpt := filepath.Join(dir, "ckpt")
	writeSparse8B(b, ckpt)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := Build(BuildOptions{Model: ckpt, Out: filepath.Join(dir, "bundle"), Weights: onnx.WeightsExternal}); err != nil {
			b.Fatal(err)
		}
	}
}

func TestEmittedONNXPassesChecker(t *testing.T) {
	if !pythonONNX(t) {
		return
	}
	for _, tc := range []struct {
		model   string
		weights onnx.WeightMode
	}{{"mmada", onnx.WeightsInline}, {"mmada-bf16", onnx.WeightsExternal}} {
		out := filepath.Join(t.TempDir(), "bundle")
		res, err := Build(BuildOptions{Model: filepath.Join(goldenDir, tc.model), Out: out, Weights: tc.weights})
		if err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command("/usr/bin/python3", "../../scripts/onnx_check.py", res.ModelFile)
		if outb, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("%s with %s weights: the checker rejected the model: %v\n%s", tc.model, tc.weights, err, outb)
		}
	}
}
