package sampler

import (
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"

	"github.com/mmadac/mmadac/frontend"
	"github.com/mmadac/mmadac/ir"
)

// Kinds of random draws, named as the recorded noise files name them.
const (
	// GumbelUniform: text, f64 [batch, seq, vocab], one per step when the
	// temperature is positive; t2i, f32 [batch, image tokens], the noise
	// of the re-masking step.
	GumbelUniform = "gumbel_uniform"
	// RemaskUniform: text, f32 [batch, seq], the confidences of random
	// re-masking.
	RemaskUniform = "remask_uniform"
	// CategoricalUniform: t2i, f64 [batch*image tokens], one draw per
	// image position for the categorical sample.
	CategoricalUniform = "categorical_uniform"
)

// Draw is one tensor of uniforms in [0, 1), read row by row: a row is the
// last dimension. Samplers read only the rows they need, so a seeded
// source never generates the uniforms of rows nobody looks at.
type Draw interface {
	Row64(row int) []float64
	Row32(row int) []float32
}

// NoiseSource hands out the uniforms a sampler consumes, in order.
type NoiseSource interface {
	// Next returns the next draw; kind and shape are what the sampler
	// expects, so a replayed recording that does not match fails.
	Next(kind string, shape []int64) (Draw, error)
}

// Seeded generates uniforms from a seed. Every row of every draw has its
// own stream derived from (seed, draw number, row), so results do not
// depend on which rows a sampler reads.
type Seeded struct {
	seed  uint64
	count uint64
}

// NewSeeded returns a seeded noise source.
func NewSeeded(seed uint64) *Seeded { return &Seeded{seed: seed} }

// Next implements NoiseSource.
func (s *Seeded) Next(kind string, shape []int64) (Draw, error) {
	s.count++
	width := 1
	if len(shape) > 0 {
		width = int(shape[len(shape)-1])
	}
	return seededDraw{seed: s.seed, draw: s.count, width: width}, nil
}

type seededDraw struct {
	seed, draw uint64
	width      int
}

func (d seededDraw) rng(row int) *rand.Rand {
	return rand.New(rand.NewPCG(d.seed^0x9e3779b97f4a7c15, d.draw<<32^uint64(row)))
}

func (d seededDraw) Row64(row int) []float64 {
	r := d.rng(row)
	out := make([]float64, d.width)
	for i := range out {
		out[i] = r.Float64()
	}
	return out
}

func (d seededDraw) Row32(row int) []float32 {
	r := d.rng(row)
	out := make([]float32, d.width)
	for i := range out {
		out[i] = r.Float32()
	}
	return out
}

// Replay returns recorded uniforms: the tensors noise.0000, noise.0001, ...
// of a safetensors file, in order, each checked against the kind and
// element count the sampler asks for.
type Replay struct {
	tensors map[string]*ir.Tensor
	order   []string
	next    int
	path    string
}

// NewReplay reads a recording. order lists the kind of each draw, as the
// golden cases' noise_order does; it may be nil to skip the kind check.
func NewReplay(path string, order []string) (*Replay, error) {
	ts, err := frontend.ReadSafetensors(path)
	if err != nil {
		return nil, fmt.Errorf("reading noise recording: %w", err)
	}
	names := make([]string, 0, len(ts))
	for n := range ts {
		if strings.HasPrefix(n, "noise.") {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	if order != nil && len(order) != len(names) {
		return nil, fmt.Errorf("noise recording %s holds %d draws, the case lists %d", path, len(names), len(order))
	}
	return &Replay{tensors: ts, order: order, path: path}, nil
}

// Remaining returns how many draws have not been consumed.
func (r *Replay) Remaining() int {
	n := 0
	for name := range r.tensors {
		if strings.HasPrefix(name, "noise.") {
			n++
		}
	}
	return n - r.next
}

// Next implements NoiseSource.
func (r *Replay) Next(kind string, shape []int64) (Draw, error) {
	name := fmt.Sprintf("noise.%04d", r.next)
	t, ok := r.tensors[name]
	if !ok {
		return nil, fmt.Errorf("noise recording %s has no draw %s (the sampler wants a %s draw of shape %v)", r.path, name, kind, shape)
	}
	if r.order != nil && r.order[r.next] != kind {
		return nil, fmt.Errorf("noise recording %s: draw %d is %s, the sampler wants %s", r.path, r.next, r.order[r.next], kind)
	}
	if int64(t.Len()) != ir.NumElements(shape) {
		return nil, fmt.Errorf("noise recording %s: draw %d has shape %v, the sampler wants %v", r.path, r.next, t.Shape, shape)
	}
	r.next++
	width := 1
	if len(shape) > 0 {
		width = int(shape[len(shape)-1])
	}
	return tensorDraw{t: t, width: width}, nil
}

type tensorDraw struct {
	t     *ir.Tensor
	width int
}

func (d tensorDraw) Row64(row int) []float64 {
	lo, hi := row*d.width, (row+1)*d.width
	switch x := d.t.Data.(type) {
	case []float64:
		return x[lo:hi]
	case []float32:
		out := make([]float64, d.width)
		for i, v := range x[lo:hi] {
			out[i] = float64(v)
		}
		return out
	}
	panic(fmt.Sprintf("noise draw of dtype %v", d.t.DType))
}

func (d tensorDraw) Row32(row int) []float32 {
	lo, hi := row*d.width, (row+1)*d.width
	switch x := d.t.Data.(type) {
	case []float32:
		return x[lo:hi]
	case []float64:
		out := make([]float32, d.width)
		for i, v := range x[lo:hi] {
			out[i] = float32(v)
		}
		return out
	}
	panic(fmt.Sprintf("noise draw of dtype %v", d.t.DType))
}
