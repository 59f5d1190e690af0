package engine

import (
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/mmadac/mmadac/codegen/bundle"
	"github.com/mmadac/mmadac/codegen/onnx"
	"github.com/mmadac/mmadac/frontend"
	"github.com/mmadac/mmadac/ir"
	"github.com/mmadac/mmadac/passes"
	"github.com/mmadac/mmadac/runtime/sampler"
)

// Schedule names stored in bundles.
const (
	ScheduleTextTransfer   = "text_transfer_per_step"
	ScheduleT2IMaskCounts  = "t2i_mask_counts"
	ScheduleT2ITemperature = "t2i_temperatures"
)

// OptionT2ITemperature is the build option recording the initial t2i
// temperature the folded temperatures were computed for.
const OptionT2ITemperature = "t2i_temperature"

// ScheduleSettings are the sampler settings a build folds schedules for.
type ScheduleSettings struct {
	GenLength, Steps, BlockLength int
	Timesteps                     int
	T2ITemperature                float64
}

// DefaultScheduleSettings are upstream's defaults: generate() for text,
// the README's 15 steps at temperature 1 for t2i.
func DefaultScheduleSettings() ScheduleSettings {
	return ScheduleSettings{GenLength: 128, Steps: 128, BlockLength: 128, Timesteps: 15, T2ITemperature: 1}
}

// foldSchedules computes the per-step tables of the samplers for the
// build's settings: the text transfer counts, and for t2i the number of
// image tokens left masked and the temperature after each step.
func foldSchedules(cfg *frontend.LLaDAConfig, s ScheduleSettings) ([]bundle.Schedule, error) {
	var out []bundle.Schedule
	text, err := sampler.TextSchedule(sampler.TextParams{Steps: s.Steps, GenLength: s.GenLength, BlockLength: s.BlockLength, Remasking: "low_confidence"})
	if err != nil {
		return nil, fmt.Errorf("text schedule: %w", err)
	}
	ints := make([]int64, len(text))
	for i, v := range text {
		ints[i] = int64(v)
	}
	out = append(out, bundle.Schedule{Name: ScheduleTextTransfer, Ints: ints})
	if n := cfg.NumVQTokens; n > 1 && s.Timesteps > 0 {
		counts, temps := sampler.T2ISchedule(n, s.Timesteps, s.T2ITemperature)
		out = append(out, bundle.Schedule{Name: ScheduleT2IMaskCounts, Ints: counts}, bundle.Schedule{Name: ScheduleT2ITemperature, Floats: temps})
	}
	return out, nil
}

// onnxManifest assembles the manifest of an onnx-target bundle.
func onnxManifest(opts BuildOptions, cfg *frontend.LLaDAConfig, cfgData []byte, g *ir.Graph, modelPath string) (*bundle.Manifest, error) {
	abs, err := filepath.Abs(opts.Model)
	if err != nil {
		return nil, err
	}
	sched, err := foldSchedules(cfg, opts.Schedules)
	if err != nil {
		return nil, err
	}
	sched = append(sched, schedulesFromMeta(g.Meta)...)
	gr := bundle.Graph{Name: g.Name, ONNXFile: filepath.Base(modelPath)}
	for _, in := range g.Inputs {
		gr.Inputs = append(gr.Inputs, manifestTensor(in.Name, in.Type))
	}
	for _, o := range g.Outputs {
		gr.Outputs = append(gr.Outputs, manifestTensor(o.Name, o.Value.Type))
	}
	pipeline := "none"
	if !opts.Passes.None {
		pipeline = strings.Join(passes.Pipelines["onnx"], ",")
	}
	m := &bundle.Manifest{
		Kind: "mmada", Config: cfgData, Checkpoint: abs, Target: "onnx",
		Created:       time.Now().UTC().Format(time.RFC3339),
		SpecialTokens: cfg.SpecialTokenIDs(),
		Graphs:        []bundle.Graph{gr},
		Schedules:     sched,
		BuildOptions: []bundle.Option{
			{Key: "target", Value: "onnx"},
			{Key: "weights", Value: string(opts.Weights)},
			{Key: "passes", Value: pipeline},
			{Key: "gen_length", Value: strconv.Itoa(opts.Schedules.GenLength)},
			{Key: "steps", Value: strconv.Itoa(opts.Schedules.Steps)},
			{Key: "block_length", Value: strconv.Itoa(opts.Schedules.BlockLength)},
			{Key: "timesteps", Value: strconv.Itoa(opts.Schedules.Timesteps)},
			{Key: OptionT2ITemperature, Value: strconv.FormatFloat(opts.Schedules.T2ITemperature, 'g', -1, 64)},
		},
	}
	if opts.Weights == onnx.WeightsInline {
		sum, size, err := bundle.HashFile(modelPath)
		if err != nil {
			return nil, err
		}
		m.Weights = []bundle.WeightFile{{File: filepath.Base(modelPath), Tensor: "(all weights, inline)", Size: size, SHA256: sum}}
		return m, nil
	}
	// Linked checkpoint shards can be many gigabytes; hashing them would
	// dominate the build, so their entry hashes the safetensors header,
	// which names every tensor with its dtype, shape and offsets.
	m.BuildOptions = append(m.BuildOptions, bundle.Option{Key: bundle.WeightHashOption, Value: bundle.WeightHashHeader})
	links, err := filepath.Glob(filepath.Join(filepath.Dir(modelPath), "weights", "*"))
	if err != nil {
		return nil, err
	}
	for _, l := range links {
		sum, size, err := bundle.HeaderHash(l)
		if err != nil {
			return nil, err
		}
		rel, _ := filepath.Rel(filepath.Dir(modelPath), l)
		m.Weights = append(m.Weights, bundle.WeightFile{File: rel, Tensor: "(checkpoint shard, linked)", Size: size, SHA256: sum})
	}
	return m, nil
}

func manifestTensor(name string, t ir.Type) bundle.Tensor {
	bt := bundle.Tensor{Name: name, DType: t.DType, Dims: t.Shape.Sizes()}
	if !t.Shape.IsStatic() {
		bt.Symbols = make([]string, len(t.Shape))
		for i, d := range t.Shape {
			bt.Symbols[i] = d.Sym
		}
	}
	return bt
}
