// Package bundle reads and writes the manifest of an mmadac bundle folder.
//
// A bundle is what `mmadac build` writes: the graphs (ONNX, and OM files
// where ATC ran), the weight files and one manifest, manifest.mmdb, in
// FlatBuffers. The manifest records the model kind and its config, the
// special token ids, and each graph's inputs and outputs with dtypes and
// shapes or ATC gears. It also records the schedules that the build folded
// into the graphs, the build options, and the size and SHA-256 of every
// weight file, so that a reader can check the files before it runs them.
//
// # Schema
//
// bundle.fbs is the schema; the Go code in the fb subpackage is generated
// from it by flatc 2.0.8 (bash internal/gen/bundle.sh) and matches the
// github.com/google/flatbuffers v2.0.8 runtime. This package converts
// between the generated object types and the plain Go types below, so that
// callers do not depend on the generated code.
package bundle

import (
	"errors"
	"fmt"
	"slices"
	"sort"

	flatbuffers "github.com/google/flatbuffers/go"

	"github.com/mmadac/mmadac/codegen/bundle/fb"
	"github.com/mmadac/mmadac/ir"
)

// ManifestFile is the name of the manifest inside a bundle folder.
const ManifestFile = "manifest.mmdb"

// FormatVersion is the manifest layout this package writes and reads.
// Readers reject other versions, so a change that old readers would
// misread must raise it.
const FormatVersion = 1

// fileIdentifier is the schema's file_identifier, stored at bytes 4..8.
const fileIdentifier = "MMDB"

// Manifest describes a bundle folder.
type Manifest struct {
	// Kind is the model family, e.g. "mmada".
	Kind string
	// Config is the checkpoint's config.json, verbatim.
	Config []byte
	// Checkpoint is the absolute path of the checkpoint folder.
	Checkpoint string
	// Target is the compilation target, "onnx" or "ascend".
	Target string
	// Created is the build time, RFC 3339 in UTC.
	Created string
	// SpecialTokens maps token names (mask, bos, eos, ...) to ids.
	SpecialTokens map[string]int64
	Graphs        []Graph
	Schedules     []Schedule
	// BuildOptions are the build settings in the order they were recorded.
	BuildOptions []Option
	Weights      []WeightFile
}

// Graph is one compiled graph of a bundle.
type Graph struct {
	Name string
	// ONNXFile and OMFile are relative to the bundle folder; OMFile is empty
	// when ATC did not run.
	ONNXFile string
	OMFile   string
	// SoC is the --soc_version the OM was built for (or would be).
	SoC     string
	Inputs  []Tensor
	Outputs []Tensor
	// Gears are the ATC --dynamic_dims gears: each gives a value for every
	// -1 in Inputs, in input order and then dimension order. Empty for a
	// graph compiled for static shapes.
	Gears [][]int64
}

// Tensor is a graph input or output.
type Tensor struct {
	Name  string
	DType ir.DType
	// Dims holds the size per dimension, or -1 for a dimension that is
	// symbolic or set by a gear.
	Dims []int64
	// Symbols names each dimension that is symbolic in the graph ("seq"),
	// with "" for a fixed size. It is empty or as long as Dims.
	Symbols []string
}

// Schedule is a named array the build folded into the graphs.
type Schedule struct {
	Name   string
	Ints   []int64
	Floats []float64
}

// Option is one build setting.
type Option struct {
	Key, Value string
}

// WeightFile is one weight file of the bundle.
type WeightFile struct {
	// File is the path relative to the bundle folder.
	File string
	// Tensor is the graph parameter the file stores.
	Tensor string
	DType  ir.DType
	Shape  []int64
	// Size is the file size in bytes.
	Size int64
	// SHA256 is the hash of the file contents, lowercase hex.
	SHA256 string
}

// Option returns the value of a build option and whether it is set.
func (m *Manifest) Option(key string) (string, bool) {
	for _, o := range m.BuildOptions {
		if o.Key == key {
			return o.Value, true
		}
	}
	return "", false
}

// Graph returns the graph with the given name, or nil.
func (m *Manifest) Graph(name string) *Graph {
	for i := range m.Graphs {
		if m.Graphs[i].Name == name {
			return &m.Graphs[i]
		}
	}
	return nil
}

// Validate checks what the encoder cannot: names are set and unique, dtypes
// are valid, symbol lists match their dims, gears have one value per -1
// input dimension, and weight entries have a file, a size and a hash.
func (m *Manifest) Validate() error {
	var errs []error
	fail := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if m.Kind == "" {
		fail("kind is empty")
	}
	graphs := map[string]bool{}
	for i, g := range m.Graphs {
		if g.Name == "" || graphs[g.Name] {
			fail("graph %d has an empty or repeated name %q", i, g.Name)
		}
		graphs[g.Name] = true
		if g.ONNXFile == "" && g.OMFile == "" {
			fail("graph %s names no ONNX or OM file", g.Name)
		}
		dynamic := 0
		for _, list := range [][]Tensor{g.Inputs, g.Outputs} {
			for _, t := range list {
				if err := t.validate(); err != nil {
					fail("graph %s: %v", g.Name, err)
				}
			}
		}
		for _, t := range g.Inputs {
			for _, d := range t.Dims {
				if d == -1 {
					dynamic++
				}
			}
		}
		for j, gear := range g.Gears {
			if len(gear) != dynamic {
				fail("graph %s gear %d has %d values for %d dynamic input dimensions", g.Name, j, len(gear), dynamic)
			}
		}
	}
	files := map[string]bool{}
	for i, w := range m.Weights {
		switch {
		case w.File == "" || files[w.File]:
			fail("weight %d has an empty or repeated file %q", i, w.File)
		case w.Size < 0:
			fail("weight file %s has negative size %d", w.File, w.Size)
		case len(w.SHA256) != 64:
			fail("weight file %s has hash %q; want 64 hex digits of SHA-256", w.File, w.SHA256)
		}
		files[w.File] = true
	}
	if len(errs) > 0 {
		return fmt.Errorf("invalid bundle manifest: %w", errors.Join(errs...))
	}
	return nil
}

func (t Tensor) validate() error {
	if t.Name == "" {
		return errors.New("a tensor has no name")
	}
	if t.DType == ir.InvalidDType || t.DType > ir.Bool {
		return fmt.Errorf("tensor %s has invalid dtype %v", t.Name, t.DType)
	}
	if len(t.Symbols) != 0 && len(t.Symbols) != len(t.Dims) {
		return fmt.Errorf("tensor %s has %d symbols for %d dimensions", t.Name, len(t.Symbols), len(t.Dims))
	}
	for i, d := range t.Dims {
		if d < -1 {
			return fmt.Errorf("tensor %s dimension %d is %d; use a size or -1", t.Name, i, d)
		}
	}
	return nil
}

// Encode validates m and returns its FlatBuffers encoding.
func Encode(m *Manifest) ([]byte, error) {
	if err := m.Validate(); err != nil {
		return nil, err
	}
	obj := &fb.ManifestT{
		FormatVersion: FormatVersion,
		Kind:          m.Kind,
		ConfigJson:    string(m.Config),
		Checkpoint:    m.Checkpoint,
		Target:        m.Target,
		Created:       m.Created,
	}
	names := make([]string, 0, len(m.SpecialTokens))
	for name := range m.SpecialTokens {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		obj.SpecialTokens = append(obj.SpecialTokens, &fb.TokenIdT{Name: name, Id: m.SpecialTokens[name]})
	}
	for _, g := range m.Graphs {
		gt := &fb.GraphT{Name: g.Name, OnnxFile: g.ONNXFile, OmFile: g.OMFile, SocVersion: g.SoC,
			Inputs: packTensors(g.Inputs), Outputs: packTensors(g.Outputs)}
		for _, gear := range g.Gears {
			gt.Gears = append(gt.Gears, &fb.GearT{Dims: slices.Clone(gear)})
		}
		obj.Graphs = append(obj.Graphs, gt)
	}
	for _, s := range m.Schedules {
		obj.Schedules = append(obj.Schedules, &fb.ScheduleT{Name: s.Name, Ints: slices.Clone(s.Ints), Floats: slices.Clone(s.Floats)})
	}
	for _, o := range m.BuildOptions {
		obj.BuildOptions = append(obj.BuildOptions, &fb.BuildOptionT{Key: o.Key, Value: o.Value})
	}
	for _, w := range m.Weights {
		obj.Weights = append(obj.Weights, &fb.WeightFileT{File: w.File, Tensor: w.Tensor, Dtype: fb.DType(w.DType),
			Shape: slices.Clone(w.Shape), Size: w.Size, Sha256: w.SHA256})
	}

	b := flatbuffers.NewBuilder(4096)
	b.FinishWithFileIdentifier(obj.Pack(b), []byte(fileIdentifier))
	return b.FinishedBytes(), nil
}

func packTensors(ts []Tensor) []*fb.TensorT {
	out := make([]*fb.TensorT, len(ts))
	for i, t := range ts {
		out[i] = &fb.TensorT{Name: t.Name, Dtype: fb.DType(t.DType), Dims: slices.Clone(t.Dims), Symbols: slices.Clone(t.Symbols)}
	}
	return out
}

// Decode parses a manifest. It rejects data without the MMDB identifier, a
// format version other than FormatVersion, and data whose offsets point
// outside the buffer (the generated accessors panic on those, and Decode
// turns the panic into an error).
func Decode(data []byte) (m *Manifest, err error) {
	if len(data) < 8 || string(data[4:8]) != fileIdentifier {
		return nil, fmt.Errorf("not an mmadac bundle manifest: the file identifier at bytes 4-8 is not %q", fileIdentifier)
	}
	defer func() {
		if r := recover(); r != nil {
			m, err = nil, fmt.Errorf("bundle manifest is corrupt (%v); rebuild the bundle with mmadac build", r)
		}
	}()
	root := fb.GetRootAsManifest(data, 0)
	if v := root.FormatVersion(); v != FormatVersion {
		return nil, fmt.Errorf("bundle manifest has format version %d; this mmadac reads version %d, so rebuild the bundle", v, FormatVersion)
	}

	obj := root.UnPack()
	m = &Manifest{
		Kind:       obj.Kind,
		Config:     []byte(obj.ConfigJson),
		Checkpoint: obj.Checkpoint,
		Target:     obj.Target,
		Created:    obj.Created,
	}
	if len(obj.SpecialTokens) > 0 {
		m.SpecialTokens = map[string]int64{}
	}
	for _, t := range obj.SpecialTokens {
		m.SpecialTokens[t.Name] = t.Id
	}

	for _, g := range obj.Graphs {
		mg := Graph{Name: g.Name, ONNXFile: g.OnnxFile, OMFile: g.OmFile, SoC: g.SocVersion,
			Inputs: unpackTensors(g.Inputs), Outputs: unpackTensors(g.Outputs)}
		for _, gear := range g.Gears {
			mg.Gears = append(mg.Gears, gear.Dims)
		}
		m.Graphs = append(m.Graphs, mg)
	}
	for _, s := range obj.Schedules {
		m.Schedules = append(m.Schedules, Schedule{Name: s.Name, Ints: orNil(s.Ints), Floats: orNil(s.Floats)})
	}
	for _, o := range obj.BuildOptions {
		m.BuildOptions = append(m.BuildOptions, Option{Key: o.Key, Value: o.Value})
	}
	for _, w := range obj.Weights {
		m.Weights = append(m.Weights, WeightFile{File: w.File, Tensor: w.Tensor, DType: ir.DType(w.Dtype),
			Shape: orNil(w.Shape), Size: w.Size, SHA256: w.Sha256})
	}
	if err := m.Validate(); err != nil {
		return nil, err
	}
	return m, nil
}

func unpackTensors(ts []*fb.TensorT) []Tensor {
	out := make([]Tensor, len(ts))
	for i, t := range ts {
		out[i] = Tensor{Name: t.Name, DType: ir.DType(t.Dtype), Dims: orNil(t.Dims), Symbols: orNil(t.Symbols)}
	}
	return out
}

// orNil maps an empty decoded vector to nil, so that a decoded manifest
// compares equal to the one that was encoded.
func orNil[T any](s []T) []T {
	if len(s) == 0 {
		return nil
	}
	return s
}
