package engine

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/mmadac/mmadac/codegen/bundle"
	"github.com/mmadac/mmadac/codegen/onnx"
	"github.com/mmadac/mmadac/ir"
)

// BuildOptions are the settings of `mmadac build`.
type BuildOptions struct {
	Model   string
	Out     string
	Target  string
	Weights onnx.WeightMode
	// Passes configures the pass pipeline.
	Passes PassOptions
	// Schedules are the sampler settings whose per-step tables the
	// bundle stores; the zero value means DefaultScheduleSettings.
	Schedules ScheduleSettings
	// Check, when positive, compares the graph before and after the
	// pipeline on that many random inputs (see CheckEquivalence).
	Check int
}

// BuildResult reports what a build wrote.
type BuildResult struct {
	Files       []string
	Params      int
	ParamBytes  int64
	GraphNodes  int
	Elapsed     time.Duration
	ModelFile   string
	Transformer *ir.Graph
}

// Build compiles a checkpoint into a bundle folder: the transformer as
// ONNX, the checkpoint's config and a manifest. The weights are never
// loaded for an external build; an inline build copies them once.
func Build(opts BuildOptions) (*BuildResult, error) {
	start := time.Now()
	if opts.Target == "" {
		opts.Target = "onnx"
	}
	if opts.Target != "onnx" && opts.Target != "ascend" {
		return nil, fmt.Errorf("target %q is not supported; use onnx or ascend", opts.Target)
	}
	if opts.Weights == "" {
		opts.Weights = onnx.WeightsInline
	}
	if opts.Schedules == (ScheduleSettings{}) {
		opts.Schedules = DefaultScheduleSettings()
	}
	if opts.Weights != onnx.WeightsInline && opts.Weights != onnx.WeightsExternal {
		return nil, fmt.Errorf("weights %q is not supported; use inline or external", opts.Weights)
	}
	opts.Passes.Target = opts.Target
	cfg, ck, g, err := OpenCheckpointModelWith(opts.Model, opts.Passes)
	if err != nil {
		return nil, err
	}
	defer ck.Close()
	if opts.Check > 0 {
		if err := CheckEquivalence(cfg, ck, g, opts.Check); err != nil {
			return nil, err
		}
	}
	pb := paramBytes(g)
	if opts.Weights == onnx.WeightsInline && pb > maxInlineBytes {
		return nil, fmt.Errorf("the checkpoint has %d bytes of weights, over the 2 GB limit of one ONNX file; use --weights external", pb)
	}
	slog.Info("graph built", "graph", g.Name, "nodes", len(g.Nodes), "params", len(g.Params), "param_bytes", pb)

	if err := os.MkdirAll(opts.Out, 0o755); err != nil {
		return nil, err
	}
	res := &BuildResult{Params: len(g.Params), ParamBytes: pb, GraphNodes: len(g.Nodes), Transformer: g}
	modelPath := filepath.Join(opts.Out, "transformer.onnx")
	if err := onnx.Write(g, modelPath, onnx.Options{Weights: opts.Weights, MicrosoftDomain: opts.Target == "onnx"}); err != nil {
		return nil, fmt.Errorf("writing %s: %w", modelPath, err)
	}
	res.ModelFile = modelPath
	res.Files = append(res.Files, modelPath)

	cfgData, err := os.ReadFile(filepath.Join(opts.Model, "config.json"))
	if err != nil {
		return nil, err
	}
	if err := writeFileAtomic(filepath.Join(opts.Out, "config.json"), cfgData); err != nil {
		return nil, err
	}
	m, err := onnxManifest(opts, cfg, cfgData, g, modelPath)
	if err != nil {
		return nil, err
	}
	if err := bundle.Write(opts.Out, m); err != nil {
		return nil, err
	}
	res.Files = append(res.Files, filepath.Join(opts.Out, "config.json"), filepath.Join(opts.Out, bundle.ManifestFile))
	res.Elapsed = time.Since(start)
	return res, nil
}

// writeFileAtomic writes through a temporary file and a rename, so that a
// failure leaves no partial file.
func writeFileAtomic(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return err
	}
	if err := tmp.Close(); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// LoadModel opens a checkpoint folder or a bundle. An ascend bundle goes
// to LoadBundle. For an onnx bundle the weight hashes are checked; the ort
// backend then runs the bundle's ONNX file, and interp (and the folded-head
// variants) rebuild the graph from the checkpoint the bundle was built from.
func LoadModel(path, backend string) (*TextModel, error) {
	if !bundle.IsBundle(path) {
		return LoadTextModel(path, backend)
	}
	m, err := bundle.Read(path)
	if err != nil {
		return nil, err
	}
	if m.Target != "onnx" {
		return LoadBundle(path, backend)
	}
	if err := bundle.VerifyWeights(path, m); err != nil {
		return nil, err
	}
	gr := m.Graph("transformer")
	if gr == nil {
		return nil, fmt.Errorf("bundle %s has no transformer graph", path)
	}
	if backend == BackendInterp {
		return LoadTextModel(m.Checkpoint, backend)
	}
	cfg, ck, g, err := OpenCheckpointModel(m.Checkpoint)
	if err != nil {
		return nil, fmt.Errorf("bundle %s: %w", path, err)
	}
	sess, err := openORTFile(g, filepath.Join(path, gr.ONNXFile))
	if err != nil {
		ck.Close()
		if backend == BackendORT {
			return nil, err
		}
		return LoadTextModel(m.Checkpoint, BackendInterp)
	}
	tm := &TextModel{Config: cfg, Graph: g, Backend: BackendORT, ckpt: ck, session: sess}
	tm.Schedules = m.Schedules
	return tm, nil
}
