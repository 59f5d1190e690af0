// Package interp executes IR graphs directly in Go. It is the reference
// backend: float32 arithmetic (float64 where a graph uses it), no
// native library, every other backend is checked against it.
package interp

import (
	"fmt"
	"log/slog"

	"github.com/mmadac/mmadac/ir"
)

// Session runs one graph repeatedly. Parameters, constants and everything
// computed only from them (casts and transposes of weights, fixed tables)
// are evaluated once, when the session is created, so a sampling loop pays
// for them once.
type Session struct {
	g *ir.Graph
	// static holds the tensors of values that do not depend on inputs.
	static map[*ir.Value]*ir.Tensor
	// plan lists the nodes that depend on inputs, in graph order.
	plan []*ir.Node
	// lastUse maps a value to the index in plan of its final reader, so
	// that intermediate tensors are released as early as possible.
	lastUse map[*ir.Value]int
}

// New prepares a session. It reads every parameter's bytes through its
// WeightSource, so the weights must be at hand.
func New(g *ir.Graph) (*Session, error) {
	s := &Session{g: g, static: map[*ir.Value]*ir.Tensor{}, lastUse: map[*ir.Value]int{}}
	for _, p := range g.Params {
		if p.Source == nil {
			return nil, fmt.Errorf("parameter %s has no data (was the graph read back from text?)", p.Name)
		}
		raw, err := p.Source.Bytes()
		if err != nil {
			return nil, fmt.Errorf("reading parameter %s: %w", p.Name, err)
		}
		sizes := p.Type.Shape.Sizes()
		t, err := ir.TensorFromBytes(p.Type.DType, sizes, raw)
		if err != nil {
			return nil, fmt.Errorf("parameter %s: %w", p.Name, err)
		}
		s.static[p] = t
	}
	for _, c := range g.Consts {
		if _, opaque := c.Const.Data.(ir.OpaqueData); opaque {
			return nil, fmt.Errorf("constant %s has no values (was the graph read back from text?)", c.Ref())
		}
		s.static[c] = c.Const
	}
	folded := 0
	for _, n := range g.Nodes {
		isStatic := true
		for _, in := range n.Inputs {
			if _, ok := s.static[in]; !ok {
				isStatic = false
				break
			}
		}
		if !isStatic {
			s.plan = append(s.plan, n)
			continue
		}
		args := make([]*ir.Tensor, len(n.Inputs))
		for i, in := range n.Inputs {
			args[i] = s.static[in]
		}
		outs, err := execNode(n, args)
		if err != nil {
			return nil, err
		}
		for i, o := range n.Outputs {
			s.static[o] = outs[i]
		}
		folded++
	}
	// Static values read only by other static nodes are no longer needed.
	needed := map[*ir.Value]bool{}
	for _, n := range s.plan {
		for _, in := range n.Inputs {
			needed[in] = true
		}
	}
	for _, o := range g.Outputs {
		needed[o.Value] = true
	}
	for v := range s.static {
		if !needed[v] {
			delete(s.static, v)
		}
	}
	for i, n := range s.plan {
		for _, in := range n.Inputs {
			s.lastUse[in] = i
		}
	}
	slog.Debug("interp session ready", "graph", g.Name, "nodes", len(s.plan), "precomputed", folded)
	return s, nil
}

// Graph returns the graph the session runs.
func (s *Session) Graph() *ir.Graph { return s.g }

// Run executes the graph on named inputs and returns the named outputs.
// Inputs must match the declared dtypes; symbolic dimensions take the
// sizes of the inputs, which must agree wherever a symbol repeats.
func (s *Session) Run(inputs map[string]*ir.Tensor) (map[string]*ir.Tensor, error) {
	env := make(map[*ir.Value]*ir.Tensor, len(s.plan)+len(inputs))
	bind := map[string]int64{}
	for _, in := range s.g.Inputs {
		t, ok := inputs[in.Name]
		if !ok {
			return nil, fmt.Errorf("input %s is missing (want %v)", in.Name, in.Type)
		}
		if err := checkInput(in, t, bind); err != nil {
			return nil, err
		}
		env[in] = t
	}
	for name := range inputs {
		if s.g.InputValue(name) == nil {
			return nil, fmt.Errorf("graph %s has no input %s", s.g.Name, name)
		}
	}
	get := func(v *ir.Value) *ir.Tensor {
		if t, ok := env[v]; ok {
			return t
		}
		return s.static[v]
	}
	isOutput := map[*ir.Value]bool{}
	for _, o := range s.g.Outputs {
		isOutput[o.Value] = true
	}
	for i, n := range s.plan {
		args := make([]*ir.Tensor, len(n.Inputs))
		for j, in := range n.Inputs {
			args[j] = get(in)
		}
		outs, err := execNode(n, args)
		if err != nil {
			return nil, err
		}
		for j, o := range n.Outputs {
			env[o] = outs[j]
		}
		for _, in := range n.Inputs {
			if s.lastUse[in] == i && !isOutput[in] && in.Kind == ir.KindResult {
				delete(env, in)
			}
		}
	}
	out := make(map[string]*ir.Tensor, len(s.g.Outputs))
	for _, o := range s.g.Outputs {
		out[o.Name] = get(o.Value)
	}
	return out, nil
}

func checkInput(in *ir.Value, t *ir.Tensor, bind map[string]int64) error {
	if t.DType != in.Type.DType {
		return fmt.Errorf("input %s has dtype %v, want %v", in.Name, t.DType, in.Type.DType)
	}
	if len(t.Shape) != in.Type.Shape.Rank() {
		return fmt.Errorf("input %s has shape %v, want %v", in.Name, t.Shape, in.Type.Shape)
	}
	for i, d := range in.Type.Shape {
		got := t.Shape[i]
		if d.IsStatic() {
			if got != d.Size {
				return fmt.Errorf("input %s has shape %v, want %v", in.Name, t.Shape, in.Type.Shape)
			}
			continue
		}
		if prev, ok := bind[d.Sym]; ok && prev != got {
			return fmt.Errorf("input %s has %s = %d, another input has %s = %d", in.Name, d.Sym, got, d.Sym, prev)
		}
		bind[d.Sym] = got
	}
	if int64(t.Len()) != ir.NumElements(t.Shape) {
		return fmt.Errorf("input %s: data length does not match shape %v", in.Name, t.Shape)
	}
	return nil
}

// execNode dispatches one node to its kernel.
func execNode(n *ir.Node, args []*ir.Tensor) (outs []*ir.Tensor, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("interp: %s failed: %v", n.Op, r)
		}
	}()
	k, ok := kernels[n.Op]
	if !ok {
		return nil, fmt.Errorf("interp: no kernel for op %s", n.Op)
	}
	t, err := k(n, args)
	if err != nil {
		return nil, fmt.Errorf("interp: %s: %w", n.Op, err)
	}
	return []*ir.Tensor{t}, nil
}

type kernel func(n *ir.Node, args []*ir.Tensor) (*ir.Tensor, error)

var kernels = map[string]kernel{}

// EvalNode runs one node on concrete operands; passes use it to fold
// constants without depending on this package.
func EvalNode(n *ir.Node, args []*ir.Tensor) ([]*ir.Tensor, error) { return execNode(n, args) }
