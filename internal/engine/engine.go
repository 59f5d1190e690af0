// Package engine wires the pieces together for the commands: it opens a
// checkpoint, builds the graphs, opens a backend session and hands the
// samplers a step function.
package engine

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"github.com/mmadac/mmadac/codegen/bundle"
	"github.com/mmadac/mmadac/frontend"
	"github.com/mmadac/mmadac/ir"
	"github.com/mmadac/mmadac/models/mmada"
	"github.com/mmadac/mmadac/passes"
	"github.com/mmadac/mmadac/runtime/sampler"
)

// Session is what every backend offers: run a graph on named tensors.
type Session interface {
	Run(inputs map[string]*ir.Tensor) (map[string]*ir.Tensor, error)
	Close() error
}

// Backend names.
const (
	BackendAuto   = "auto"
	BackendInterp = "interp"
	BackendORT    = "ort"
)

// TextModel is a loaded MMaDA transformer ready to run.
type TextModel struct {
	Config  *frontend.LLaDAConfig
	Graph   *ir.Graph
	Backend string
	ckpt    weightStore
	// session runs the full-logits graph. openMain opens it on the first
	// Forward, because a run with the folded head never needs it and each
	// ONNX Runtime session holds its own copy of the weights.
	mainMu   sync.Mutex
	session  Session
	openMain func() (Session, error)
	// passOpts are the pipeline settings the variants are built with.
	passOpts PassOptions
	// noHead turns off the folded sampling head (full logits per step).
	noHead bool
	heads  headVariants
	// Schedules are the per-step tables of the bundle the model was
	// loaded from (nil for a checkpoint folder).
	Schedules []bundle.Schedule
	// scheduleT2ITemperature is the initial temperature the bundle's t2i
	// temperatures were folded for.
	scheduleT2ITemperature float64
}

// OpenCheckpointModel reads config.json and the safetensors of a checkpoint
// folder and builds the transformer graph with the default pass pipeline,
// without reading weight data.
func OpenCheckpointModel(dir string) (*frontend.LLaDAConfig, *frontend.Checkpoint, *ir.Graph, error) {
	return OpenCheckpointModelWith(dir, PassOptions{})
}

// OpenCheckpointModelWith is OpenCheckpointModel with pass-manager options
// (PassOptions{None: true} gives the unoptimised graph).
func OpenCheckpointModelWith(dir string, po PassOptions) (*frontend.LLaDAConfig, *frontend.Checkpoint, *ir.Graph, error) {
	st, err := os.Stat(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil, nil, fmt.Errorf("model %s does not exist; pass a checkpoint folder (config.json and safetensors) or a bundle written by mmadac build", dir)
	}
	if err != nil {
		return nil, nil, nil, fmt.Errorf("model %s: %w", dir, err)
	}
	if bundle.IsBundle(dir) {
		return nil, nil, nil, fmt.Errorf("%s is a bundle, and this command reads a checkpoint folder; pass the checkpoint the bundle was built from (mmadac inspect %s shows its path), or run the bundle itself with mmadac run or mmadac serve", dir, dir)
	}
	if _, err := os.Stat(filepath.Join(dir, "transformer.onnx")); err == nil {
		return nil, nil, nil, fmt.Errorf("%s has a transformer.onnx but no %s, so it is an incomplete bundle; build it again with mmadac build", dir, bundle.ManifestFile)
	}
	if !st.IsDir() {
		return nil, nil, nil, fmt.Errorf("model %s is not a folder; pass a checkpoint folder with config.json and safetensors", dir)
	}
	return openModel(dir, po)
}

// openModel builds the transformer graph from the config.json and the
// safetensors (or their index) of the checkpoint folder dir.
func openModel(dir string, po PassOptions) (*frontend.LLaDAConfig, *frontend.Checkpoint, *ir.Graph, error) {
	if err := notMAGVIT(dir); err != nil {
		return nil, nil, nil, err
	}
	cfg, err := frontend.LoadLLaDAConfig(filepath.Join(dir, "config.json"))
	if err != nil {
		return nil, nil, nil, fmt.Errorf("model %s: %w", dir, err)
	}
	ck, err := frontend.OpenCheckpoint(dir)
	if err != nil {
		return nil, nil, nil, err
	}
	g, err := buildTransformer(cfg, ck, po)
	if err != nil {
		ck.Close()
		return nil, nil, nil, err
	}
	return cfg, ck, g, nil
}

// buildTransformer builds the transformer graph over ws and runs the pass
// pipeline on it.
func buildTransformer(cfg *frontend.LLaDAConfig, ws mmada.WeightStore, po PassOptions) (*ir.Graph, error) {
	g, err := mmada.Build(cfg, ws, mmada.Options{})
	if err != nil {
		return nil, err
	}
	if _, err := optimize(g, cfg, po); err != nil {
		return nil, err
	}
	return g, nil
}

// LoadTextModel opens a checkpoint and a backend session for it.
func LoadTextModel(dir, backend string) (*TextModel, error) {
	return LoadTextModelWith(dir, backend, PassOptions{})
}

// LoadTextModelWith is LoadTextModel with pass-manager options.
func LoadTextModelWith(dir, backend string, po PassOptions) (*TextModel, error) {
	cfg, ck, g, err := OpenCheckpointModelWith(dir, po)
	if err != nil {
		return nil, err
	}
	return newTextModel(cfg, ck, g, backend, po)
}

// newTextModel picks the backend for g. The sessions open on first use.
func newTextModel(cfg *frontend.LLaDAConfig, ck weightStore, g *ir.Graph, backend string, po PassOptions) (*TextModel, error) {
	name, err := chooseBackend(g, backend, ck.Dir())
	if err != nil {
		ck.Close()
		return nil, err
	}
	m := &TextModel{Config: cfg, Graph: g, Backend: name, ckpt: ck, passOpts: po}
	m.openMain = func() (Session, error) { return m.open(g) }
	return m, nil
}

// Weights returns the tensors the model's graphs are built over: its
// checkpoint's, or its bundle's own.
func (m *TextModel) Weights() mmada.WeightStore { return m.ckpt }

// mainSession returns the full-logits session, opening it on first use.
func (m *TextModel) mainSession() (Session, error) {
	m.mainMu.Lock()
	defer m.mainMu.Unlock()
	if m.session != nil {
		return m.session, nil
	}
	s, err := m.openMain()
	if err != nil {
		return nil, err
	}
	m.session = s
	return s, nil
}

// open opens a graph of the model (the transformer, a head variant, the
// block-cache graph) on the model's backend. On ONNX Runtime the graph
// reads its weights in place from the checkpoint's or the bundle's files.
func (m *TextModel) open(g *ir.Graph) (Session, error) {
	if m.Backend == BackendORT {
		return openORTAt(g, m.ckpt.Dir())
	}
	s, _, err := OpenSession(g, m.Backend)
	return s, err
}

// Forward runs the transformer on ids and mask, i64 [batch, seq].
func (m *TextModel) Forward(ids, mask *ir.Tensor) (*ir.Tensor, error) {
	if err := m.checkIDs(ids); err != nil {
		return nil, err
	}
	s, err := m.mainSession()
	if err != nil {
		return nil, err
	}
	out, err := s.Run(map[string]*ir.Tensor{mmada.InputIDs: ids, mmada.AttentionMask: mask})
	if err != nil {
		return nil, err
	}
	m.heads.outBytes = int64(out[mmada.Logits].Len() * 4)
	return out[mmada.Logits], nil
}

func (m *TextModel) checkIDs(ids *ir.Tensor) error {
	if limit := m.MaxSequenceLength(); limit > 0 && ids.Shape[1] > limit {
		return fmt.Errorf("sequence of %d tokens (prompt plus gen_length) is longer than the %d positions the RoPE tables cover; shorten it, or build with --passes none", ids.Shape[1], limit)
	}
	vocab := int64(m.Config.Vocab())
	for _, id := range ids.I64() {
		if id < 0 || id >= vocab {
			return fmt.Errorf("token id %d is outside the vocabulary [0, %d)", id, vocab)
		}
	}
	return nil
}

// SetHeadFolding turns the folded sampling head on or off.
func (m *TextModel) SetHeadFolding(on bool) { m.noHead = !on }

// Head returns the model as a sampler.Head when head folding is on, else
// nil (the sampler then reads full logits through Forward).
func (m *TextModel) Head() sampler.Head {
	if !m.HeadFolding() {
		return nil
	}
	return m
}

// Close releases the sessions and the checkpoint mapping.
func (m *TextModel) Close() error {
	var err error
	if m.session != nil {
		err = m.session.Close()
	}
	for _, s := range m.heads.sessions {
		if cerr := s.Close(); err == nil {
			err = cerr
		}
	}
	if cerr := m.ckpt.Close(); err == nil {
		err = cerr
	}
	return err
}

// Schedule returns the named schedule of the bundle the model came from,
// or nil.
func (m *TextModel) Schedule(name string) *bundle.Schedule {
	for i := range m.Schedules {
		if m.Schedules[i].Name == name {
			return &m.Schedules[i]
		}
	}
	return nil
}

// MaxSequenceLength returns the longest sequence the model's graphs accept:
// the folded RoPE tables cover max(max_sequence_length, 4096) positions;
// 0 means no limit (the unoptimised graph computes the tables).
func (m *TextModel) MaxSequenceLength() int64 {
	if m.passOpts.None {
		return 0
	}
	return max(int64(m.Config.MaxSequenceLength), passes.DefaultMaxSeqLen)
}

// notMAGVIT reports a MAGVIT-v2 checkpoint passed where the transformer is
// expected: its config.json has encoder and decoder sections and no d_model.
func notMAGVIT(dir string) error {
	data, err := os.ReadFile(filepath.Join(dir, "config.json"))
	if err != nil {
		return nil // LoadLLaDAConfig reports it
	}
	var probe map[string]json.RawMessage
	if json.Unmarshal(data, &probe) != nil {
		return nil
	}
	_, enc := probe["encoder"]
	_, dm := probe["d_model"]
	if enc && !dm {
		return fmt.Errorf("model %s is a MAGVIT-v2 image tokenizer, not a MMaDA/LLaDA transformer; pass it as --vq-model and the transformer checkpoint as --model", dir)
	}
	return nil
}
