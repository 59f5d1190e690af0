package engine

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/mmadac/mmadac/codegen/bundle"
	"github.com/mmadac/mmadac/codegen/onnx"
	"github.com/mmadac/mmadac/frontend"
	"github.com/mmadac/mmadac/frontend/tokenizer"
	"github.com/mmadac/mmadac/internal/atomicfile"
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
	if opts.Check < 0 {
		return nil, fmt.Errorf("check count %d is negative; use 0 to skip the equivalence check", opts.Check)
	}
	opts.Passes.Target = opts.Target
	cfg, ck, g, err := OpenCheckpointModelWith(opts.Model, opts.Passes)
	if err != nil {
		return nil, err
	}
	defer ck.Close()
	// Every setting is checked before anything is written.
	if _, err := foldSchedules(cfg, opts.Schedules); err != nil {
		return nil, err
	}
	if opts.Check > 0 {
		if err := CheckEquivalence(cfg, ck, g, opts.Check); err != nil {
			return nil, err
		}
	}
	pb := paramBytes(g)
	if opts.Weights == onnx.WeightsInline && pb > maxInlineBytes {
		return nil, fmt.Errorf("the checkpoint has %d bytes of weights, over the 1 GB that mmadac puts in one ONNX file (protobufs stop at 2 GB); use --weights external", pb)
	}
	slog.Info("graph built", "graph", g.Name, "nodes", len(g.Nodes), "params", len(g.Params), "param_bytes", pb)

	res := &BuildResult{Params: len(g.Params), ParamBytes: pb, GraphNodes: len(g.Nodes), Transformer: g}
	final := opts.Out
	err = stageBundle(final, func(dir string) error {
		opts.Out = dir
		if err := writeONNXBundle(opts, cfg, g, res); err != nil {
			return err
		}
		// The files are listed relative to the bundle, which is renamed
		// into place after this.
		links, err := filepath.Glob(filepath.Join(dir, "weights", "*"))
		if err != nil {
			return err
		}
		res.Files = append(res.Files, links...)
		for i, f := range res.Files {
			if res.Files[i], err = filepath.Rel(dir, f); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	for i, f := range res.Files {
		res.Files[i] = filepath.Join(final, f)
	}
	res.ModelFile = filepath.Join(final, filepath.Base(res.ModelFile))
	res.Elapsed = time.Since(start)
	return res, nil
}

// writeONNXBundle writes the model, the config and the manifest into dir
// (opts.Out).
func writeONNXBundle(opts BuildOptions, cfg *frontend.LLaDAConfig, g *ir.Graph, res *BuildResult) error {
	modelPath := filepath.Join(opts.Out, "transformer.onnx")
	if err := onnx.Write(g, modelPath, onnx.Options{Weights: opts.Weights, MicrosoftDomain: opts.Target == "onnx"}); err != nil {
		return fmt.Errorf("writing %s: %w", modelPath, err)
	}
	res.ModelFile = modelPath
	res.Files = append(res.Files, modelPath)

	cfgData, err := os.ReadFile(filepath.Join(opts.Model, "config.json"))
	if err != nil {
		return err
	}
	if err := writeFileAtomic(filepath.Join(opts.Out, "config.json"), cfgData); err != nil {
		return err
	}
	m, err := onnxManifest(opts, cfg, cfgData, g, modelPath)
	if err != nil {
		return err
	}
	if err := bundle.Write(opts.Out, m); err != nil {
		return err
	}
	res.Files = append(res.Files, filepath.Join(opts.Out, "config.json"), filepath.Join(opts.Out, bundle.ManifestFile))

	// The tokenizer travels with the bundle, so that text prompts work
	// from the bundle alone.
	tok, err := os.ReadFile(filepath.Join(opts.Model, tokenizer.FileName))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if err := writeFileAtomic(filepath.Join(opts.Out, tokenizer.FileName), tok); err != nil {
		return err
	}
	res.Files = append(res.Files, filepath.Join(opts.Out, tokenizer.FileName))
	return nil
}

// stageBundle runs write on a temporary folder next to out and moves the
// result into place only when it succeeds, so a failed build leaves no
// partial bundle and an existing bundle intact. An existing out must be an
// empty folder or a bundle; any other folder is left alone.
func stageBundle(out string, write func(dir string) error) error {
	if st, err := os.Stat(out); err == nil {
		if !st.IsDir() {
			return fmt.Errorf("output %s exists and is not a folder; choose another --out", out)
		}
		entries, _ := os.ReadDir(out)
		if len(entries) > 0 && !bundle.IsBundle(out) {
			return fmt.Errorf("output folder %s is not empty and contains no bundle; choose an empty or new --out so that nothing of yours is replaced", out)
		}
	}
	parent := filepath.Dir(out)
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp(parent, "."+filepath.Base(out)+".build-*")
	if err != nil {
		return err
	}
	if err := os.Chmod(tmp, 0o755); err != nil {
		os.RemoveAll(tmp)
		return err
	}
	if err := write(tmp); err != nil {
		os.RemoveAll(tmp)
		return err
	}
	old := ""
	if _, err := os.Stat(out); err == nil {
		old = tmp + ".old"
		if err := os.Rename(out, old); err != nil {
			os.RemoveAll(tmp)
			return err
		}
	}
	if err := os.Rename(tmp, out); err != nil {
		if old != "" {
			os.Rename(old, out)
		}
		os.RemoveAll(tmp)
		return err
	}
	if old != "" {
		os.RemoveAll(old)
	}
	return nil
}

// writeFileAtomic writes through a temporary file and a rename, so that a
// failure leaves no partial file.
func writeFileAtomic(path string, data []byte) error {
	return atomicfile.WriteBytes(path, data, 0o644)
}

// LoadModel opens a checkpoint folder or a bundle. An ascend bundle goes
// to LoadBundle. For an onnx bundle the weight files are checked against
// the manifest, and everything runs from the bundle's own files (see
// loadONNXBundle).
func LoadModel(path, backend string) (*TextModel, error) {
	if err := CheckBackend(backend); err != nil {
		return nil, err
	}
	ascendBundle := false
	if bundle.IsBundle(path) {
		if m, err := bundle.Read(path); err == nil && m.Target == "ascend" {
			ascendBundle = true
		}
	}
	if backend == BackendACL && !ascendBundle {
		return nil, fmt.Errorf("the acl backend runs Ascend OM models, and %s is not an ascend bundle; build one with `mmadac build --target ascend` (ATC writes the OM) or use --backend ort or interp", path)
	}
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
	tm, err := loadONNXBundle(path, backend, m, gr)
	if err != nil {
		return nil, err
	}
	tm.Schedules = m.Schedules
	if v, ok := m.Option(OptionT2ITemperature); ok {
		tm.scheduleT2ITemperature, _ = strconv.ParseFloat(v, 64)
	}
	return tm, nil
}

// loadONNXBundle opens an onnx bundle's transformer from the bundle
// alone: the graph is built over the weights its ONNX file holds or links
// (see bundleStore), and runs as that ONNX file on ort or as the graph on
// interp. On ort the head variants and the block-cache graph read the
// bundle's weights too, so a model of any size runs with them.
func loadONNXBundle(path, backend string, m *bundle.Manifest, gr *bundle.Graph) (*TextModel, error) {
	cfg, err := frontend.ParseLLaDAConfig(m.Config)
	if err != nil {
		return nil, fmt.Errorf("bundle %s: config: %w", path, err)
	}
	onnxFile := filepath.Join(path, gr.ONNXFile)
	inits, err := onnx.ReadInitializers(onnxFile)
	if err != nil {
		return nil, fmt.Errorf("bundle %s: %w; build the bundle again", path, err)
	}
	store, err := openBundleStore(path, inits)
	if err != nil {
		return nil, fmt.Errorf("bundle %s: %w; build the bundle again", path, err)
	}
	g, err := buildTransformer(cfg, store, PassOptions{})
	if err != nil {
		store.Close()
		return nil, fmt.Errorf("bundle %s: %w", path, err)
	}
	tm, err := newTextModel(cfg, store, g, backend, PassOptions{})
	if err != nil {
		return nil, err
	}
	if tm.Backend == BackendORT {
		// The full-logits graph is the bundle's own compiled file.
		tm.openMain = func() (Session, error) { return openORTFile(g, onnxFile) }
	}
	return tm, nil
}

// CheckBackend rejects unknown backend names.
func CheckBackend(name string) error {
	switch name {
	case BackendAuto, "", BackendInterp, BackendORT, BackendACL:
		return nil
	}
	return fmt.Errorf("unknown backend %q; use auto, acl, ort or interp", name)
}
