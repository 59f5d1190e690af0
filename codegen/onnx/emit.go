// Package onnx emits IR graphs as ONNX models (opset 17): one node or a
// short sequence of standard nodes per IR op, weights inline or as
// external data linked in place inside the checkpoint's safetensors files.
package onnx

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"

	"google.golang.org/protobuf/proto"

	"github.com/mmadac/mmadac/codegen/onnx/onnxpb"
	"github.com/mmadac/mmadac/internal/atomicfile"
	"github.com/mmadac/mmadac/ir"
)

// Opset is the default ONNX operator set of emitted models.
const Opset = 17

// irVersion is the ONNX IR version matching opset 17.
const irVersion = 8

// WeightMode selects where parameter data goes.
type WeightMode string

const (
	// WeightsInline stores the data in the model file (models under 2 GB).
	WeightsInline WeightMode = "inline"
	// WeightsExternal links each parameter to its bytes inside the
	// checkpoint's safetensors files (location, offset, length), through
	// a symbolic link under the model folder, so nothing is copied.
	WeightsExternal WeightMode = "external"
)

// Options control emission.
type Options struct {
	Weights WeightMode
	// Dir is the folder the model file will be written to; external
	// locations are relative to it. Required for WeightsExternal.
	Dir string
	// Opset overrides the default operator set version.
	Opset int64
	// MicrosoftDomain allows com.microsoft operators (fused kernels of
	// ONNX Runtime).
	MicrosoftDomain bool
	// Refs lists, for WeightsReferenced, where each parameter's bytes
	// already are, relative to Dir.
	Refs map[string]onnxpb.ExternalRef
}

// emitter carries the state of one model emission.
type emitter struct {
	opts  Options
	g     *onnxpb.GraphProto
	names map[*ir.Value]string
	// merged names, for a [batch, heads, seq, dim] value, the ONNX value
	// holding it as [batch, seq, heads*dim], where one exists. The
	// attention lowering reads that instead of transposing back.
	merged map[*ir.Value]string
	next   int
	// links maps a checkpoint file to its link name under Dir/weights.
	links  map[string]string
	usesMS bool
}

// Emit converts a graph to an ONNX model.
func Emit(g *ir.Graph, opts Options) (*onnxpb.ModelProto, error) {
	if opts.Weights == "" {
		opts.Weights = WeightsInline
	}
	if opts.Opset == 0 {
		opts.Opset = Opset
	}
	if (opts.Weights == WeightsExternal || opts.Weights == WeightsReferenced) && opts.Dir == "" {
		return nil, fmt.Errorf("%s weights need the model folder", opts.Weights)
	}
	if err := ir.Verify(g); err != nil {
		return nil, err
	}
	e := &emitter{opts: opts, g: &onnxpb.GraphProto{Name: proto.String(g.Name)}, names: map[*ir.Value]string{}, links: map[string]string{}}
	for _, in := range g.Inputs {
		e.names[in] = in.Name
		e.g.Input = append(e.g.Input, valueInfo(in.Name, in.Type))
	}
	for _, p := range g.Params {
		if err := e.param(p); err != nil {
			return nil, err
		}
	}
	for _, c := range g.Consts {
		name := e.fresh("const")
		e.names[c] = name
		t, err := tensorProto(name, c.Const)
		if err != nil {
			return nil, err
		}
		e.g.Initializer = append(e.g.Initializer, t)
	}
	for _, n := range g.Nodes {
		if err := e.node(n); err != nil {
			return nil, fmt.Errorf("emitting %s: %w", n.Op, err)
		}
	}
	for _, o := range g.Outputs {
		src := e.names[o.Value]
		if src != o.Name {
			e.add("Identity", []string{src}, []string{o.Name}, nil)
		}
		e.g.Output = append(e.g.Output, valueInfo(o.Name, o.Value.Type))
	}
	params := map[string]bool{}
	for _, p := range g.Params {
		params[p.Name] = true
	}
	pruneDead(e.g, params)
	m := &onnxpb.ModelProto{
		IrVersion:       proto.Int64(irVersion),
		ProducerName:    proto.String("mmadac"),
		ProducerVersion: proto.String("0.1"),
		Graph:           e.g,
		OpsetImport:     []*onnxpb.OperatorSetIdProto{{Domain: proto.String(""), Version: proto.Int64(opts.Opset)}},
	}
	if e.usesMS {
		m.OpsetImport = append(m.OpsetImport, &onnxpb.OperatorSetIdProto{Domain: proto.String("com.microsoft"), Version: proto.Int64(1)})
	}
	keys := make([]string, 0, len(g.Meta))
	for k := range g.Meta {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		m.MetadataProps = append(m.MetadataProps, &onnxpb.StringStringEntryProto{Key: proto.String(k), Value: proto.String(g.Meta[k])})
	}
	return m, nil
}

// pruneDead removes the nodes no graph output depends on, and then the
// initializers nothing reads, except the weights named in keep. A lowering
// that reads a value in another form (the attention reading a rope's
// unsplit result) leaves the form it did not use dead, and ONNX Runtime
// would otherwise still run it.
func pruneDead(g *onnxpb.GraphProto, keep map[string]bool) {
	needed := map[string]bool{}
	for _, o := range g.Output {
		needed[o.GetName()] = true
	}
	live := make([]bool, len(g.Node))
	for i := len(g.Node) - 1; i >= 0; i-- {
		n := g.Node[i]
		for _, out := range n.Output {
			if needed[out] {
				live[i] = true
				break
			}
		}
		if live[i] {
			for _, in := range n.Input {
				needed[in] = true
			}
		}
	}
	nodes := g.Node[:0]
	for i, n := range g.Node {
		if live[i] {
			nodes = append(nodes, n)
		}
	}
	g.Node = nodes
	inits := g.Initializer[:0]
	for _, t := range g.Initializer {
		if needed[t.GetName()] || keep[t.GetName()] {
			inits = append(inits, t)
		}
	}
	g.Initializer = inits
}

// Write emits the graph and writes it to path (the folder is created),
// through a temporary file so that a failure leaves nothing behind.
func Write(g *ir.Graph, path string, opts Options) error {
	opts.Dir = filepath.Dir(path)
	if err := os.MkdirAll(opts.Dir, 0o755); err != nil {
		return err
	}
	m, err := Emit(g, opts)
	if err != nil {
		return err
	}
	data, err := proto.Marshal(m)
	if err != nil {
		return fmt.Errorf("encoding %s: %w", path, err)
	}
	if err := atomicfile.WriteBytes(path, data, 0o644); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}

// Marshal emits the graph with inline weights and returns the bytes.
func Marshal(g *ir.Graph) ([]byte, error) {
	return MarshalWith(g, Options{Weights: WeightsInline})
}

// MarshalWith emits the graph with the given options and returns the bytes.
func MarshalWith(g *ir.Graph, opts Options) ([]byte, error) {
	m, err := Emit(g, opts)
	if err != nil {
		return nil, err
	}
	return proto.Marshal(m)
}

func (e *emitter) fresh(prefix string) string {
	e.next++
	return fmt.Sprintf("%s_%d", prefix, e.next)
}

func (e *emitter) param(p *ir.Value) error {
	e.names[p] = p.Name
	t := &onnxpb.TensorProto{
		Name:     proto.String(p.Name),
		DataType: proto.Int32(int32(elemType(p.Type.DType))),
		Dims:     p.Type.Shape.Sizes(),
	}
	if p.Source == nil {
		return fmt.Errorf("parameter %s has no data", p.Name)
	}
	switch e.opts.Weights {
	case WeightsInline:
		raw, err := p.Source.Bytes()
		if err != nil {
			return fmt.Errorf("reading parameter %s: %w", p.Name, err)
		}
		t.RawData = raw
	case WeightsExternal:
		file, off, size := p.Source.Location()
		loc, err := e.link(file)
		if err != nil {
			return err
		}
		onnxpb.SetExternal(t, onnxpb.ExternalRef{Location: loc, Offset: off, Length: size})
	case WeightsPerTensor:
		perTensorRef(p, t)
	case WeightsReferenced:
		if err := e.referenced(p, t); err != nil {
			return err
		}
	default:
		return fmt.Errorf("unknown weight mode %q; use inline or external", e.opts.Weights)
	}
	e.g.Initializer = append(e.g.Initializer, t)
	return nil
}

// link makes file reachable from Dir as weights/<name> and returns that
// relative location. ONNX external data must resolve inside the model
// folder, and ONNX Runtime 1.30 rejects a symbolic link that leads outside
// it. So the checkpoint file is hard-linked, which copies nothing; across
// file systems it is copied.
func (e *emitter) link(file string) (string, error) {
	if loc, ok := e.links[file]; ok {
		return loc, nil
	}
	abs, err := filepath.Abs(file)
	if err != nil {
		return "", err
	}
	name := filepath.Base(abs)
	for _, used := range e.links {
		if used == "weights/"+name {
			name = fmt.Sprintf("%d-%s", len(e.links), name)
		}
	}
	loc := "weights/" + name
	dst := filepath.Join(e.opts.Dir, loc)
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return "", err
	}
	if sameFile(abs, dst) {
		e.links[file] = loc
		return loc, nil
	}
	os.Remove(dst)
	if err := os.Link(abs, dst); err != nil {
		slog.Warn("cannot hard-link weights, copying them", "file", abs, "error", err)
		if err := atomicfile.Copy(abs, dst, 0o644); err != nil {
			return "", fmt.Errorf("copying weights %s: %w", abs, err)
		}
	}
	e.links[file] = loc
	return loc, nil
}

func sameFile(a, b string) bool {
	sa, err := os.Stat(a)
	if err != nil {
		return false
	}
	sb, err := os.Stat(b)
	return err == nil && os.SameFile(sa, sb)
}

func elemType(dt ir.DType) onnxpb.TensorProto_DataType { return onnxpb.FromDType(dt) }

func tensorProto(name string, t *ir.Tensor) (*onnxpb.TensorProto, error) {
	if _, opaque := t.Data.(ir.OpaqueData); opaque {
		return nil, fmt.Errorf("constant %s has no values (read back from text)", name)
	}
	return &onnxpb.TensorProto{
		Name:     proto.String(name),
		DataType: proto.Int32(int32(elemType(t.DType))),
		Dims:     append([]int64{}, t.Shape...),
		RawData:  ir.TensorBytes(t),
	}, nil
}

func valueInfo(name string, t ir.Type) *onnxpb.ValueInfoProto {
	shape := &onnxpb.TensorShapeProto{}
	for _, d := range t.Shape {
		dim := &onnxpb.TensorShapeProto_Dimension{}
		if d.IsStatic() {
			dim.Value = &onnxpb.TensorShapeProto_Dimension_DimValue{DimValue: d.Size}
		} else {
			dim.Value = &onnxpb.TensorShapeProto_Dimension_DimParam{DimParam: d.Sym}
		}
		shape.Dim = append(shape.Dim, dim)
	}
	return &onnxpb.ValueInfoProto{
		Name: proto.String(name),
		Type: &onnxpb.TypeProto{Value: &onnxpb.TypeProto_TensorType{TensorType: &onnxpb.TypeProto_Tensor{
			ElemType: proto.Int32(int32(elemType(t.DType))),
			Shape:    shape,
		}}},
	}
}
