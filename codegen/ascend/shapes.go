package ascend

import (
	"fmt"
	"slices"
	"sort"

	"github.com/mmadac/mmadac/codegen/atc"
	"github.com/mmadac/mmadac/codegen/bundle"
	"github.com/mmadac/mmadac/codegen/onnx/onnxpb"
	"github.com/mmadac/mmadac/ir"
)

// ShapePlan fixes the symbolic dimensions of a graph for ATC. ATC needs a
// size for every input dimension: a fixed one, or -1 with --dynamic_dims
// gears, each of which it compiles as a static graph.
type ShapePlan struct {
	// Fixed gives the size of symbolic dimensions that take one value,
	// e.g. {"batch": 1}.
	Fixed map[string]int64
	// Gear names the symbolic dimension that the gears vary, e.g. "seq".
	Gear string
	// Values are its sizes. One value fixes the dimension (static shapes);
	// two or more become gears.
	Values []int64
}

// Validate checks the plan on its own: a gear dimension with sizes that
// are positive and distinct, within ATC's gear count, and positive fixed
// sizes.
func (p ShapePlan) Validate() error {
	for sym, n := range p.Fixed {
		if n < 1 {
			return fmt.Errorf("dimension %s is fixed to %d; use a positive size", sym, n)
		}
		if sym == p.Gear {
			return fmt.Errorf("dimension %s is both fixed and the gear dimension", sym)
		}
	}
	if p.Gear == "" {
		if len(p.Values) > 0 {
			return fmt.Errorf("sizes %v are given without naming the gear dimension", p.Values)
		}
		return nil
	}
	if len(p.Values) == 0 {
		return fmt.Errorf("dimension %s has no sizes; give one size for static shapes or %d to %d gears", p.Gear, atc.MinGears, atc.MaxGears)
	}
	if len(p.Values) > atc.MaxGears {
		return fmt.Errorf("dimension %s has %d sizes; ATC compiles at most %d gears", p.Gear, len(p.Values), atc.MaxGears)
	}
	seen := map[int64]bool{}
	for _, v := range p.Values {
		if v < 1 {
			return fmt.Errorf("dimension %s size %d is not positive", p.Gear, v)
		}
		if seen[v] {
			return fmt.Errorf("dimension %s size %d is listed twice", p.Gear, v)
		}
		seen[v] = true
	}
	return nil
}

// Static reports whether the plan gives every dimension one size.
func (p ShapePlan) Static() bool { return len(p.Values) <= 1 }

// size returns the ATC size of one dimension: its static size, the fixed
// size of its symbol, the single gear value, or -1 for a geared dimension.
func (p ShapePlan) size(d ir.Dim) (int64, error) {
	if d.IsStatic() {
		return d.Size, nil
	}
	if n, ok := p.Fixed[d.Sym]; ok {
		return n, nil
	}
	if d.Sym == p.Gear && p.Gear != "" {
		if len(p.Values) == 1 {
			return p.Values[0], nil
		}
		return -1, nil
	}
	return 0, fmt.Errorf("symbolic dimension %s has no size; fix it (for example with --batch) or make it the gear dimension", d.Sym)
}

// ATC returns the --input_shape entries for the graph inputs, in input
// order, and the --dynamic_dims gears: each gear repeats the gear value
// for every -1, because ATC wants one value per -1 across all inputs.
func (p ShapePlan) ATC(g *ir.Graph) ([]atc.InputShape, [][]int64, error) {
	if err := p.Validate(); err != nil {
		return nil, nil, err
	}
	var shapes []atc.InputShape
	dynamic := 0
	for _, in := range g.Inputs {
		s := atc.InputShape{Name: in.Name, Dims: []int64{}}
		for _, d := range in.Type.Shape {
			n, err := p.size(d)
			if err != nil {
				return nil, nil, fmt.Errorf("input %s: %w", in.Name, err)
			}
			if n == -1 {
				dynamic++
			}
			s.Dims = append(s.Dims, n)
		}
		shapes = append(shapes, s)
	}
	if p.Static() {
		return shapes, nil, nil
	}
	if dynamic == 0 {
		return nil, nil, fmt.Errorf("no input of graph %s has the dimension %s that the gears vary", g.Name, p.Gear)
	}
	values := slices.Clone(p.Values)
	sort.Slice(values, func(i, j int) bool { return values[i] < values[j] })
	gears := make([][]int64, len(values))
	for i, v := range values {
		gear := make([]int64, dynamic)
		for j := range gear {
			gear[j] = v
		}
		gears[i] = gear
	}
	return shapes, gears, nil
}

// Tensors describes the graph's inputs and outputs for the bundle
// manifest, with the plan's sizes and -1 for geared dimensions.
func (p ShapePlan) Tensors(g *ir.Graph) (inputs, outputs []bundle.Tensor, err error) {
	describe := func(name string, t ir.Type) (bundle.Tensor, error) {
		bt := bundle.Tensor{Name: name, DType: t.DType, Dims: []int64{}}
		symbolic := false
		var symbols []string
		for _, d := range t.Shape {
			n, err := p.size(d)
			if err != nil {
				return bt, fmt.Errorf("%s: %w", name, err)
			}
			bt.Dims = append(bt.Dims, n)
			symbols = append(symbols, d.Sym)
			symbolic = symbolic || d.Sym != ""
		}
		if symbolic {
			bt.Symbols = symbols
		}
		return bt, nil
	}
	for _, in := range g.Inputs {
		t, err := describe(in.Name, in.Type)
		if err != nil {
			return nil, nil, err
		}
		inputs = append(inputs, t)
	}
	for _, o := range g.Outputs {
		t, err := describe(o.Name, o.Value.Type)
		if err != nil {
			return nil, nil, err
		}
		outputs = append(outputs, t)
	}
	return inputs, outputs, nil
}

// KeepDTypeNodes lists the ONNX nodes that ATC's --keep_dtype file should
// keep in float32 when --precision_mode_v2 lowers the rest to float16. They
// are each Softmax with the Add that feeds it the attention bias, and each
// ReduceMean with the Mul or Pow that squares its input and the Add, Sqrt,
// Reciprocal or Div chain after it (the RMSNorm statistics). The nodes
// between the last MatMul and each graph output (the sampling head after
// the projection) are kept too. The names are sorted and unique.
//
// NOTE: ATC documents --keep_dtype entries as operator names; that the ONNX
// parser keeps ONNX node names as operator names is unconfirmed.
func KeepDTypeNodes(m *onnxpb.ModelProto) []string {
	g := m.GetGraph()
	producer := map[string]*onnxpb.NodeProto{}
	consumers := map[string][]*onnxpb.NodeProto{}
	for _, n := range g.GetNode() {
		for _, o := range n.GetOutput() {
			producer[o] = n
		}
		for _, in := range n.GetInput() {
			consumers[in] = append(consumers[in], n)
		}
	}

	keep := map[string]bool{}
	mark := func(n *onnxpb.NodeProto) {
		if n != nil && n.GetName() != "" {
			keep[n.GetName()] = true
		}
	}
	for _, n := range g.GetNode() {
		switch n.GetOpType() {
		case "Softmax":
			mark(n)
			if p := producer[first(n.GetInput())]; p != nil && p.GetOpType() == "Add" {
				mark(p)
			}
		case "ReduceMean":
			mark(n)
			if p := producer[first(n.GetInput())]; p != nil && (p.GetOpType() == "Mul" || p.GetOpType() == "Pow") {
				mark(p)
			}
			// Follow the single-consumer chain eps-add, sqrt, reciprocal.
			cur := n
			for {
				next := consumers[first(cur.GetOutput())]
				if len(next) != 1 || !slices.Contains([]string{"Add", "Sqrt", "Reciprocal", "Div"}, next[0].GetOpType()) {
					break
				}
				cur = next[0]
				mark(cur)
			}
		}
	}

	for _, o := range g.GetOutput() {
		stack := []string{o.GetName()}
		for len(stack) > 0 {
			name := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			n := producer[name]
			if n == nil || n.GetOpType() == "MatMul" || keep[n.GetName()] {
				continue
			}
			mark(n)
			stack = append(stack, n.GetInput()...)
		}
	}
	names := make([]string, 0, len(keep))
	for name := range keep {
		names = append(names, name)
	}
	sort.Strings(names)
	return names
}

func first(list []string) string {
	if len(list) == 0 {
		return ""
	}
	return list[0]
}
