package engine

import (
	"context"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/mmadac/mmadac/codegen/ascend"
	"github.com/mmadac/mmadac/codegen/bundle"
	"github.com/mmadac/mmadac/codegen/om"
	"github.com/mmadac/mmadac/frontend"
	"github.com/mmadac/mmadac/ir"
)

// withoutATC empties PATH for the test, so that no atc is found.
func withoutATC(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
}

// forwardCase is one golden forward case: inputs and expected logits.
type forwardCase struct {
	name      string
	ids, mask *ir.Tensor
	hasMask   bool
	want      map[string]*ir.Tensor
}

func forwardCases(t *testing.T) []forwardCase {
	t.Helper()
	var out []forwardCase
	for _, c := range loadCases(t) {
		if c.Kind != "forward" {
			continue
		}
		ts, err := frontend.ReadSafetensors(filepath.Join(goldenDir, c.File))
		if err != nil {
			t.Fatal(err)
		}
		fc := forwardCase{name: c.Name, ids: ts["input_ids"], want: ts}
		fc.mask, fc.hasMask = ts["attention_mask"]
		if !fc.hasMask {
			fc.mask = ir.NewTensor(ir.I64, fc.ids.Shape...)
			for i := range fc.mask.I64() {
				fc.mask.I64()[i] = 1
			}
		}
		out = append(out, fc)
	}
	return out
}

// compareForward runs every golden forward case through run and returns
// the largest absolute logit error over unmasked rows and the number of
// rows whose argmax differs from the golden logits.
func compareForward(t *testing.T, run func(ids, mask *ir.Tensor) (*ir.Tensor, error), key string) (float64, int) {
	t.Helper()
	worst, argmaxDiffs := 0.0, 0
	for _, c := range forwardCases(t) {
		got, err := run(c.ids, c.mask)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		var rows []int64
		if c.hasMask {
			rows = c.mask.I64()
		}
		worst = math.Max(worst, maxAbsDiff(t, got, c.want[key], rows))
		vocab := int(got.Shape[2])
		g, w := got.F32(), c.want[key].F32()
		for r := 0; r < len(g)/vocab; r++ {
			if rows != nil && rows[r] == 0 {
				continue
			}
			if argmax(g[r*vocab:(r+1)*vocab]) != argmax(w[r*vocab:(r+1)*vocab]) {
				argmaxDiffs++
			}
		}
	}
	return worst, argmaxDiffs
}

// runChecker runs the ONNX checker on a model, when python3-onnx exists.
func runChecker(t *testing.T, model string, args ...string) {
	t.Helper()
	if !pythonONNX(t) {
		return
	}
	cmd := exec.Command("/usr/bin/python3", append([]string{"../../scripts/onnx_check.py"}, append(args, model)...)...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("the ONNX checker rejected %s: %v\n%s", model, err, out)
	}
}

func TestBuildAscendTinyF32(t *testing.T) {
	withoutATC(t)
	for _, tc := range []struct {
		ckpt, key string
		tol       float64
	}{{"mmada", "logits", 1e-4}, {"mmada-bf16", "logits_from_bf16_weights", 1e-3}} {
		t.Run(tc.ckpt, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "bundle")
			res, err := BuildAscend(context.Background(), BuildOptions{Model: filepath.Join(goldenDir, tc.ckpt), Out: out, Passes: PassOptions{Verify: true}},
				AscendOptions{SeqLens: []int64{32, 24}, Batch: 2})
			if err != nil {
				t.Fatal(err)
			}
			if res.OMFile != "" || res.ATCSkipped == "" {
				t.Errorf("ATC ran without atc on PATH: om %q, skipped %q", res.OMFile, res.ATCSkipped)
			}
			for _, want := range []string{"cd " + out + " && atc --framework=5 --model=transformer.onnx --output=transformer --soc_version=Ascend910B3",
				"--input_shape='input_ids:2,-1;attention_mask:2,-1' --dynamic_dims='24,24;32,32'", "--precision_mode_v2=origin"} {
				if !strings.Contains(res.ATCCommand, want) {
					t.Errorf("ATC command %q lacks %q", res.ATCCommand, want)
				}
			}
			findings, err := ascend.CheckFile(res.ModelFile)
			if err != nil || len(findings) != 0 {
				t.Fatalf("check-ascend on the built model: %v %v", findings, err)
			}
			runChecker(t, res.ModelFile)

			m, err := bundle.Read(out)
			if err != nil {
				t.Fatal(err)
			}
			if err := bundle.VerifyWeights(out, m); err != nil {
				t.Fatal(err)
			}
			for _, w := range m.Weights {
				if w.DType == ir.BF16 {
					t.Errorf("weight %s is stored as bfloat16", w.Tensor)
				}
			}
			if v, _ := m.Option("precision"); v != PrecisionF32 {
				t.Errorf("precision option %q", v)
			}
			gr := m.Graph("transformer")
			if gr == nil || !slices.Equal(gr.Gears[0], []int64{24, 24}) || gr.Inputs[0].String() != "input_ids i64[2(batch),-1(seq)]" {
				t.Fatalf("manifest graph %+v", gr)
			}
			if !hasSchedule(m, "rope_table_length") || !hasSchedule(m, "mask_value") {
				t.Errorf("schedules %+v lack rope_table_length or mask_value", m.Schedules)
			}
			if m.SpecialTokens["mask"] != 250 {
				t.Errorf("special tokens %v", m.SpecialTokens)
			}

			for _, be := range backends(t) {
				model, err := LoadModel(out, be)
				if err != nil {
					t.Fatal(err)
				}
				if model.Backend != be {
					t.Errorf("asked for %s, got %s", be, model.Backend)
				}
				worst, diffs := compareForward(t, model.Forward, tc.key)
				t.Logf("%s ascend f32 bundle on %s: max abs logit error %.3g, argmax differences %d", tc.ckpt, be, worst, diffs)
				if worst > tc.tol || diffs > 0 {
					t.Errorf("%s: max abs error %.3g (tolerance %g), %d argmax differences", be, worst, tc.tol, diffs)
				}
				model.Close()
			}
		})
	}
}

func hasSchedule(m *bundle.Manifest, name string) bool {
	for _, s := range m.Schedules {
		if s.Name == name {
			return true
		}
	}
	return false
}

// f16Tolerance bounds the logit error of the float16 build on the tiny
// checkpoint, whose logits span about ±5: float16 keeps 11 significant
// bits, so each weight moves by up to 2^-12 of its value.
const f16Tolerance = 2e-2

func TestBuildAscendTinyF16(t *testing.T) {
	withoutATC(t)
	out := filepath.Join(t.TempDir(), "bundle")
	res, err := BuildAscend(context.Background(), BuildOptions{Model: filepath.Join(goldenDir, "mmada"), Out: out},
		AscendOptions{SeqLens: []int64{24}, Batch: 2, Precision: PrecisionF16})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"--input_shape='input_ids:2,24;attention_mask:2,24'", "--precision_mode_v2=fp16", "--keep_dtype=keep_dtype.cfg"} {
		if !strings.Contains(res.ATCCommand, want) {
			t.Errorf("ATC command %q lacks %q", res.ATCCommand, want)
		}
	}
	if strings.Contains(res.ATCCommand, "dynamic_dims") {
		t.Errorf("one sequence length gave gears: %q", res.ATCCommand)
	}
	keep, err := os.ReadFile(filepath.Join(out, "keep_dtype.cfg"))
	if err != nil || !strings.Contains(string(keep), "Softmax_") || !strings.Contains(string(keep), "ReduceMean_") {
		t.Errorf("keep_dtype.cfg = %q, %v; want the Softmax and ReduceMean nodes", keep, err)
	}
	runChecker(t, res.ModelFile)
	m, err := bundle.Read(out)
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range m.Weights {
		if w.DType != ir.F16 {
			t.Errorf("weight %s is %v in a float16 build", w.Tensor, w.DType)
		}
	}
	for _, be := range backends(t) {
		model, err := LoadModel(out, be)
		if err != nil {
			t.Fatal(err)
		}
		worst, diffs := compareForward(t, model.Forward, "logits")
		t.Logf("ascend f16 bundle on %s: max abs logit error %.3g, argmax differences %d", be, worst, diffs)
		if worst > f16Tolerance || diffs > 0 {
			t.Errorf("%s: max abs error %.3g (tolerance %g), %d argmax differences", be, worst, f16Tolerance, diffs)
		}
		model.Close()
	}
}

// fakeATC writes a stand-in atc that records its arguments and working
// directory, checks that the model and every file it names are reachable
// from there, and writes a valid OM file at --output.om.
func fakeATC(t *testing.T) (path, record string) {
	t.Helper()
	dir := t.TempDir()
	record = filepath.Join(dir, "record")
	fixture := filepath.Join(dir, "fixture.om")
	err := om.WriteFile(fixture, om.Builder{Name: "transformer", ModelType: om.ModelTypeStandard, PlatformVersion: "Ascend910B3",
		Models: [][]om.Payload{{{Type: om.ModelDef, Data: []byte("graph")}, {Type: om.WeightsData, Data: make([]byte, 64)}}}})
	if err != nil {
		t.Fatal(err)
	}
	script := `#!/bin/sh
printf '%s\n' "$@" > '` + record + `.args'
pwd -P > '` + record + `.cwd'
for a in "$@"; do
	case "$a" in
	--output=*) out="${a#--output=}" ;;
	--model=*) model="${a#--model=}" ;;
	--keep_dtype=*) keep="${a#--keep_dtype=}" ;;
	esac
done
echo "ATC start working now, please wait for a moment."
[ -f "$model" ] || { echo "E10001: model $model not found"; exit 1; }
[ -z "$keep" ] || [ -f "$keep" ] || { echo "E10001: keep_dtype file $keep not found"; exit 1; }
[ -f model.transformer.wte.weight.bin ] || { echo "E19999: weight file not found"; exit 1; }
cp '` + fixture + `' "$out.om" || exit 3
echo "ATC run success, welcome to the next use."
`
	path = filepath.Join(dir, "atc")
	if err := os.WriteFile(path, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return path, record
}

func TestBuildAscendRunsFakeATC(t *testing.T) {
	atcPath, record := fakeATC(t)
	out := filepath.Join(t.TempDir(), "bundle")
	res, err := BuildAscend(context.Background(), BuildOptions{Model: filepath.Join(goldenDir, "mmada-bf16"), Out: out},
		AscendOptions{ATC: atcPath, SeqLens: []int64{24, 32}, Batch: 2, Precision: PrecisionF16, SoC: "Ascend910B4"})
	if err != nil {
		t.Fatal(err)
	}
	if res.OMFile != filepath.Join(out, "transformer.om") {
		t.Errorf("OM file %q", res.OMFile)
	}
	args, _ := os.ReadFile(record + ".args")
	cwd, _ := os.ReadFile(record + ".cwd")
	realOut, _ := filepath.EvalSymlinks(out)
	if strings.TrimSpace(string(cwd)) != realOut {
		t.Errorf("atc ran in %s, want the bundle folder %s", cwd, realOut)
	}
	for _, want := range []string{"--soc_version=Ascend910B4", "--dynamic_dims=24,24;32,32", "--keep_dtype=keep_dtype.cfg", "--model=transformer.onnx"} {
		if !strings.Contains(string(args), want+"\n") {
			t.Errorf("atc arguments lack %q:\n%s", want, args)
		}
	}
	m, err := bundle.Read(out)
	if err != nil {
		t.Fatal(err)
	}
	if gr := m.Graph("transformer"); gr.OMFile != "transformer.om" || gr.SoC != "Ascend910B4" {
		t.Errorf("manifest graph om %q soc %q", gr.OMFile, gr.SoC)
	}
	if v, _ := m.Option("atc"); v != "ran" {
		t.Errorf("atc option %q", v)
	}
	// No libascendcl.so here: acl fails, and auto falls back.
	if _, err := LoadModel(out, BackendACL); err == nil || !strings.Contains(err.Error(), "acl:") {
		t.Errorf("acl backend without AscendCL: %v", err)
	}
	model, err := LoadModel(out, BackendAuto)
	if err != nil {
		t.Fatal(err)
	}
	if model.Backend == BackendACL {
		t.Error("auto picked acl without AscendCL")
	}
	model.Close()
}

// TestLoadBundleFindsOMWrittenLater covers a bundle built without ATC
// whose printed ATC command ran afterwards: acl then uses transformer.om.
func TestLoadBundleFindsOMWrittenLater(t *testing.T) {
	withoutATC(t)
	out := filepath.Join(t.TempDir(), "bundle")
	if _, err := BuildAscend(context.Background(), BuildOptions{Model: filepath.Join(goldenDir, "mmada"), Out: out}, AscendOptions{SeqLens: []int64{8}}); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadModel(out, BackendACL); err == nil || !strings.Contains(err.Error(), "run the ATC command that mmadac build printed") {
		t.Errorf("acl without an OM: %v", err)
	}
	err := om.WriteFile(filepath.Join(out, "transformer.om"), om.Builder{Name: "transformer", ModelType: om.ModelTypeStandard,
		Models: [][]om.Payload{{{Type: om.ModelDef, Data: []byte("graph")}}}})
	if err != nil {
		t.Fatal(err)
	}
	// The OM is accepted; what fails now is loading AscendCL.
	if _, err := LoadModel(out, BackendACL); err == nil || strings.Contains(err.Error(), "has no OM file") {
		t.Errorf("acl with an OM written after the build: %v", err)
	}
}

func TestBuildAscendATCFailure(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "atc")
	script := "#!/bin/sh\necho 'ATC run failed, Please check the detail log'\necho 'E16002: No ONNX parser is registered for optype ai.onnx::17::Foo.'\nexit 255\n"
	if err := os.WriteFile(bad, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	_, err := BuildAscend(context.Background(), BuildOptions{Model: filepath.Join(goldenDir, "mmada"), Out: filepath.Join(dir, "bundle")},
		AscendOptions{ATC: bad, SeqLens: []int64{24}})
	if err == nil || !strings.Contains(err.Error(), "E16002") {
		t.Errorf("failing atc: %v", err)
	}
	_, err = BuildAscend(context.Background(), BuildOptions{Model: filepath.Join(goldenDir, "mmada"), Out: filepath.Join(dir, "b2")},
		AscendOptions{ATC: filepath.Join(dir, "none", "atc"), SeqLens: []int64{24}})
	if err == nil || !strings.Contains(err.Error(), "--atc") {
		t.Errorf("missing explicit atc: %v", err)
	}
}

func TestBuildAscendRejectsOptions(t *testing.T) {
	withoutATC(t)
	ckpt := filepath.Join(goldenDir, "mmada")
	for name, tc := range map[string]struct {
		a    AscendOptions
		want string
	}{
		"soc":       {AscendOptions{SoC: "Ascend910"}, "--soc"},
		"precision": {AscendOptions{Precision: "bf16"}, "--precision \"bf16\""},
		"batch":     {AscendOptions{Batch: -1}, "--batch -1"},
		"seq":       {AscendOptions{SeqLens: []int64{16, 16}}, "listed twice"},
	} {
		_, err := BuildAscend(context.Background(), BuildOptions{Model: ckpt, Out: t.TempDir()}, tc.a)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one containing %q", name, err, tc.want)
		}
	}
	_, err := BuildAscend(context.Background(), BuildOptions{Model: ckpt, Out: t.TempDir(), Passes: PassOptions{None: true}}, AscendOptions{SeqLens: []int64{8}})
	if err == nil || !strings.Contains(err.Error(), "--passes none") {
		t.Errorf("--passes none: %v", err)
	}
}

// TestBuildAscendF16OverflowNamesTensor patches one bfloat16 weight of a
// copy of the tiny checkpoint to 65536, beyond float16's range.
func TestBuildAscendF16OverflowNamesTensor(t *testing.T) {
	withoutATC(t)
	ckpt := filepath.Join(t.TempDir(), "ckpt")
	if err := os.MkdirAll(ckpt, 0o755); err != nil {
		t.Fatal(err)
	}
	src := filepath.Join(goldenDir, "mmada-bf16")
	entries, _ := os.ReadDir(src)
	for _, e := range entries {
		data, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(ckpt, e.Name()), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	const victim = "model.transformer.blocks.1.ff_out.weight"
	ck, err := frontend.OpenCheckpoint(ckpt)
	if err != nil {
		t.Fatal(err)
	}
	s, err := ck.Source(victim)
	if err != nil {
		t.Fatal(err)
	}
	file, off, _ := s.Location()
	ck.Close()
	f, err := os.OpenFile(file, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte{0x80, 0x47}, off+2*5); err != nil {
		t.Fatal(err)
	}
	f.Close()
	_, err = BuildAscend(context.Background(), BuildOptions{Model: ckpt, Out: filepath.Join(t.TempDir(), "b")}, AscendOptions{SeqLens: []int64{8}})
	if err == nil || !strings.Contains(err.Error(), victim+": element 5 is 65536") {
		t.Errorf("overflowing weight: %v", err)
	}
}

func TestLoadBundleRejectsChangedWeights(t *testing.T) {
	withoutATC(t)
	out := filepath.Join(t.TempDir(), "bundle")
	res, err := BuildAscend(context.Background(), BuildOptions{Model: filepath.Join(goldenDir, "mmada"), Out: out}, AscendOptions{SeqLens: []int64{8}})
	if err != nil {
		t.Fatal(err)
	}
	w := res.Manifest.Weights[0]
	path := filepath.Join(out, w.File)
	data, _ := os.ReadFile(path)
	data[0] ^= 1
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadModel(out, BackendAuto); err == nil || !strings.Contains(err.Error(), w.File+" of tensor "+w.Tensor+" has SHA-256") {
		t.Errorf("changed weight file: %v", err)
	}
}

// TestPadSessionMatchesUnpadded runs the golden forward cases (24 tokens)
// through the interpreter behind a padSession compiled for 32 and 48:
// right padding with masked tokens must not change the real positions.
func TestPadSessionMatchesUnpadded(t *testing.T) {
	cfg, ck, g, _, err := openForAscend(BuildOptions{Model: filepath.Join(goldenDir, "mmada")}, AscendOptions{SeqLens: []int64{32, 48}})
	if err != nil {
		t.Fatal(err)
	}
	defer ck.Close()
	_ = cfg
	s, _, err := OpenSession(g, BackendInterp)
	if err != nil {
		t.Fatal(err)
	}
	plan := ascend.ShapePlan{Fixed: map[string]int64{"batch": 2}, Gear: "seq", Values: []int64{32, 48}}
	ins, outs, err := plan.Tensors(g)
	if err != nil {
		t.Fatal(err)
	}
	_, gears, _ := plan.ATC(g)
	gr := &bundle.Graph{Name: "transformer", Inputs: ins, Outputs: outs, Gears: gears}
	lengths, err := compiledLengths(gr)
	if err != nil || !slices.Equal(lengths, []int64{32, 48}) {
		t.Fatalf("compiled lengths %v, %v", lengths, err)
	}
	p := newPadSession(s, gr, lengths)
	run := func(ids, mask *ir.Tensor) (*ir.Tensor, error) {
		out, err := p.Run(map[string]*ir.Tensor{"input_ids": ids, "attention_mask": mask})
		if err != nil {
			return nil, err
		}
		if got := out["logits"].Shape; got[1] != ids.Shape[1] {
			t.Errorf("logits have %d positions, want %d", got[1], ids.Shape[1])
		}
		return out["logits"], nil
	}
	worst, diffs := compareForward(t, run, "logits")
	if worst > 1e-4 || diffs > 0 {
		t.Errorf("padded run: max abs error %.3g, %d argmax differences", worst, diffs)
	}
	long := ir.NewTensor(ir.I64, 2, 49)
	if _, err := p.Run(map[string]*ir.Tensor{"input_ids": long, "attention_mask": long}); err == nil || !strings.Contains(err.Error(), "longest compiled length 48") {
		t.Errorf("too long: %v", err)
	}
}

func TestBuildAscendFullSize8B(t *testing.T) {
	if testing.Short() {
		t.Skip("full-size build skipped in -short mode")
	}
	withoutATC(t)
	dir := t.TempDir()
	ckpt := filepath.Join(dir, "ckpt")
	writeSparse8B(t, ckpt)
	out := filepath.Join(dir, "bundle")
	res, err := BuildAscend(context.Background(), BuildOptions{Model: ckpt, Out: out}, AscendOptions{SeqLens: []int64{512, 1539}})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("8B ascend build: %d nodes, %d weights, %.1f GB, %v", res.GraphNodes, res.Params, float64(res.ParamBytes)/1e9, res.Elapsed)
	findings, err := ascend.CheckFile(res.ModelFile)
	if err != nil {
		t.Fatal(err)
	}
	if len(findings) != 0 {
		t.Errorf("check-ascend reports %d findings on the 8B model: %v", len(findings), findings[:min(5, len(findings))])
	}
	if !strings.Contains(res.ATCCommand, "--dynamic_dims='512,512;1539,1539'") {
		t.Errorf("ATC command %q", res.ATCCommand)
	}
	if res.Params != 291 || len(res.Manifest.Weights) != 291 {
		t.Errorf("%d weights, %d weight files; want 291", res.Params, len(res.Manifest.Weights))
	}
	runChecker(t, res.ModelFile, "--by-path")
}
