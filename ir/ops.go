package ir

import (
	"fmt"
	"sort"
)

// OpDef describes one operation: how many operands it takes, how its
// result types follow from its operands and attributes, and a one-line
// meaning that the documentation and `mmadac ir --ops` print.
type OpDef struct {
	Name string
	// MinInputs and MaxInputs bound the operand count; MaxInputs < 0 means
	// any number.
	MinInputs, MaxInputs int
	// Infer returns the result types, or an error that names the rule the
	// operands break.
	Infer func(in []*Value, a Attrs) ([]Type, error)
	// Pure ops have no effect beyond their results, so passes may remove
	// or merge them. Every op in the table is pure today.
	Pure bool
	// Doc is a one-line meaning.
	Doc string
}

var opTable = map[string]*OpDef{}

func register(d *OpDef) {
	if _, dup := opTable[d.Name]; dup {
		panic("ir: op registered twice: " + d.Name)
	}
	d.Pure = true
	opTable[d.Name] = d
}

// LookupOp returns the definition of an op by name.
func LookupOp(name string) (*OpDef, bool) {
	d, ok := opTable[name]
	return d, ok
}

// OpNames returns every registered op name, sorted.
func OpNames() []string {
	names := make([]string, 0, len(opTable))
	for n := range opTable {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// CheckAndInfer checks the operand count and runs the op's type rule.
func (d *OpDef) CheckAndInfer(in []*Value, a Attrs) ([]Type, error) {
	if len(in) < d.MinInputs || (d.MaxInputs >= 0 && len(in) > d.MaxInputs) {
		return nil, fmt.Errorf("takes %d to %d operands, got %d", d.MinInputs, d.MaxInputs, len(in))
	}
	return d.Infer(in, a)
}

func init() {
	// The result type of unary element-wise ops is the operand type.
	for _, u := range []struct{ name, doc string }{
		{"neg", "-x"},
		{"exp", "e^x"},
		{"log", "natural logarithm"},
		{"sqrt", "square root"},
		{"rsqrt", "1/sqrt(x)"},
		{"reciprocal", "1/x"},
		{"sigmoid", "1/(1+e^-x)"},
		{"silu", "x*sigmoid(x)"},
		{"tanh", "hyperbolic tangent"},
		{"sin", "sine"},
		{"cos", "cosine"},
		{"abs", "absolute value"},
		{"not", "logical negation of a bool tensor"},
	} {
		register(&OpDef{Name: u.name, MinInputs: 1, MaxInputs: 1, Doc: u.doc, Infer: inferSame})
	}
	for _, b := range []struct{ name, doc string }{
		{"add", "a+b with broadcasting"},
		{"sub", "a-b with broadcasting"},
		{"mul", "a*b with broadcasting"},
		{"div", "a/b with broadcasting"},
		{"pow", "a^b with broadcasting"},
		{"max", "element-wise maximum"},
		{"min", "element-wise minimum"},
	} {
		register(&OpDef{Name: b.name, MinInputs: 2, MaxInputs: 2, Doc: b.doc, Infer: inferBinary(false)})
	}
	for _, b := range []struct{ name, doc string }{
		{"equal", "a==b, bool result"},
		{"less", "a<b, bool result"},
		{"greater", "a>b, bool result"},
		{"and", "logical and of bool tensors"},
		{"or", "logical or of bool tensors"},
	} {
		register(&OpDef{Name: b.name, MinInputs: 2, MaxInputs: 2, Doc: b.doc, Infer: inferBinary(true)})
	}
	register(&OpDef{Name: "where", MinInputs: 3, MaxInputs: 3, Doc: "cond ? a : b with broadcasting", Infer: inferWhere})
	register(&OpDef{Name: "cast", MinInputs: 1, MaxInputs: 1, Doc: "convert to the element type {to}", Infer: inferCast})
	register(&OpDef{Name: "matmul", MinInputs: 2, MaxInputs: 2, Doc: "batched matrix product a[...,m,k] x b[...,k,n]", Infer: inferMatMul})
	register(&OpDef{Name: "gather", MinInputs: 2, MaxInputs: 2, Doc: "rows of data along {axis} picked by integer indices", Infer: inferGather})
	register(&OpDef{Name: "reshape", MinInputs: 1, MaxInputs: 1, Doc: "new shape {shape}; 0 copies the input dimension, -1 is inferred", Infer: inferReshape})
	register(&OpDef{Name: "transpose", MinInputs: 1, MaxInputs: 1, Doc: "permute dimensions by {perm}", Infer: inferTranspose})
	register(&OpDef{Name: "unsqueeze", MinInputs: 1, MaxInputs: 1, Doc: "insert size-1 dimensions at {axes} of the result", Infer: inferUnsqueeze})
	register(&OpDef{Name: "squeeze", MinInputs: 1, MaxInputs: 1, Doc: "remove the size-1 dimensions {axes}", Infer: inferSqueeze})
	register(&OpDef{Name: "concat", MinInputs: 1, MaxInputs: -1, Doc: "join along {axis}", Infer: inferConcat})
	register(&OpDef{Name: "slice", MinInputs: 1, MaxInputs: 1, Doc: "x[starts:ends] on {axes} with {steps}", Infer: inferSlice})
	for _, r := range []string{"reduce_mean", "reduce_sum", "reduce_max"} {
		register(&OpDef{Name: r, MinInputs: 1, MaxInputs: 1, Doc: "reduction over {axes}, {keepdims}", Infer: inferReduce})
	}
	register(&OpDef{Name: "softmax", MinInputs: 1, MaxInputs: 1, Doc: "softmax along {axis}", Infer: inferSame})
	register(&OpDef{Name: "argmax", MinInputs: 1, MaxInputs: 1, Doc: "index of the first maximum along {axis}, i64", Infer: inferArgMax})
	register(&OpDef{Name: "arange", MinInputs: 1, MaxInputs: 1, Doc: "0..n-1 of type {dtype}, n = size of dimension {axis} of the operand", Infer: inferArange})
	register(&OpDef{Name: "conv2d", MinInputs: 2, MaxInputs: 3, Doc: "2-D cross-correlation x[n,c,h,w] * w[o,c,kh,kw] + b, {strides}, {pads}=[top,left,bottom,right]", Infer: inferConv})
	register(&OpDef{Name: "group_norm", MinInputs: 3, MaxInputs: 3, Doc: "group normalisation over {groups} channel groups, {eps}, then scale and bias per channel", Infer: inferSameFirst})
	register(&OpDef{Name: "resize_nearest", MinInputs: 1, MaxInputs: 1, Doc: "nearest-neighbour upsampling of the two last dimensions by the integer {scale}", Infer: inferResize})
	register(&OpDef{Name: "pad", MinInputs: 1, MaxInputs: 1, Doc: "constant padding, {pads} = begins then ends per dimension, {value}", Infer: inferPad})
	registerFused()
}

func inferSame(in []*Value, a Attrs) ([]Type, error) { return []Type{in[0].Type}, nil }

func inferSameFirst(in []*Value, a Attrs) ([]Type, error) { return []Type{in[0].Type}, nil }

// Broadcast applies the NumPy rule to two shapes: aligned from the right,
// dimensions equal or one of them a static 1.
func Broadcast(a, b Shape) (Shape, error) {
	n := len(a)
	if len(b) > n {
		n = len(b)
	}
	out := make(Shape, n)
	for i := 0; i < n; i++ {
		da, db := D(1), D(1)
		if j := len(a) - n + i; j >= 0 {
			da = a[j]
		}
		if j := len(b) - n + i; j >= 0 {
			db = b[j]
		}
		switch {
		case da == db:
			out[i] = da
		case da == D(1):
			out[i] = db
		case db == D(1):
			out[i] = da
		default:
			return nil, fmt.Errorf("shapes %v and %v do not broadcast (dimension %d: %v vs %v)", a, b, i, da, db)
		}
	}
	return out, nil
}

func inferBinary(boolResult bool) func(in []*Value, a Attrs) ([]Type, error) {
	return func(in []*Value, a Attrs) ([]Type, error) {
		if in[0].Type.DType != in[1].Type.DType {
			return nil, fmt.Errorf("operand dtypes differ: %v and %v", in[0].Type.DType, in[1].Type.DType)
		}
		s, err := Broadcast(in[0].Type.Shape, in[1].Type.Shape)
		if err != nil {
			return nil, err
		}
		dt := in[0].Type.DType
		if boolResult {
			dt = Bool
		}
		return []Type{T(dt, s)}, nil
	}
}

func inferWhere(in []*Value, a Attrs) ([]Type, error) {
	if in[0].Type.DType != Bool {
		return nil, fmt.Errorf("condition must be bool, got %v", in[0].Type.DType)
	}
	if in[1].Type.DType != in[2].Type.DType {
		return nil, fmt.Errorf("branch dtypes differ: %v and %v", in[1].Type.DType, in[2].Type.DType)
	}
	s, err := Broadcast(in[0].Type.Shape, in[1].Type.Shape)
	if err != nil {
		return nil, err
	}
	s, err = Broadcast(s, in[2].Type.Shape)
	if err != nil {
		return nil, err
	}
	return []Type{T(in[1].Type.DType, s)}, nil
}

func inferCast(in []*Value, a Attrs) ([]Type, error) {
	to := a.DType("to", InvalidDType)
	if to == InvalidDType {
		return nil, fmt.Errorf("attribute to is missing")
	}
	return []Type{T(to, in[0].Type.Shape)}, nil
}

func inferMatMul(in []*Value, a Attrs) ([]Type, error) {
	x, y := in[0].Type, in[1].Type
	if x.DType != y.DType {
		return nil, fmt.Errorf("operand dtypes differ: %v and %v", x.DType, y.DType)
	}
	if x.Shape.Rank() < 2 || y.Shape.Rank() < 2 {
		return nil, fmt.Errorf("operands need rank >= 2, got %v and %v", x.Shape, y.Shape)
	}
	xs, ys := x.Shape, y.Shape
	k1, k2 := xs[len(xs)-1], ys[len(ys)-2]
	if k1 != k2 {
		return nil, fmt.Errorf("inner dimensions differ: %v x %v", xs, ys)
	}
	batch, err := Broadcast(xs[:len(xs)-2], ys[:len(ys)-2])
	if err != nil {
		return nil, err
	}
	out := append(batch.Clone(), xs[len(xs)-2], ys[len(ys)-1])
	return []Type{T(x.DType, out)}, nil
}

func normAxis(axis int64, rank int) (int, error) {
	if axis < 0 {
		axis += int64(rank)
	}
	if axis < 0 || int(axis) >= rank {
		return 0, fmt.Errorf("axis %d out of range for rank %d", axis, rank)
	}
	return int(axis), nil
}

func inferGather(in []*Value, a Attrs) ([]Type, error) {
	data, idx := in[0].Type, in[1].Type
	if idx.DType != I64 && idx.DType != I32 {
		return nil, fmt.Errorf("indices must be i64 or i32, got %v", idx.DType)
	}
	axis, err := normAxis(a.Int("axis", 0), data.Shape.Rank())
	if err != nil {
		return nil, err
	}
	out := append(data.Shape[:axis].Clone(), idx.Shape...)
	out = append(out, data.Shape[axis+1:]...)
	return []Type{T(data.DType, out)}, nil
}

func inferReshape(in []*Value, a Attrs) ([]Type, error) {
	src := in[0].Type.Shape
	spec := a.Ints("shape")
	out := make(Shape, len(spec))
	infer := -1
	for i, d := range spec {
		switch {
		case d == 0:
			if i >= len(src) {
				return nil, fmt.Errorf("shape %v copies dimension %d of %v, which has none", spec, i, src)
			}
			out[i] = src[i]
		case d == -1:
			if infer >= 0 {
				return nil, fmt.Errorf("shape %v has two -1 entries", spec)
			}
			infer = i
		case d > 0:
			out[i] = D(d)
		default:
			return nil, fmt.Errorf("invalid size %d in shape %v", d, spec)
		}
	}
	// Symbolic dimensions must be carried over one to one (by 0 entries),
	// so the element counts compare as products of the static parts.
	srcStatic, srcSyms := splitDims(src)
	outStatic, outSyms := int64(1), map[string]int{}
	for i, d := range out {
		if i == infer {
			continue
		}
		if d.IsStatic() {
			outStatic *= d.Size
		} else {
			outSyms[d.Sym]++
		}
	}
	for s, n := range srcSyms {
		if outSyms[s] != n && infer < 0 {
			return nil, fmt.Errorf("shape %v drops symbolic dimension %s of %v", spec, s, src)
		}
	}
	if infer >= 0 {
		for s, n := range outSyms {
			if srcSyms[s] != n {
				return nil, fmt.Errorf("shape %v invents symbolic dimension %s", spec, s)
			}
		}
		extra := 0
		for s, n := range srcSyms {
			if outSyms[s] != n {
				extra++
				out[infer] = S(s)
			}
		}
		switch {
		case extra > 1:
			return nil, fmt.Errorf("cannot infer -1 in %v from %v", spec, src)
		case extra == 1:
			if srcStatic != outStatic {
				return nil, fmt.Errorf("cannot infer -1 in %v from %v", spec, src)
			}
		default:
			if outStatic == 0 || srcStatic%outStatic != 0 {
				return nil, fmt.Errorf("cannot reshape %v to %v", src, spec)
			}
			out[infer] = D(srcStatic / outStatic)
		}
	} else if srcStatic != outStatic {
		return nil, fmt.Errorf("cannot reshape %v (%d static elements) to %v (%d)", src, srcStatic, out, outStatic)
	}
	return []Type{T(in[0].Type.DType, out)}, nil
}

func splitDims(s Shape) (int64, map[string]int) {
	n, syms := int64(1), map[string]int{}
	for _, d := range s {
		if d.IsStatic() {
			n *= d.Size
		} else {
			syms[d.Sym]++
		}
	}
	return n, syms
}

func inferTranspose(in []*Value, a Attrs) ([]Type, error) {
	src := in[0].Type.Shape
	perm := a.Ints("perm")
	if len(perm) != len(src) {
		return nil, fmt.Errorf("perm %v does not match rank %d", perm, len(src))
	}
	seen := make([]bool, len(src))
	out := make(Shape, len(src))
	for i, p := range perm {
		if p < 0 || int(p) >= len(src) || seen[p] {
			return nil, fmt.Errorf("perm %v is not a permutation", perm)
		}
		seen[p] = true
		out[i] = src[p]
	}
	return []Type{T(in[0].Type.DType, out)}, nil
}

func inferUnsqueeze(in []*Value, a Attrs) ([]Type, error) {
	src := in[0].Type.Shape
	axes := a.Ints("axes")
	rank := len(src) + len(axes)
	mark := make([]bool, rank)
	for _, ax := range axes {
		k, err := normAxis(ax, rank)
		if err != nil {
			return nil, err
		}
		if mark[k] {
			return nil, fmt.Errorf("axes %v repeat an axis", axes)
		}
		mark[k] = true
	}
	out := make(Shape, 0, rank)
	j := 0
	for i := 0; i < rank; i++ {
		if mark[i] {
			out = append(out, D(1))
		} else {
			out = append(out, src[j])
			j++
		}
	}
	return []Type{T(in[0].Type.DType, out)}, nil
}

func inferSqueeze(in []*Value, a Attrs) ([]Type, error) {
	src := in[0].Type.Shape
	drop := make([]bool, len(src))
	for _, ax := range a.Ints("axes") {
		k, err := normAxis(ax, len(src))
		if err != nil {
			return nil, err
		}
		if src[k] != D(1) {
			return nil, fmt.Errorf("dimension %d of %v is not 1", k, src)
		}
		drop[k] = true
	}
	out := Shape{}
	for i, d := range src {
		if !drop[i] {
			out = append(out, d)
		}
	}
	return []Type{T(in[0].Type.DType, out)}, nil
}

func inferConcat(in []*Value, a Attrs) ([]Type, error) {
	first := in[0].Type
	axis, err := normAxis(a.Int("axis", 0), first.Shape.Rank())
	if err != nil {
		return nil, err
	}
	out := first.Shape.Clone()
	parts := make([]Dim, 0, len(in))
	for i, v := range in {
		s := v.Type.Shape
		if v.Type.DType != first.DType || s.Rank() != first.Shape.Rank() {
			return nil, fmt.Errorf("operand %d is %v, operand 0 is %v", i, v.Type, first)
		}
		for d := range s {
			if d != axis && s[d] != out[d] {
				return nil, fmt.Errorf("operand %d is %v, operand 0 is %v (dimension %d differs)", i, v.Type, first, d)
			}
		}
		parts = append(parts, s[axis])
	}
	if len(in) == 1 {
		return []Type{first}, nil
	}
	out[axis] = SumDim(parts...)
	return []Type{T(first.DType, out)}, nil
}

// SliceBounds resolves one slice range against a dimension size with the
// ONNX rules: negative indices count from the end, bounds are clamped.
func SliceBounds(start, end, step, size int64) (int64, int64) {
	if start < 0 {
		start += size
	}
	if end < 0 {
		end += size
	}
	if step > 0 {
		start = clamp(start, 0, size)
		end = clamp(end, 0, size)
	} else {
		start = clamp(start, -1, size-1)
		end = clamp(end, -1, size-1)
	}
	return start, end
}

func clamp(x, lo, hi int64) int64 {
	if x < lo {
		return lo
	}
	if x > hi {
		return hi
	}
	return x
}

// SliceLen returns the number of elements a resolved slice selects.
func SliceLen(start, end, step int64) int64 {
	if step > 0 {
		if end <= start {
			return 0
		}
		return (end - start + step - 1) / step
	}
	if start <= end {
		return 0
	}
	return (start - end - step - 1) / -step
}

func inferSlice(in []*Value, a Attrs) ([]Type, error) {
	src := in[0].Type.Shape
	starts, ends, axes, steps := a.Ints("starts"), a.Ints("ends"), a.Ints("axes"), a.Ints("steps")
	if len(starts) != len(ends) || len(axes) != len(starts) || (steps != nil && len(steps) != len(starts)) {
		return nil, fmt.Errorf("starts %v, ends %v, axes %v and steps %v differ in length", starts, ends, axes, steps)
	}
	out := src.Clone()
	for i, ax := range axes {
		k, err := normAxis(ax, len(src))
		if err != nil {
			return nil, err
		}
		step := int64(1)
		if steps != nil {
			step = steps[i]
		}
		if step == 0 {
			return nil, fmt.Errorf("step 0 on axis %d", k)
		}
		if !src[k].IsStatic() {
			return nil, fmt.Errorf("slicing symbolic dimension %v (axis %d) is not supported", src[k], k)
		}
		s, e := SliceBounds(starts[i], ends[i], step, src[k].Size)
		out[k] = D(SliceLen(s, e, step))
	}
	return []Type{T(in[0].Type.DType, out)}, nil
}

func inferReduce(in []*Value, a Attrs) ([]Type, error) {
	src := in[0].Type.Shape
	keep := a.Int("keepdims", 1) != 0
	red := make([]bool, len(src))
	for _, ax := range a.Ints("axes") {
		k, err := normAxis(ax, len(src))
		if err != nil {
			return nil, err
		}
		red[k] = true
	}
	out := Shape{}
	for i, d := range src {
		switch {
		case !red[i]:
			out = append(out, d)
		case keep:
			out = append(out, D(1))
		}
	}
	return []Type{T(in[0].Type.DType, out)}, nil
}

func inferArgMax(in []*Value, a Attrs) ([]Type, error) {
	src := in[0].Type.Shape
	k, err := normAxis(a.Int("axis", -1), len(src))
	if err != nil {
		return nil, err
	}
	out := Shape{}
	for i, d := range src {
		if i != k {
			out = append(out, d)
		} else if a.Int("keepdims", 0) != 0 {
			out = append(out, D(1))
		}
	}
	return []Type{T(I64, out)}, nil
}

func inferArange(in []*Value, a Attrs) ([]Type, error) {
	src := in[0].Type.Shape
	k, err := normAxis(a.Int("axis", 0), len(src))
	if err != nil {
		return nil, err
	}
	return []Type{T(a.DType("dtype", I64), Shape{src[k]})}, nil
}

func inferConv(in []*Value, a Attrs) ([]Type, error) {
	x, w := in[0].Type.Shape, in[1].Type.Shape
	if x.Rank() != 4 || w.Rank() != 4 {
		return nil, fmt.Errorf("input %v and weight %v must both be rank 4", x, w)
	}
	if !w.IsStatic() || !x[1].IsStatic() || !x[2].IsStatic() || !x[3].IsStatic() {
		return nil, fmt.Errorf("channels, height, width and the weight must be static: %v, %v", x, w)
	}
	if x[1].Size != w[1].Size {
		return nil, fmt.Errorf("input has %d channels, weight %v expects %d", x[1].Size, w, w[1].Size)
	}
	if len(in) == 3 && !in[2].Type.Shape.Equal(Static(w[0].Size)) {
		return nil, fmt.Errorf("bias %v does not match %d output channels", in[2].Type.Shape, w[0].Size)
	}
	strides := a.Ints("strides")
	if strides == nil {
		strides = []int64{1, 1}
	}
	pads := a.Ints("pads")
	if pads == nil {
		pads = []int64{0, 0, 0, 0}
	}
	if len(strides) != 2 || len(pads) != 4 {
		return nil, fmt.Errorf("strides %v need 2 entries and pads %v need 4", strides, pads)
	}
	h := (x[2].Size+pads[0]+pads[2]-w[2].Size)/strides[0] + 1
	wd := (x[3].Size+pads[1]+pads[3]-w[3].Size)/strides[1] + 1
	if h <= 0 || wd <= 0 {
		return nil, fmt.Errorf("kernel %v does not fit input %v with pads %v", w, x, pads)
	}
	return []Type{T(in[0].Type.DType, Shape{x[0], D(w[0].Size), D(h), D(wd)})}, nil
}

func inferResize(in []*Value, a Attrs) ([]Type, error) {
	x := in[0].Type.Shape
	s := a.Int("scale", 2)
	if x.Rank() != 4 || !x[2].IsStatic() || !x[3].IsStatic() {
		return nil, fmt.Errorf("input %v must be rank 4 with static height and width", x)
	}
	out := x.Clone()
	out[2], out[3] = D(x[2].Size*s), D(x[3].Size*s)
	return []Type{T(in[0].Type.DType, out)}, nil
}

func inferPad(in []*Value, a Attrs) ([]Type, error) {
	x := in[0].Type.Shape
	pads := a.Ints("pads")
	if len(pads) != 2*len(x) {
		return nil, fmt.Errorf("pads %v need %d entries for %v", pads, 2*len(x), x)
	}
	out := x.Clone()
	for i := range x {
		if pads[i] == 0 && pads[i+len(x)] == 0 {
			continue
		}
		if !x[i].IsStatic() {
			return nil, fmt.Errorf("padding symbolic dimension %v is not supported", x[i])
		}
		out[i] = D(x[i].Size + pads[i] + pads[i+len(x)])
	}
	return []Type{T(in[0].Type.DType, out)}, nil
}
