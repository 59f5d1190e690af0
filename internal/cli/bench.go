package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/mmadac/mmadac/codegen/bundle"
	"github.com/mmadac/mmadac/frontend"
	"github.com/mmadac/mmadac/internal/atomicfile"
	"github.com/mmadac/mmadac/internal/bench"
	"github.com/mmadac/mmadac/internal/engine"
	"github.com/mmadac/mmadac/ir"
	"github.com/mmadac/mmadac/models"
	"github.com/mmadac/mmadac/models/mmada"
	"github.com/mmadac/mmadac/passes"
	"github.com/mmadac/mmadac/runtime/ort"
	"github.com/mmadac/mmadac/runtime/sampler"
)

// benchOptions are the flags of `mmadac bench`.
type benchOptions struct {
	scenarios []string
	model     string
	backend   string
	onnx      string
	pipeline  string
	foldHead  bool
	label     string

	batch, promptLength        int
	genLength, blockLength     int
	steps                      int
	imageTokens, t2iSteps      int
	guidanceScale, temperature float64
	forwardRuns                int
	seed                       uint64
	parallelThreshold          float64
	stopAtEOS, compareExact    bool
	blockCache                 string
	cases                      string
	calibrate                  bool
	peakBackend                string
	peakGFLOPS                 float64
	peakTime                   time.Duration
	json                       bool
	plot                       string
	changed                    func(name string) bool
	stdout                     io.Writer
}

// benchReport is the document that --json prints.
type benchReport struct {
	Machine bench.Machine         `json:"machine"`
	Model   string                `json:"model"`
	Peak    *bench.Peak           `json:"peak,omitempty"`
	Results []*bench.Result       `json:"results,omitempty"`
	Cases   []bench.CaseAgreement `json:"cases,omitempty"`
}

func newBenchCmd() *cobra.Command {
	o := &benchOptions{}
	cmd := &cobra.Command{
		Use:   "bench [--scenario text,mmu,t2i,forward|all] [--model CKPT | --onnx FILE --model CKPT]",
		Short: "Measure the samplers: step latency, throughput, GFLOP/s against the machine's peak, memory",
		Long: `Measure the samplers end to end on a text model.

Scenarios (defaults; --steps and the other size flags override them):
  text     prompt 64, gen 256, block 32, 256 steps, greedy
  mmu      256 image codes and a 32-token question, gen 128, block 32, 128 steps
  t2i      64-token caption, 1024 image tokens, 15 steps, guidance 3.5 (transformer steps only)
  forward  8 calls on one sequence of 320 tokens

Without --model, the mid-size config (d_model 512, 8 layers, vocabulary
32768) with random weights is written to the cache once and used. With
--onnx FILE the steps run that ONNX file on ONNX Runtime (inputs input_ids
and attention_mask, output logits, as torch.onnx.export writes them),
driven by the same Go sampler with full logits every step; --model then
gives the config.

The peak GFLOP/s is calibrated before the scenarios: one matmul node per
shape (the model's projections, its head, and 1024³) on ONNX Runtime when
it loads (--peak-backend), the fastest of repeated runs, the best shape. The table reports each step's FLOPs (counted on the graph that ran)
over the median step time against that peak.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			o.changed = cmd.Flags().Changed
			o.stdout = cmd.OutOrStdout()
			return runBench(cmd.Context(), o)
		},
	}
	f := cmd.Flags()
	f.StringSliceVar(&o.scenarios, "scenario", []string{bench.KindText}, "scenarios to run, comma-separated: text, mmu, t2i, forward or all")
	f.StringVar(&o.model, "model", "", "checkpoint folder (default: the mid-size config with random weights, written to the cache)")
	f.StringVar(&o.backend, "backend", "auto", "auto, interp or ort")
	f.StringVar(&o.onnx, "onnx", "", "run this ONNX file on ONNX Runtime instead of mmadac's graphs (the naive-export peer)")
	f.StringVar(&o.pipeline, "passes", "default", "default: the onnx target's pipeline; none: the unoptimised graph with full logits")
	f.BoolVar(&o.foldHead, "fold-head", true, "fold the sampling head into the graph (false: full logits every step, as upstream)")
	f.StringVar(&o.label, "label", "", "name of the target in the results (default: derived from --onnx, --backend and --passes)")
	f.IntVar(&o.batch, "batch", 1, "sequences per run")
	f.IntVar(&o.promptLength, "prompt-length", 0, "prompt tokens: text prompt, mmu question, t2i caption or forward sequence (default per scenario)")
	f.IntVar(&o.genLength, "gen-length", 0, "text and mmu: tokens to generate (default per scenario)")
	f.IntVar(&o.blockLength, "block-length", 0, "text and mmu: tokens per block (default 32)")
	f.IntVar(&o.steps, "steps", 0, "text and mmu: sampling steps in all; fewer steps keep the per-step work (default: one per generated token)")
	f.IntVar(&o.imageTokens, "image-tokens", 0, "mmu: image codes in the prompt (default 256); t2i: image tokens to generate (default 1024)")
	f.IntVar(&o.t2iSteps, "t2i-steps", 0, "t2i: decoding steps (default 15)")
	f.Float64Var(&o.guidanceScale, "guidance-scale", 3.5, "t2i: classifier-free guidance scale")
	f.Float64Var(&o.temperature, "temperature", 0, "text and mmu: sampling temperature (0 = greedy)")
	f.IntVar(&o.forwardRuns, "forward-runs", 0, "forward: timed calls (default 8)")
	f.Uint64Var(&o.seed, "seed", 1, "seed of the random prompts and the sampler noise")
	f.Float64Var(&o.parallelThreshold, "parallel-threshold", 0, "text and mmu: unmask every position whose confidence exceeds this (0 = exact decoding)")
	f.BoolVar(&o.stopAtEOS, "stop-at-eos", false, "text and mmu: stop after the block in which every row has produced end of text")
	f.StringVar(&o.blockCache, "block-cache", "", "text and mmu: reuse keys and values within a block (approximate; GFLOP/s is not reported); --block-cache or =dual for the prefix and suffix, =prefix for the prefix only")
	f.Lookup("block-cache").NoOptDefVal = engine.CacheDual
	f.BoolVar(&o.compareExact, "compare-exact", true, "with --parallel-threshold, --stop-at-eos or --block-cache, also run exact decoding and report the speed-up and the tokens that agree")
	f.StringVar(&o.cases, "cases", "", "instead of the scenarios, compare the opt-in mode (--parallel-threshold, --stop-at-eos or --block-cache) with exact decoding on every text and mmu case of this golden cases.json")
	f.BoolVar(&o.calibrate, "calibrate", true, "calibrate the peak GFLOP/s before the scenarios")
	f.StringVar(&o.peakBackend, "peak-backend", "auto", "backend whose matrix product sets the peak: auto (ONNX Runtime when it loads, the machine's fastest kernel here), ort or interp")
	f.Float64Var(&o.peakGFLOPS, "peak-gflops", 0, "use this peak GFLOP/s instead of calibrating")
	f.DurationVar(&o.peakTime, "peak-time", time.Second, "calibration time per matrix-product shape")
	f.BoolVar(&o.json, "json", false, "print the results as JSON")
	f.StringVar(&o.plot, "plot", "", "write an SVG of step latency and tokens unmasked per step to this file")
	return cmd
}

func runBench(ctx context.Context, o *benchOptions) error {
	kinds, err := benchKinds(o.scenarios)
	if err != nil {
		return err
	}
	if o.backend != engine.BackendAuto && o.backend != engine.BackendInterp && o.backend != engine.BackendORT {
		return usagef("--backend %q is not supported; use auto, interp or ort", o.backend)
	}
	if o.pipeline != "default" && o.pipeline != "none" {
		return usagef("--passes %q is not supported; use default or none", o.pipeline)
	}
	if o.parallelThreshold < 0 || o.parallelThreshold >= 1 {
		return usagef("--parallel-threshold %g must be in [0, 1)", o.parallelThreshold)
	}
	if err := checkBlockCache(o.blockCache); err != nil {
		return err
	}
	if o.cases != "" && o.plot != "" {
		return usagef("--plot draws the steps of the scenarios; --cases runs none, so drop one of them")
	}
	if o.plot != "" && !strings.HasSuffix(o.plot, ".svg") {
		return usagef("--plot %s: the plot is SVG; name the file *.svg", o.plot)
	}
	if o.plot != "" {
		if fi, err := os.Stat(filepath.Dir(o.plot)); err != nil || !fi.IsDir() {
			dir := filepath.Dir(o.plot)
			return usagef("--plot %s: folder %s does not exist; create it first", o.plot, dir)
		}
	}
	if ctx == nil {
		ctx = context.Background()
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt)
	defer stop()

	dir, err := benchModelDir(o.model)
	if err != nil {
		return err
	}
	target, closeTarget, err := openBenchTarget(o, dir)
	if err != nil {
		return err
	}
	defer closeTarget()
	report := benchReport{Machine: bench.DescribeMachine(), Model: dir}

	if o.cases != "" {
		mode := benchScenarioMode(o)
		if mode.ParallelThreshold == 0 && !mode.StopAtEOS && o.blockCache == "" {
			return usagef("--cases compares an opt-in mode with exact decoding; add --parallel-threshold, --stop-at-eos or --block-cache")
		}
		exact := target.Model
		if cached, ok := target.Model.(*cachedModel); ok {
			exact = cached.TextModel
		}
		report.Cases, err = bench.CompareCases(ctx, exact, target.Model, target.Config, o.cases, mode)
		if err != nil {
			return err
		}
		return printBench(o, report)
	}

	var scenarios []bench.Scenario
	for _, k := range kinds {
		s, err := benchScenario(o, k)
		if err != nil {
			return err
		}
		if err := s.Validate(target.Config); err != nil {
			return usagef("scenario %s: %v", k, err)
		}
		scenarios = append(scenarios, s)
	}

	peak := o.peakGFLOPS
	if peak <= 0 && o.calibrate {
		p, err := calibrateBenchPeak(o.peakBackend, target.Config, scenarios[0].SequenceLength(), o.peakTime)
		if err != nil {
			return err
		}
		report.Peak, peak = &p, p.GFLOPS
	}

	for _, s := range scenarios {
		t := target
		t.FLOPs, err = benchFLOPs(o, dir, target, s)
		if err != nil {
			return err
		}
		exactTarget := t
		cached, isCached := t.Model.(*cachedModel)
		if isCached {
			exactTarget.Model = cached.TextModel
			if s.Kind != bench.KindText && s.Kind != bench.KindMMU {
				// The cache serves the block-wise text samplers only;
				// the other scenarios run exact, without a comparison.
				slog.Warn("bench: --block-cache applies to the text and mmu scenarios; running this one exact", "scenario", s.Kind)
				t, isCached = exactTarget, false
			} else {
				// Steps inside a block do less work than the full
				// graph's count, so GFLOP/s would be overstated.
				t.FLOPs = nil
				t.Mode = o.blockCache + " block cache"
			}
		}
		r, err := bench.Run(ctx, t, s, peak)
		if err != nil {
			return err
		}
		if isCached {
			// The cache's session would otherwise stay resident through
			// the exact run and count in its peak memory.
			if err := cached.cache.Release(); err != nil {
				return err
			}
		}
		if r.Mode != "exact" && o.compareExact {
			exact := s
			exact.Text.ParallelThreshold, exact.Text.StopAtEOS = 0, false
			e, err := bench.Run(ctx, exactTarget, exact, peak)
			if err != nil {
				return fmt.Errorf("exact decoding for comparison: %w", err)
			}
			if r.Agreement, err = bench.Compare(r, e); err != nil {
				return err
			}
			report.Results = append(report.Results, e)
		}
		report.Results = append(report.Results, r)
	}
	// The results are printed before the plot is written, so that a
	// plot that cannot be written does not lose a long run.
	if err := printBench(o, report); err != nil {
		return err
	}
	if o.plot != "" {
		if err := atomicfile.Write(o.plot, 0o644, func(w io.Writer) error { return bench.WritePlot(w, report.Results) }); err != nil {
			return fmt.Errorf("--plot: %w", err)
		}
	}
	return nil
}

// benchKinds expands the --scenario list.
func benchKinds(list []string) ([]string, error) {
	var out []string
	for _, k := range list {
		if k == "all" {
			out = append(out, bench.Kinds...)
			continue
		}
		if _, err := bench.DefaultScenario(k); err != nil {
			return nil, usagef("--scenario: %v", err)
		}
		out = append(out, k)
	}
	if len(out) == 0 {
		return nil, usagef("--scenario is empty; name at least one of %s or all", strings.Join(bench.Kinds, ", "))
	}
	return out, nil
}

// benchScenarioMode returns the opt-in mode fields set by the flags.
func benchScenarioMode(o *benchOptions) (p sampler.TextParams) {
	p.ParallelThreshold, p.StopAtEOS = o.parallelThreshold, o.stopAtEOS
	return p
}

// benchScenario applies the flags the user set to a kind's defaults.
func benchScenario(o *benchOptions, kind string) (bench.Scenario, error) {
	s, err := bench.DefaultScenario(kind)
	if err != nil {
		return s, err
	}
	set := func(flag string, dst *int, v int) {
		if o.changed(flag) {
			*dst = v
		}
	}
	s.Batch, s.Seed = o.batch, o.seed
	set("prompt-length", &s.PromptLength, o.promptLength)
	switch kind {
	case bench.KindText, bench.KindMMU:
		set("gen-length", &s.Text.GenLength, o.genLength)
		set("block-length", &s.Text.BlockLength, o.blockLength)
		// Without --steps, keep one step per generated token.
		s.Text.Steps = s.Text.GenLength
		set("steps", &s.Text.Steps, o.steps)
		s.Text.Temperature = o.temperature
		s.Text.ParallelThreshold, s.Text.StopAtEOS = o.parallelThreshold, o.stopAtEOS
		if kind == bench.KindMMU {
			set("image-tokens", &s.ImageTokens, o.imageTokens)
		}
	case bench.KindT2I:
		set("image-tokens", &s.ImageTokens, o.imageTokens)
		set("t2i-steps", &s.T2ISteps, o.t2iSteps)
		s.GuidanceScale = o.guidanceScale
	case bench.KindForward:
		set("forward-runs", &s.ForwardRuns, o.forwardRuns)
	}
	return s, nil
}

// benchModelDir returns --model, or the cached mid-size checkpoint.
func benchModelDir(model string) (string, error) {
	if model != "" {
		return model, nil
	}
	cache := os.Getenv("MMADAC_CACHE")
	if cache == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return "", fmt.Errorf("no --model given and the cache folder is unknown (%v); set MMADAC_CACHE or pass --model", err)
		}
		cache = filepath.Join(home, ".cache", "mmadac")
	}
	return bench.MidSizeCheckpoint(cache)
}

// openBenchTarget loads the model the flags name.
func openBenchTarget(o *benchOptions, dir string) (bench.Target, func(), error) {
	if o.onnx != "" {
		cfg, err := frontend.LoadLLaDAConfig(filepath.Join(dir, "config.json"))
		if err != nil {
			return bench.Target{}, nil, fmt.Errorf("--onnx takes the config from --model: %w", err)
		}
		m, err := engine.OpenONNXModel(o.onnx, cfg.Vocab())
		if err != nil {
			return bench.Target{}, nil, err
		}
		name := o.label
		if name == "" {
			name = "onnx " + filepath.Base(o.onnx)
		}
		t := bench.Target{Name: name, Backend: engine.BackendORT, Pipeline: "naive export", Model: m, Config: cfg, Threads: ort.AvailableCPUs()}
		return t, func() { m.Close() }, nil
	}
	m, err := loadBenchModel(o, dir)
	if err != nil {
		return bench.Target{}, nil, err
	}
	m.SetHeadFolding(o.foldHead)
	threads := ort.AvailableCPUs()
	if m.Backend == engine.BackendInterp {
		threads = runtime.GOMAXPROCS(0)
	}
	name := o.label
	if name == "" {
		name = "mmadac " + m.Backend
		if o.pipeline == "none" {
			name += " unoptimised"
		} else if !m.HeadFolding() {
			name += " full logits"
		}
	}
	t := bench.Target{Name: name, Backend: m.Backend, Pipeline: o.pipeline, Model: m, Config: m.Config, Threads: threads}
	if o.blockCache != "" {
		cache, err := engine.NewBlockCacheMode(m, o.blockCache)
		if err != nil {
			m.Close()
			return bench.Target{}, nil, usagef("--block-cache=%s: %v", o.blockCache, err)
		}
		cm := &cachedModel{TextModel: m, cache: cache}
		t.Model = cm
		return t, func() { cm.cache.Close(); m.Close() }, nil
	}
	return t, func() { m.Close() }, nil
}

// loadBenchModel loads a checkpoint folder with the --passes pipeline, or
// an onnx bundle with the pipeline it was built with.
func loadBenchModel(o *benchOptions, dir string) (*engine.TextModel, error) {
	if !bundle.IsBundle(dir) {
		return engine.LoadTextModelWith(dir, o.backend, passes.Options{None: o.pipeline == "none"})
	}
	m, err := bundle.Read(dir)
	if err != nil {
		return nil, err
	}
	if m.Target != "onnx" {
		return nil, usagef("--model %s is a %s bundle; mmadac bench runs checkpoint folders and onnx bundles", dir, m.Target)
	}
	if o.pipeline == "none" {
		return nil, usagef("--passes none needs a checkpoint folder; bundle %s runs the pipeline it was built with", dir)
	}
	return engine.LoadModel(dir, o.backend)
}

// cachedModel runs a text model's steps through the block cache.
type cachedModel struct {
	*engine.TextModel
	cache *engine.BlockCache
}

// Head returns the block cache as the sampler's head.
func (c *cachedModel) Head() sampler.Head { return c.cache }

// benchFLOPs returns the FLOP counter of the graph a scenario's steps run.
func benchFLOPs(o *benchOptions, dir string, t bench.Target, s bench.Scenario) (bench.FLOPCounter, error) {
	po := passes.Options{None: o.pipeline == "none" || o.onnx != ""}
	head := ""
	folded := t.Model.Head() != nil && s.Kind != bench.KindForward
	guided := s.Text.CFGScale > 0
	switch {
	case !folded:
	case s.Kind == bench.KindT2I:
		head, guided = passes.HeadProbs, s.GuidanceScale > 0
	case s.Text.Temperature > 0:
		head = passes.HeadLogits
	default:
		head = passes.HeadGreedy
	}
	var ws models.WeightStore
	if tm, ok := t.Model.(interface{ Weights() mmada.WeightStore }); ok {
		ws = tm.Weights()
	} else {
		// The naive export takes its config and headers from --model.
		ck, err := frontend.OpenCheckpoint(dir)
		if err != nil {
			return nil, err
		}
		defer ck.Close()
		ws = ck
	}
	g, err := bench.StepGraph(t.Config, ws, po, head, folded && guided)
	if err != nil {
		return nil, err
	}
	return bench.GraphFLOPs(g), nil
}

// calibrateBenchPeak measures the matrix-product peak on a backend;
// "auto" takes ONNX Runtime when its library loads, else the interpreter.
func calibrateBenchPeak(backend string, cfg *frontend.LLaDAConfig, seq int, perShape time.Duration) (bench.Peak, error) {
	if backend != engine.BackendAuto && backend != engine.BackendInterp && backend != engine.BackendORT {
		return bench.Peak{}, usagef("--peak-backend %q is not supported; use auto, interp or ort", backend)
	}
	if backend == engine.BackendAuto {
		backend = engine.BackendInterp
		if ort.Init() == nil {
			backend = engine.BackendORT
		}
	}
	open := func(g *ir.Graph) (bench.Session, error) {
		s, _, err := engine.OpenSession(g, backend)
		return s, err
	}
	return bench.CalibratePeak(backend, open, bench.PeakShapes(cfg, seq), perShape)
}

func printBench(o *benchOptions, report benchReport) error {
	w := o.stdout
	if o.json {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(report)
	}
	m := report.Machine
	fmt.Fprintf(w, "machine: %s, %d CPUs (%d available), %s %s/%s; model %s\n", m.CPU, m.LogicalCPUs, m.AvailableCPUs, m.GoVersion, m.OS, m.Arch, report.Model)
	if p := report.Peak; p != nil {
		fmt.Fprintf(w, "peak: %.1f GFLOP/s on %s (load %.2f):", p.GFLOPS, p.Backend, p.Load[0])
		for _, s := range p.Shapes {
			fmt.Fprintf(w, " %dx%dx%d %.1f;", s.Shape.M, s.Shape.K, s.Shape.N, s.GFLOPS)
		}
		fmt.Fprintln(w)
	}
	if len(report.Results) > 0 {
		if err := bench.WriteTable(w, report.Results); err != nil {
			return err
		}
	}
	for _, c := range report.Cases {
		golden := "reproduces"
		if !c.ExactMatchesGolden {
			golden = "does NOT reproduce"
		}
		fmt.Fprintf(w, "case %s/%s: exact %s the golden ids; %d steps against %d exact, %.1f%% of %d positions equal\n",
			c.Kind, c.Name, golden, c.Steps, c.ExactSteps, 100*c.Fraction, c.Positions)
	}
	if len(report.Cases) > 0 {
		steps, exact, equal, positions := 0, 0, 0.0, 0
		for _, c := range report.Cases {
			steps, exact, positions = steps+c.Steps, exact+c.ExactSteps, positions+c.Positions
			equal += c.Fraction * float64(c.Positions)
		}
		fmt.Fprintf(w, "all %d cases: %d steps against %d exact, %.1f%% of %d positions equal\n",
			len(report.Cases), steps, exact, 100*equal/float64(positions), positions)
	}
	return nil
}
