package engine

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/mmadac/mmadac/codegen/ascend"
	"github.com/mmadac/mmadac/codegen/atc"
	"github.com/mmadac/mmadac/codegen/bundle"
	"github.com/mmadac/mmadac/codegen/onnx"
	"github.com/mmadac/mmadac/codegen/onnx/onnxpb"
	"github.com/mmadac/mmadac/frontend"
	"github.com/mmadac/mmadac/ir"
	"github.com/mmadac/mmadac/models/mmada"
	"github.com/mmadac/mmadac/passes"
	"github.com/mmadac/mmadac/runtime/interp"
)

// Weight precisions of an ascend build.
const (
	// PrecisionF32 keeps float32 weights and passes
	// --precision_mode_v2=origin, so ATC keeps the graph's dtypes. A
	// bfloat16 checkpoint is stored as float16, which represents every
	// bfloat16 value between 2^-14 and 65504 exactly.
	PrecisionF32 = "f32"
	// PrecisionF16 stores every weight as float16 and lets ATC compute in
	// float16 (--precision_mode_v2=fp16), except the nodes that
	// ascend.KeepDTypeNodes lists, which a --keep_dtype file keeps in
	// float32.
	PrecisionF16 = "f16"
)

// Defaults of AscendOptions.
const (
	DefaultSoC        = "Ascend910B3"
	DefaultATCTimeout = 2 * time.Hour
	// keepDTypeFile is the --keep_dtype file of a float16 build, written
	// next to the model.
	keepDTypeFile = "keep_dtype.cfg"
	// transformerBase names the transformer's files in a bundle.
	transformerBase = "transformer"
)

// AscendOptions are the settings of `mmadac build --target ascend` beyond
// BuildOptions.
type AscendOptions struct {
	// SoC is ATC's --soc_version; empty means DefaultSoC.
	SoC string
	// ATC is the atc executable. Empty looks it up on PATH, and when it is
	// not there the build skips the conversion and reports the command to
	// run. An explicit path that does not exist is an error.
	ATC string
	// SeqLens are the sequence lengths: one gives static shapes, two or
	// more become ATC gears. Empty means the config's max_sequence_length.
	SeqLens []int64
	// Batch fixes the batch dimension for ATC; 0 means 1.
	Batch int64
	// Precision is PrecisionF32 (the default) or PrecisionF16.
	Precision string
	// ATCTimeout bounds the ATC run; 0 means DefaultATCTimeout.
	ATCTimeout time.Duration
}

// AscendResult reports what an ascend build wrote.
type AscendResult struct {
	BuildResult
	// Bundle is the bundle folder.
	Bundle string
	// OMFile is the OM file ATC wrote, or "" when ATC did not run.
	OMFile string
	// ATCCommand is the shell command that converts the ONNX model on a
	// machine with CANN (what ran, when ATC ran here).
	ATCCommand string
	// ATCSkipped is the reason ATC did not run, or "" when it ran.
	ATCSkipped string
	// Manifest is the manifest written to the bundle.
	Manifest *bundle.Manifest
}

// withDefaults fills the zero fields and checks the values.
func (a AscendOptions) withDefaults(cfg *frontend.LLaDAConfig) (AscendOptions, error) {
	if a.SoC == "" {
		a.SoC = DefaultSoC
	}
	if err := atc.ValidateSoC(a.SoC); err != nil {
		return a, fmt.Errorf("--soc: %w", err)
	}
	if a.Batch == 0 {
		a.Batch = 1
	}
	if a.Batch < 0 {
		return a, fmt.Errorf("--batch %d is negative; use a positive batch size", a.Batch)
	}
	if a.Precision == "" {
		a.Precision = PrecisionF32
	}
	if a.Precision != PrecisionF32 && a.Precision != PrecisionF16 {
		return a, fmt.Errorf("--precision %q is not supported; use f32 or f16", a.Precision)
	}
	if len(a.SeqLens) == 0 {
		a.SeqLens = []int64{int64(cfg.MaxSequenceLength)}
		slog.Info("no --seq-len given; compiling one static length, the config's max_sequence_length", "seq_len", a.SeqLens[0])
	}
	if a.ATCTimeout == 0 {
		a.ATCTimeout = DefaultATCTimeout
	}
	return a, nil
}

// plan returns the shape plan: batch fixed, seq fixed or geared.
func (a AscendOptions) plan() ascend.ShapePlan {
	return ascend.ShapePlan{Fixed: map[string]int64{"batch": a.Batch}, Gear: "seq", Values: a.SeqLens}
}

// BuildAscend compiles a checkpoint for Huawei's ATC into a bundle folder.
// It runs the ascend pass pipeline (with legalize-ascend), then writes each
// weight to its own file and the transformer as ONNX next to them. It
// checks the ONNX for anything ATC would reject, fails if it finds any, and
// converts it to an OM file when ATC is available. Without ATC it stops
// after the ONNX and reports the command in AscendResult.ATCCommand. The
// FlatBuffers manifest lists the graphs, shapes or gears, schedules, build
// options and the SHA-256 of each weight file.
func BuildAscend(ctx context.Context, opts BuildOptions, a AscendOptions) (*AscendResult, error) {
	start := time.Now()
	if opts.Model == "" || opts.Out == "" {
		return nil, errors.New("an ascend build needs the checkpoint folder and the output folder")
	}
	if opts.Target != "" && opts.Target != "ascend" {
		return nil, fmt.Errorf("BuildAscend builds the ascend target, not %q", opts.Target)
	}
	cfg, ck, g, a, err := openForAscend(opts, a)
	if err != nil {
		return nil, err
	}
	defer ck.Close()
	plan := a.plan()
	shapes, gears, err := plan.ATC(g)
	if err != nil {
		return nil, fmt.Errorf("--seq-len: %w", err)
	}
	if opts.Check > 0 {
		if err := CheckEquivalence(cfg, ck, g, opts.Check); err != nil {
			return nil, err
		}
	}

	if err := os.MkdirAll(opts.Out, 0o755); err != nil {
		return nil, err
	}
	res := &AscendResult{Bundle: opts.Out}
	res.Params, res.ParamBytes, res.GraphNodes, res.Transformer = len(g.Params), paramBytes(g), len(g.Nodes), g
	weights, err := ascend.WriteWeights(g, opts.Out)
	if err != nil {
		return nil, err
	}
	for _, w := range weights {
		res.Files = append(res.Files, filepath.Join(opts.Out, w.File))
	}
	modelPath := filepath.Join(opts.Out, transformerBase+".onnx")
	if err := onnx.Write(g, modelPath, onnx.Options{Weights: onnx.WeightsPerTensor}); err != nil {
		return nil, fmt.Errorf("writing %s: %w", modelPath, err)
	}
	res.ModelFile = modelPath
	res.Files = append(res.Files, modelPath)

	findings, err := ascend.CheckFile(modelPath)
	if err != nil {
		return nil, err
	}
	if len(findings) > 0 {
		var b strings.Builder
		ascend.WriteReport(&b, modelPath, findings)
		return nil, fmt.Errorf("the ascend model is not ATC-ready; this is a bug in the ascend pipeline:\n%s", b.String())
	}

	atcOpts := atc.Options{
		ATC: a.ATC, Model: modelPath, Output: filepath.Join(opts.Out, transformerBase), SoC: a.SoC,
		InputShapes: shapes, DynamicDims: gears, Timeout: a.ATCTimeout, PrecisionMode: "origin",
	}
	if a.Precision == PrecisionF16 {
		atcOpts.PrecisionMode = "fp16"
		if err := writeKeepDType(modelPath, filepath.Join(opts.Out, keepDTypeFile)); err != nil {
			return nil, err
		}
		atcOpts.ExtraArgs = []string{"--keep_dtype=" + keepDTypeFile}
		res.Files = append(res.Files, filepath.Join(opts.Out, keepDTypeFile))
	}
	if res.ATCCommand, err = atcOpts.CommandLine(); err != nil {
		return nil, err
	}
	if err := runATC(ctx, atcOpts, res); err != nil {
		return nil, err
	}

	cfgData, err := os.ReadFile(filepath.Join(opts.Model, "config.json"))
	if err != nil {
		return nil, err
	}
	if err := writeFileAtomic(filepath.Join(opts.Out, "config.json"), cfgData); err != nil {
		return nil, err
	}
	res.Files = append(res.Files, filepath.Join(opts.Out, "config.json"))
	m, err := ascendManifest(opts, a, cfg, cfgData, g, plan, gears, weights, res)
	if err != nil {
		return nil, err
	}
	if err := bundle.Write(opts.Out, m); err != nil {
		return nil, err
	}
	res.Manifest = m
	res.Files = append(res.Files, filepath.Join(opts.Out, bundle.ManifestFile))
	res.Elapsed = time.Since(start)
	slog.Info("ascend bundle written", "bundle", opts.Out, "om", res.OMFile != "", "elapsed", res.Elapsed.Round(time.Millisecond))
	return res, nil
}

// openForAscend reads the checkpoint, fills the defaults of a from its
// config, builds the transformer graph and lowers it for the ascend target.
func openForAscend(opts BuildOptions, a AscendOptions) (*frontend.LLaDAConfig, *frontend.Checkpoint, *ir.Graph, AscendOptions, error) {
	st, err := os.Stat(opts.Model)
	if err != nil {
		return nil, nil, nil, a, fmt.Errorf("model %s: %w", opts.Model, err)
	}
	if !st.IsDir() {
		return nil, nil, nil, a, fmt.Errorf("model %s is not a folder; pass a checkpoint folder with config.json and safetensors", opts.Model)
	}
	cfg, err := frontend.LoadLLaDAConfig(filepath.Join(opts.Model, "config.json"))
	if err != nil {
		return nil, nil, nil, a, err
	}
	if a, err = a.withDefaults(cfg); err != nil {
		return nil, nil, nil, a, err
	}
	ck, err := frontend.OpenCheckpoint(opts.Model)
	if err != nil {
		return nil, nil, nil, a, err
	}
	g, err := ascendGraph(cfg, ck, opts.Passes, a)
	if err != nil {
		ck.Close()
		return nil, nil, nil, a, err
	}
	return cfg, ck, g, a, nil
}

// ascendGraph builds the transformer and runs the ascend pipeline, with
// RoPE tables long enough for the longest sequence length, then stores the
// weights as float16 for a float16 build. a must have its defaults.
func ascendGraph(cfg *frontend.LLaDAConfig, ck *frontend.Checkpoint, po PassOptions, a AscendOptions) (*ir.Graph, error) {
	g, err := mmada.Build(cfg, ck, mmada.Options{})
	if err != nil {
		return nil, err
	}
	if po.None {
		return nil, errors.New("--passes none cannot build the ascend target: ATC needs the fused-op decomposition and legalize-ascend")
	}
	po.Target = "ascend"
	maxLen := max(int64(cfg.MaxSequenceLength), passes.DefaultMaxSeqLen)
	for _, s := range a.SeqLens {
		maxLen = max(maxLen, s)
	}
	pc := &passes.Context{Eval: interp.EvalNode, MaxSeqLen: maxLen}
	if _, err := passes.Run(g, pc, po); err != nil {
		return nil, err
	}
	// NOTE: until legalize-ascend is part of Pipelines["ascend"], run it
	// here; it finds nothing to do when the pipeline already ran it.
	if !slices.Contains(passes.Pipelines["ascend"], "legalize-ascend") {
		if err := passes.Registry["legalize-ascend"].Run(g, pc); err != nil {
			return nil, fmt.Errorf("pass legalize-ascend on graph %s: %w", g.Name, err)
		}
	}
	if a.Precision == PrecisionF16 {
		n := passes.ConvertWeightsToF16(g)
		slog.Info("float16 build: float32 weights stored as float16", "weights", n)
	}
	if err := ir.Verify(g); err != nil {
		return nil, err
	}
	return g, nil
}

// runATC converts the model when atc is available and records the OM file;
// without atc on PATH it records why it skipped.
func runATC(ctx context.Context, o atc.Options, res *AscendResult) error {
	omPath := o.Output + ".om"
	if _, err := atc.Find(o.ATC); err != nil {
		if o.ATC != "" || !errors.Is(err, atc.ErrNotFound) {
			return fmt.Errorf("--atc: %w", err)
		}
		res.ATCSkipped = "atc is not on PATH"
		// A stale OM from an earlier build must not pass for this one.
		if err := os.Remove(omPath); err == nil {
			slog.Info("removed the OM file of an earlier build", "path", omPath)
		} else if !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		slog.Info("atc not found; the ONNX model is ATC-ready, run the printed command on a machine with CANN 8.0")
		return nil
	}
	r, err := atc.Run(ctx, o)
	if err != nil {
		return fmt.Errorf("ATC failed on %s: %w", o.Model, err)
	}
	res.OMFile = r.OMPath
	res.Files = append(res.Files, r.OMPath)
	return nil
}

// writeKeepDType writes the --keep_dtype file of a float16 build.
func writeKeepDType(modelPath, path string) error {
	m, err := readModel(modelPath)
	if err != nil {
		return err
	}
	names := ascend.KeepDTypeNodes(m)
	return writeFileAtomic(path, []byte(strings.Join(names, "\n")+"\n"))
}

// ascendManifest assembles the bundle manifest of an ascend build.
func ascendManifest(opts BuildOptions, a AscendOptions, cfg *frontend.LLaDAConfig, cfgData []byte, g *ir.Graph,
	plan ascend.ShapePlan, gears [][]int64, weights []bundle.WeightFile, res *AscendResult) (*bundle.Manifest, error) {
	ins, outs, err := plan.Tensors(g)
	if err != nil {
		return nil, err
	}
	abs, err := filepath.Abs(opts.Model)
	if err != nil {
		return nil, err
	}
	gr := bundle.Graph{Name: g.Name, ONNXFile: filepath.Base(res.ModelFile), SoC: a.SoC, Inputs: ins, Outputs: outs, Gears: gears}
	if res.OMFile != "" {
		gr.OMFile = filepath.Base(res.OMFile)
	}
	seq := make([]string, len(a.SeqLens))
	for i, s := range a.SeqLens {
		seq[i] = strconv.FormatInt(s, 10)
	}
	atcRun := "ran"
	if res.ATCSkipped != "" {
		atcRun = "skipped: " + res.ATCSkipped
	}
	pipeline := slices.Clone(passes.Pipelines["ascend"])
	if !slices.Contains(pipeline, "legalize-ascend") {
		pipeline = append(pipeline, "legalize-ascend")
	}
	return &bundle.Manifest{
		Kind: "mmada", Config: cfgData, Checkpoint: abs, Target: "ascend",
		Created:       time.Now().UTC().Format(time.RFC3339),
		SpecialTokens: cfg.SpecialTokenIDs(),
		Graphs:        []bundle.Graph{gr},
		Schedules:     schedulesFromMeta(g.Meta),
		BuildOptions: []bundle.Option{
			{Key: "target", Value: "ascend"},
			{Key: "precision", Value: a.Precision},
			{Key: "soc", Value: a.SoC},
			{Key: "seq_len", Value: strings.Join(seq, ",")},
			{Key: "batch", Value: strconv.FormatInt(a.Batch, 10)},
			{Key: "weights", Value: string(onnx.WeightsPerTensor)},
			{Key: "passes", Value: strings.Join(pipeline, ",")},
			{Key: "atc", Value: atcRun},
			{Key: "atc_command", Value: res.ATCCommand},
		},
		Weights: weights,
	}, nil
}

// schedulesFromMeta turns the numeric graph Meta entries (comma-separated
// integers or floats, such as rope_table_length) into schedules, sorted by
// name. Other entries are skipped.
func schedulesFromMeta(meta map[string]string) []bundle.Schedule {
	keys := make([]string, 0, len(meta))
	for k := range meta {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var out []bundle.Schedule
	for _, k := range keys {
		parts := strings.Split(meta[k], ",")
		if ints, ok := parseEach(parts, func(p string) (int64, error) { return strconv.ParseInt(p, 10, 64) }); ok {
			out = append(out, bundle.Schedule{Name: k, Ints: ints})
		} else if floats, ok := parseEach(parts, func(p string) (float64, error) { return strconv.ParseFloat(p, 64) }); ok {
			out = append(out, bundle.Schedule{Name: k, Floats: floats})
		}
	}
	return out
}

// parseEach parses every trimmed part, and reports false when one fails.
func parseEach[T any](parts []string, parse func(string) (T, error)) ([]T, bool) {
	out := make([]T, len(parts))
	for i, p := range parts {
		v, err := parse(strings.TrimSpace(p))
		if err != nil {
			return nil, false
		}
		out[i] = v
	}
	return out, true
}

// readModel reads an ONNX model file.
func readModel(path string) (*onnxpb.ModelProto, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	m := &onnxpb.ModelProto{}
	if err := proto.Unmarshal(data, m); err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	return m, nil
}
