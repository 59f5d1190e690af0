package engine

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/mmadac/mmadac/codegen/bundle"
	"github.com/mmadac/mmadac/codegen/om"
	"github.com/mmadac/mmadac/frontend"
	"github.com/mmadac/mmadac/ir"
	"github.com/mmadac/mmadac/models/mmada"
	"github.com/mmadac/mmadac/runtime/acl"
	"github.com/mmadac/mmadac/runtime/ort"
)

// BackendACL runs a bundle's OM file on an Ascend NPU through AscendCL.
const BackendACL = "acl"

// gearSymbol is the symbolic dimension that ascend builds compile gears for.
const gearSymbol = "seq"

// LoadBundle opens a bundle with a FlatBuffers manifest (see codegen/bundle)
// for text generation. It checks the size and SHA-256 of every weight file
// first, then picks the backend that can run what the bundle holds:
//
//   - acl runs the OM file, when there is one and libascendcl.so loads (an
//     OM that the printed ATC command wrote after the build counts too);
//   - ort runs the ONNX file, when ONNX Runtime loads;
//   - interp rebuilds the same graph from the checkpoint the bundle was built
//     from, when that folder still exists.
//
// "auto" (or "") tries them in that order; a named backend is used or its
// error returned. The model runs with full logits per step: the bundle has
// no folded-head variants.
func LoadBundle(path, backend string) (*TextModel, error) {
	m, err := bundle.Read(path)
	if err != nil {
		return nil, err
	}
	if m.Kind != "mmada" {
		return nil, fmt.Errorf("bundle %s contains a %q model; text generation needs mmada", path, m.Kind)
	}
	gr := m.Graph("transformer")
	if gr == nil {
		return nil, fmt.Errorf("bundle %s has no transformer graph", path)
	}
	cfg, err := frontend.ParseLLaDAConfig(m.Config)
	if err != nil {
		return nil, fmt.Errorf("bundle %s: config: %w", path, err)
	}
	if err := bundle.VerifyWeights(path, m); err != nil {
		return nil, err
	}
	model := &TextModel{Config: cfg, passOpts: PassOptions{None: true}, ckpt: &frontend.Checkpoint{}}

	var tried []string
	try := func(name string, open func() (Session, error)) bool {
		if backend != BackendAuto && backend != "" && backend != name {
			return false
		}
		s, err := open()
		if err != nil {
			tried = append(tried, fmt.Sprintf("%s: %v", name, err))
			return false
		}
		model.session, model.Backend = s, name
		return true
	}
	switch backend {
	case BackendAuto, "", BackendACL, BackendORT, BackendInterp:
	default:
		return nil, fmt.Errorf("unknown backend %q; use auto, acl, ort or interp", backend)
	}
	if try(BackendACL, func() (Session, error) { return openBundleACL(path, gr) }) ||
		try(BackendORT, func() (Session, error) { return openBundleORT(path, gr) }) ||
		try(BackendInterp, func() (Session, error) { return openBundleInterp(m, cfg, model) }) {
		slog.Info("bundle loaded", "bundle", path, "backend", model.Backend, "target", m.Target)
		return model, nil
	}
	return nil, fmt.Errorf("no backend can run bundle %s:\n  %s", path, strings.Join(tried, "\n  "))
}

// openBundleACL opens the OM file on device 0 behind a session that pads
// the sequence to a compiled length.
func openBundleACL(dir string, gr *bundle.Graph) (Session, error) {
	omFile := gr.OMFile
	if omFile == "" {
		// A build without ATC removes any earlier OM and prints the ATC
		// command; an OM at the name that command writes comes from it.
		omFile = gr.Name + ".om"
		if _, err := os.Stat(filepath.Join(dir, omFile)); err != nil {
			return nil, fmt.Errorf("the bundle has no OM file: ATC did not run at build time and %s does not exist; run the ATC command that mmadac build printed", omFile)
		}
		slog.Info("using an OM file written after the build by the printed ATC command", "om", omFile)
	}
	path, err := bundle.LocalPath(dir, omFile)
	if err != nil {
		return nil, err
	}
	if _, err := om.Inspect(path); err != nil {
		return nil, err
	}
	lib, err := acl.Load("")
	if err != nil {
		return nil, err
	}
	s, err := lib.Open(path, 0)
	if err != nil {
		return nil, err
	}
	lengths, err := compiledLengths(gr)
	if err != nil {
		s.Close()
		return nil, err
	}
	return newPadSession(s, gr, lengths), nil
}

// openBundleORT opens the ONNX file; its batch and sequence dimensions are
// symbolic, so it takes any length.
func openBundleORT(dir string, gr *bundle.Graph) (Session, error) {
	if gr.ONNXFile == "" {
		return nil, errors.New("the bundle has no ONNX file")
	}
	path, err := bundle.LocalPath(dir, gr.ONNXFile)
	if err != nil {
		return nil, err
	}
	if err := ort.Init(); err != nil {
		return nil, err
	}
	ins, outs := names(gr.Inputs), names(gr.Outputs)
	return ort.NewSession(path, ins, outs, ort.DefaultOptions())
}

// openBundleInterp rebuilds the bundle's graph from its checkpoint with the
// recorded build options and runs it on the interpreter.
func openBundleInterp(m *bundle.Manifest, cfg *frontend.LLaDAConfig, model *TextModel) (Session, error) {
	if st, err := os.Stat(m.Checkpoint); err != nil || !st.IsDir() {
		return nil, fmt.Errorf("the checkpoint %s the bundle was built from is not available", m.Checkpoint)
	}
	ck, err := frontend.OpenCheckpoint(m.Checkpoint)
	if err != nil {
		return nil, err
	}
	var g *ir.Graph
	if m.Target == "ascend" {
		a := AscendOptions{}
		a.Precision, _ = m.Option("precision")
		if seq, ok := m.Option("seq_len"); ok {
			for _, s := range strings.Split(seq, ",") {
				n, err := strconv.ParseInt(s, 10, 64)
				if err != nil {
					ck.Close()
					return nil, fmt.Errorf("bundle build option seq_len %q is not a list of integers", seq)
				}
				a.SeqLens = append(a.SeqLens, n)
			}
		}
		g, err = ascendGraph(cfg, ck, PassOptions{}, a)
	} else {
		g, err = mmada.Build(cfg, ck, mmada.Options{})
		if err == nil {
			_, err = optimize(g, cfg, PassOptions{})
		}
	}
	if err != nil {
		ck.Close()
		return nil, err
	}
	s, _, err := OpenSession(g, BackendInterp)
	if err != nil {
		ck.Close()
		return nil, err
	}
	model.Graph, model.ckpt = g, ck
	return s, nil
}

func names(ts []bundle.Tensor) []string {
	out := make([]string, len(ts))
	for i, t := range ts {
		out[i] = t.Name
	}
	return out
}

// compiledLengths returns the sequence lengths an OM accepts: the gears'
// values, or the one static length of the inputs' seq dimension.
func compiledLengths(gr *bundle.Graph) ([]int64, error) {
	var lengths []int64
	for _, gear := range gr.Gears {
		if len(gear) == 0 {
			return nil, errors.New("the bundle lists an empty gear")
		}
		lengths = append(lengths, gear[0])
	}
	if len(lengths) == 0 {
		for _, t := range gr.Inputs {
			for k, sym := range t.Symbols {
				if sym == gearSymbol && t.Dims[k] > 0 {
					lengths = append(lengths, t.Dims[k])
				}
			}
		}
	}
	if len(lengths) == 0 {
		return nil, fmt.Errorf("the bundle records no %s length for graph %s", gearSymbol, gr.Name)
	}
	slices.Sort(lengths)
	return slices.Compact(lengths), nil
}

// padSession runs a model compiled for fixed sequence lengths on any
// shorter sequence: it pads every input along its seq dimension with zeros
// up to the smallest compiled length that fits, and cuts the outputs back.
// The zeros are masked tokens (attention mask 0), which the model's
// attention bias excludes, so the real positions' results do not change:
// RoPE positions stay those of an unpadded run because the padding goes
// after the last token.
type padSession struct {
	s       Session
	lengths []int64
	// inAxis and outAxis give the seq axis of each input and output by name.
	inAxis, outAxis map[string]int
}

func newPadSession(s Session, gr *bundle.Graph, lengths []int64) *padSession {
	p := &padSession{s: s, lengths: lengths, inAxis: map[string]int{}, outAxis: map[string]int{}}
	for _, t := range gr.Inputs {
		if k := slices.Index(t.Symbols, gearSymbol); k >= 0 {
			p.inAxis[t.Name] = k
		}
	}
	for _, t := range gr.Outputs {
		if k := slices.Index(t.Symbols, gearSymbol); k >= 0 {
			p.outAxis[t.Name] = k
		}
	}
	return p
}

// Run pads, runs and cuts back.
func (p *padSession) Run(inputs map[string]*ir.Tensor) (map[string]*ir.Tensor, error) {
	seq := int64(-1)
	for name, axis := range p.inAxis {
		t, ok := inputs[name]
		if !ok || axis >= len(t.Shape) {
			continue
		}
		if seq >= 0 && t.Shape[axis] != seq {
			return nil, fmt.Errorf("inputs disagree on the sequence length: %s has %d, another input %d", name, t.Shape[axis], seq)
		}
		seq = t.Shape[axis]
	}
	if seq < 0 {
		return p.s.Run(inputs)
	}
	i, _ := slices.BinarySearch(p.lengths, seq)
	if i == len(p.lengths) {
		return nil, fmt.Errorf("a sequence of %d tokens is longer than the longest compiled length %d; rebuild the bundle with a longer --seq-len", seq, p.lengths[len(p.lengths)-1])
	}
	target := p.lengths[i]
	if target == seq {
		return p.s.Run(inputs)
	}
	padded := make(map[string]*ir.Tensor, len(inputs))
	for name, t := range inputs {
		if axis, ok := p.inAxis[name]; ok {
			padded[name] = resizeAxis(t, axis, target)
		} else {
			padded[name] = t
		}
	}
	out, err := p.s.Run(padded)
	if err != nil {
		return nil, err
	}
	for name, t := range out {
		if axis, ok := p.outAxis[name]; ok && axis < len(t.Shape) && t.Shape[axis] == target {
			out[name] = resizeAxis(t, axis, seq)
		}
	}
	return out, nil
}

// Close closes the wrapped session.
func (p *padSession) Close() error { return p.s.Close() }

// resizeAxis returns t with dimension axis cut or zero-padded at the end to
// n entries.
func resizeAxis(t *ir.Tensor, axis int, n int64) *ir.Tensor {
	shape := slices.Clone(t.Shape)
	old := shape[axis]
	shape[axis] = n
	out := ir.NewTensor(t.DType, shape...)
	outer := ir.NumElements(t.Shape[:axis])
	inner := ir.NumElements(t.Shape[axis+1:])
	keep := min(old, n) * inner
	for o := int64(0); o < outer; o++ {
		copyRange(out.Data, t.Data, o*n*inner, o*old*inner, keep)
	}
	return out
}

// copyRange copies count elements of src from offset so into dst at do.
func copyRange(dst, src any, do, so, count int64) {
	switch d := dst.(type) {
	case []float32:
		copy(d[do:do+count], src.([]float32)[so:so+count])
	case []float64:
		copy(d[do:do+count], src.([]float64)[so:so+count])
	case []int64:
		copy(d[do:do+count], src.([]int64)[so:so+count])
	case []int32:
		copy(d[do:do+count], src.([]int32)[so:so+count])
	case []bool:
		copy(d[do:do+count], src.([]bool)[so:so+count])
	case []uint16:
		copy(d[do:do+count], src.([]uint16)[so:so+count])
	default:
		panic(fmt.Sprintf("engine: no copy for %T", dst))
	}
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
