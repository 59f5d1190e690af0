package ir

import (
	"fmt"
	"sort"
)

// ValueKind is the origin of a value.
type ValueKind uint8

const (
	// KindResult is produced by a node.
	KindResult ValueKind = iota
	// KindInput is a graph input, fed when the graph runs.
	KindInput
	// KindParam is a stored weight, referenced lazily through a WeightSource.
	KindParam
	// KindConst is a constant held in the graph itself.
	KindConst
)

// Value is an SSA value: defined once, by a node, as a graph input, as a
// stored parameter or as a constant.
type Value struct {
	// ID is unique within the graph and orders values by creation.
	ID int
	// Name identifies inputs and parameters (the checkpoint tensor name);
	// results and constants may leave it empty and print by ID.
	Name string
	// Type is the element type and shape.
	Type Type
	// Kind selects which of Def, Source and Const is set.
	Kind ValueKind
	// Def is the node that produces a result value.
	Def *Node
	// Source gives the bytes of a parameter; nil for a parameter whose
	// data is not available (a graph read back from text).
	Source WeightSource
	// Const holds the data of a constant.
	Const *Tensor
}

// Ref returns the name the text form uses for the value.
func (v *Value) Ref() string {
	if v.Name != "" {
		return "%" + v.Name
	}
	return fmt.Sprintf("%%%d", v.ID)
}

// Node applies one operation to input values and defines its results.
type Node struct {
	Op      string
	Inputs  []*Value
	Outputs []*Value
	Attrs   Attrs
}

// Attrs are the static parameters of a node. Values are int64, float64,
// string, []int64, []float64 or DType.
type Attrs map[string]any

// Keys returns the attribute names in sorted order.
func (a Attrs) Keys() []string {
	keys := make([]string, 0, len(a))
	for k := range a {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// Int returns an integer attribute or def when absent.
func (a Attrs) Int(name string, def int64) int64 {
	if v, ok := a[name]; ok {
		return v.(int64)
	}
	return def
}

// Float returns a float attribute or def when absent.
func (a Attrs) Float(name string, def float64) float64 {
	if v, ok := a[name]; ok {
		return v.(float64)
	}
	return def
}

// Ints returns an integer-list attribute or nil when absent.
func (a Attrs) Ints(name string) []int64 {
	if v, ok := a[name]; ok {
		return v.([]int64)
	}
	return nil
}

// String returns a string attribute or def when absent.
func (a Attrs) String(name string, def string) string {
	if v, ok := a[name]; ok {
		return v.(string)
	}
	return def
}

// DType returns a dtype attribute or def when absent.
func (a Attrs) DType(name string, def DType) DType {
	if v, ok := a[name]; ok {
		return v.(DType)
	}
	return def
}

// Output is a named graph result.
type Output struct {
	Name  string
	Value *Value
}

// Graph is a function from named inputs to named outputs. Nodes are kept
// in a topological order: every input of a node is defined before it.
type Graph struct {
	Name    string
	Inputs  []*Value
	Params  []*Value
	Consts  []*Value
	Nodes   []*Node
	Outputs []Output
	// Meta carries build facts that travel with the graph (for example the
	// sequence lengths a folded table was built for). Keys and values are
	// printed in the text form.
	Meta map[string]string

	nextID int
}

// NewGraph returns an empty graph.
func NewGraph(name string) *Graph { return &Graph{Name: name} }

func (g *Graph) newValue(t Type, kind ValueKind) *Value {
	v := &Value{ID: g.nextID, Type: t, Kind: kind}
	g.nextID++
	return v
}

// Input declares a graph input.
func (g *Graph) Input(name string, dt DType, shape Shape) *Value {
	v := g.newValue(T(dt, shape), KindInput)
	v.Name = name
	g.Inputs = append(g.Inputs, v)
	return v
}

// Param declares a stored weight. The source may be nil when the data is
// not at hand (the graph can then be printed and checked, not run).
func (g *Graph) Param(name string, dt DType, shape Shape, src WeightSource) *Value {
	v := g.newValue(T(dt, shape), KindParam)
	v.Name = name
	v.Source = src
	g.Params = append(g.Params, v)
	return v
}

// Constant adds a constant tensor to the graph.
func (g *Graph) Constant(t *Tensor) *Value {
	shape := Static(t.Shape...)
	v := g.newValue(T(t.DType, shape), KindConst)
	v.Const = t
	g.Consts = append(g.Consts, v)
	return v
}

// Scalar adds a rank-0 constant of the given type.
func (g *Graph) Scalar(dt DType, x float64) *Value {
	t := NewTensor(dt)
	switch dt {
	case F32:
		t.F32()[0] = float32(x)
	case F64:
		t.F64()[0] = x
	case I64:
		t.I64()[0] = int64(x)
	case I32:
		t.I32()[0] = int32(x)
	case Bool:
		t.Bools()[0] = x != 0
	case F16:
		t.U16()[0] = F32ToF16(float32(x))
	case BF16:
		t.U16()[0] = F32ToBF16(float32(x))
	}
	return g.Constant(t)
}

// AddNode appends a node after inferring its result types; it panics with a
// *BuildError when the op is unknown or the operands do not fit. Model
// builders run inside Build, which turns that panic into an error.
func (g *Graph) AddNode(op string, attrs Attrs, inputs ...*Value) []*Value {
	def, ok := LookupOp(op)
	if !ok {
		panic(&BuildError{Op: op, Msg: "unknown op"})
	}
	if attrs == nil {
		attrs = Attrs{}
	}
	types, err := def.CheckAndInfer(inputs, attrs)
	if err != nil {
		panic(&BuildError{Op: op, Msg: err.Error()})
	}
	n := &Node{Op: op, Inputs: inputs, Attrs: attrs}
	for _, t := range types {
		v := g.newValue(t, KindResult)
		v.Def = n
		n.Outputs = append(n.Outputs, v)
	}
	g.Nodes = append(g.Nodes, n)
	return n.Outputs
}

// Op adds a single-result node and returns its result.
func (g *Graph) Op(op string, attrs Attrs, inputs ...*Value) *Value {
	return g.AddNode(op, attrs, inputs...)[0]
}

// SetOutput names a value as a graph result.
func (g *Graph) SetOutput(name string, v *Value) {
	g.Outputs = append(g.Outputs, Output{Name: name, Value: v})
}

// OutputValue returns the value of the named output, or nil.
func (g *Graph) OutputValue(name string) *Value {
	for _, o := range g.Outputs {
		if o.Name == name {
			return o.Value
		}
	}
	return nil
}

// InputValue returns the named input, or nil.
func (g *Graph) InputValue(name string) *Value {
	for _, v := range g.Inputs {
		if v.Name == name {
			return v
		}
	}
	return nil
}

// NewID hands out a fresh value ID; passes use it when they create values
// outside AddNode.
func (g *Graph) NewID() int {
	id := g.nextID
	g.nextID++
	return id
}

// BuildError reports an op that could not be added to a graph.
type BuildError struct {
	Op  string
	Msg string
}

func (e *BuildError) Error() string { return fmt.Sprintf("%s: %s", e.Op, e.Msg) }

// Build runs a graph-building function and turns a *BuildError panic into a
// returned error, so that no panic crosses a package's exported API.
func Build(name string, fn func(g *Graph)) (g *Graph, err error) {
	g = NewGraph(name)
	defer func() {
		if r := recover(); r != nil {
			be, ok := r.(*BuildError)
			if !ok {
				panic(r)
			}
			g, err = nil, fmt.Errorf("building graph %s: %w", name, be)
		}
	}()
	fn(g)
	return g, nil
}

// Uses counts how often each value is read by a node or an output.
func (g *Graph) Uses() map[*Value]int {
	uses := map[*Value]int{}
	for _, n := range g.Nodes {
		for _, in := range n.Inputs {
			uses[in]++
		}
	}
	for _, o := range g.Outputs {
		uses[o.Value]++
	}
	return uses
}
