package onnx

import (
	"fmt"
	"slices"
	"sort"

	"google.golang.org/protobuf/proto"

	"github.com/mmadac/mmadac/codegen/onnx/onnxpb"
	"github.com/mmadac/mmadac/ir"
)

// attr builds one ONNX attribute from a Go value.
func attr(name string, v any) *onnxpb.AttributeProto {
	a := &onnxpb.AttributeProto{Name: proto.String(name)}
	switch x := v.(type) {
	case int64:
		a.Type = onnxpb.AttributeProto_INT.Enum()
		a.I = proto.Int64(x)
	case int:
		a.Type = onnxpb.AttributeProto_INT.Enum()
		a.I = proto.Int64(int64(x))
	case float64:
		a.Type = onnxpb.AttributeProto_FLOAT.Enum()
		a.F = proto.Float32(float32(x))
	case string:
		a.Type = onnxpb.AttributeProto_STRING.Enum()
		a.S = []byte(x)
	case []int64:
		a.Type = onnxpb.AttributeProto_INTS.Enum()
		a.Ints = x
	default:
		panic(fmt.Sprintf("onnx: attribute %s of type %T", name, v))
	}
	return a
}

// add appends a standard-domain node.
func (e *emitter) add(op string, in, out []string, attrs map[string]any) {
	e.addDomain("", op, in, out, attrs)
}

func (e *emitter) addDomain(domain, op string, in, out []string, attrs map[string]any) {
	n := &onnxpb.NodeProto{OpType: proto.String(op), Input: in, Output: out, Name: proto.String(e.fresh(op))}
	if domain != "" {
		n.Domain = proto.String(domain)
		e.usesMS = true
	}
	keys := make([]string, 0, len(attrs))
	for k := range attrs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		n.Attribute = append(n.Attribute, attr(k, attrs[k]))
	}
	e.g.Node = append(e.g.Node, n)
}

// constI64 adds an i64 initializer and returns its name.
func (e *emitter) constI64(vals ...int64) string {
	name := e.fresh("ints")
	e.g.Initializer = append(e.g.Initializer, &onnxpb.TensorProto{
		Name: proto.String(name), DataType: proto.Int32(int32(onnxpb.TensorProto_INT64)),
		Dims: []int64{int64(len(vals))}, Int64Data: vals,
	})
	return name
}

// scalar adds a rank-0 initializer of the given type.
func (e *emitter) scalar(dt ir.DType, v float64) string {
	t := ir.NewTensor(dt)
	switch dt {
	case ir.F32:
		t.F32()[0] = float32(v)
	case ir.F64:
		t.F64()[0] = v
	case ir.I64:
		t.I64()[0] = int64(v)
	case ir.F16:
		t.U16()[0] = ir.F32ToF16(float32(v))
	}
	name := e.fresh("scalar")
	tp, _ := tensorProto(name, t)
	e.g.Initializer = append(e.g.Initializer, tp)
	return name
}

var simple = map[string]string{
	"neg": "Neg", "exp": "Exp", "log": "Log", "sqrt": "Sqrt", "reciprocal": "Reciprocal",
	"sigmoid": "Sigmoid", "tanh": "Tanh", "sin": "Sin", "cos": "Cos", "abs": "Abs", "not": "Not",
	"add": "Add", "sub": "Sub", "mul": "Mul", "div": "Div", "pow": "Pow", "max": "Max", "min": "Min",
	"equal": "Equal", "less": "Less", "greater": "Greater", "and": "And", "or": "Or",
	"where": "Where", "matmul": "MatMul",
}

// node emits one IR node as one or more ONNX nodes.
func (e *emitter) node(n *ir.Node) error {
	in := make([]string, len(n.Inputs))
	for i, v := range n.Inputs {
		name, ok := e.names[v]
		if !ok {
			return fmt.Errorf("operand %d is not defined", i)
		}
		in[i] = name
	}
	outName := e.fresh("v")
	e.names[n.Outputs[0]] = outName
	out := []string{outName}
	a := n.Attrs
	if op, ok := simple[n.Op]; ok {
		e.add(op, in, out, nil)
		return nil
	}
	switch n.Op {
	case "rsqrt":
		s := e.fresh("v")
		e.add("Sqrt", in, []string{s}, nil)
		e.add("Reciprocal", []string{s}, out, nil)
	case "silu":
		s := e.fresh("v")
		e.add("Sigmoid", in, []string{s}, nil)
		e.add("Mul", []string{in[0], s}, out, nil)
	case "swiglu":
		s, t := e.fresh("v"), e.fresh("v")
		e.add("Sigmoid", in[:1], []string{s}, nil)
		e.add("Mul", []string{in[0], s}, []string{t}, nil)
		e.add("Mul", []string{t, in[1]}, out, nil)
	case "cast":
		e.add("Cast", in, out, map[string]any{"to": int64(elemType(a.DType("to", ir.InvalidDType)))})
	case "gather":
		e.add("Gather", in, out, map[string]any{"axis": a.Int("axis", 0)})
	case "reshape":
		e.add("Reshape", []string{in[0], e.constI64(a.Ints("shape")...)}, out, nil)
	case "transpose":
		e.add("Transpose", in, out, map[string]any{"perm": a.Ints("perm")})
	case "unsqueeze":
		e.add("Unsqueeze", []string{in[0], e.constI64(a.Ints("axes")...)}, out, nil)
	case "squeeze":
		e.add("Squeeze", []string{in[0], e.constI64(a.Ints("axes")...)}, out, nil)
	case "concat":
		e.add("Concat", in, out, map[string]any{"axis": a.Int("axis", 0)})
	case "slice":
		args := []string{in[0], e.constI64(a.Ints("starts")...), e.constI64(a.Ints("ends")...), e.constI64(a.Ints("axes")...)}
		if st := a.Ints("steps"); st != nil {
			args = append(args, e.constI64(st...))
		}
		e.add("Slice", args, out, nil)
	case "reduce_mean", "reduce_max":
		op := map[string]string{"reduce_mean": "ReduceMean", "reduce_max": "ReduceMax"}[n.Op]
		e.add(op, in, out, map[string]any{"axes": a.Ints("axes"), "keepdims": a.Int("keepdims", 1)})
	case "reduce_sum":
		// ReduceSum takes its axes as an input from opset 13.
		e.add("ReduceSum", []string{in[0], e.constI64(a.Ints("axes")...)}, out, map[string]any{"keepdims": a.Int("keepdims", 1)})
	case "softmax":
		e.add("Softmax", in, out, map[string]any{"axis": a.Int("axis", -1)})
	case "argmax":
		e.add("ArgMax", in, out, map[string]any{"axis": a.Int("axis", -1), "keepdims": a.Int("keepdims", 0)})
	case "arange":
		e.arange(n, in[0], outName)
	case "conv2d":
		w := n.Inputs[1].Type.Shape
		attrs := map[string]any{"kernel_shape": []int64{w[2].Size, w[3].Size}}
		if s := a.Ints("strides"); s != nil {
			attrs["strides"] = s
		}
		if p := a.Ints("pads"); p != nil {
			// IR pads are [top, left, bottom, right]; ONNX lists all
			// begins then all ends, which is the same order for 2-D.
			attrs["pads"] = p
		}
		e.add("Conv", in, out, attrs)
	case "resize_nearest":
		s := float32(a.Int("scale", 2))
		scales := e.fresh("scales")
		e.g.Initializer = append(e.g.Initializer, &onnxpb.TensorProto{
			Name: proto.String(scales), DataType: proto.Int32(int32(onnxpb.TensorProto_FLOAT)),
			Dims: []int64{4}, FloatData: []float32{1, 1, s, s},
		})
		e.add("Resize", []string{in[0], "", scales}, out, map[string]any{
			"mode": "nearest", "coordinate_transformation_mode": "asymmetric", "nearest_mode": "floor",
		})
	case "pad":
		val := e.scalar(n.Inputs[0].Type.DType, a.Float("value", 0))
		e.add("Pad", []string{in[0], e.constI64(a.Ints("pads")...), val}, out, map[string]any{"mode": "constant"})
	case "group_norm":
		e.groupNorm(n, in, outName)
	case "rms_norm":
		e.rmsNorm(n, in, outName)
	case "attention":
		e.attention(n, in, outName)
	case "rope":
		e.rope(n, in, outName)
	default:
		return fmt.Errorf("no ONNX lowering for op %s", n.Op)
	}
	return nil
}

// arange lowers to Shape -> Gather(axis) -> Range(0, n, 1) -> Cast.
func (e *emitter) arange(n *ir.Node, x, out string) {
	shape, size, rng := e.fresh("v"), e.fresh("v"), e.fresh("v")
	e.add("Shape", []string{x}, []string{shape}, nil)
	idx := e.fresh("axis")
	t, _ := tensorProto(idx, ir.FromI64([]int64{n.Attrs.Int("axis", 0)}))
	t.Dims = nil
	e.g.Initializer = append(e.g.Initializer, t)
	e.add("Gather", []string{shape, idx}, []string{size}, map[string]any{"axis": int64(0)})
	e.add("Range", []string{e.scalar(ir.I64, 0), size, e.scalar(ir.I64, 1)}, []string{rng}, nil)
	e.add("Cast", []string{rng}, []string{out}, map[string]any{"to": int64(elemType(n.Attrs.DType("dtype", ir.I64)))})
}

// groupNorm decomposes group normalisation into standard ops: reshape to
// [n, groups, rest], normalise with mean and biased variance, reshape
// back, then scale and shift per channel.
func (e *emitter) groupNorm(n *ir.Node, in []string, out string) {
	x := n.Inputs[0].Type
	groups := n.Attrs.Int("groups", 32)
	eps := n.Attrs.Float("eps", 1e-6)
	dt := x.DType
	v := func() string { return e.fresh("v") }
	grouped, mean, centred, sq, variance, veps, std, normed, back, scaled := v(), v(), v(), v(), v(), v(), v(), v(), v(), v()
	e.add("Reshape", []string{in[0], e.constI64(0, groups, -1)}, []string{grouped}, nil)
	e.add("ReduceMean", []string{grouped}, []string{mean}, map[string]any{"axes": []int64{2}, "keepdims": int64(1)})
	e.add("Sub", []string{grouped, mean}, []string{centred}, nil)
	e.add("Mul", []string{centred, centred}, []string{sq}, nil)
	e.add("ReduceMean", []string{sq}, []string{variance}, map[string]any{"axes": []int64{2}, "keepdims": int64(1)})
	e.add("Add", []string{variance, e.scalar(dt, eps)}, []string{veps}, nil)
	e.add("Sqrt", []string{veps}, []string{std}, nil)
	e.add("Div", []string{centred, std}, []string{normed}, nil)
	shape := v()
	e.add("Shape", []string{in[0]}, []string{shape}, nil)
	e.add("Reshape", []string{normed, shape}, []string{back}, nil)
	c := x.Shape[1].Size
	sc, bi := v(), v()
	e.add("Reshape", []string{in[1], e.constI64(c, 1, 1)}, []string{sc}, nil)
	e.add("Reshape", []string{in[2], e.constI64(c, 1, 1)}, []string{bi}, nil)
	e.add("Mul", []string{back, sc}, []string{scaled}, nil)
	e.add("Add", []string{scaled, bi}, []string{out}, nil)
}

// rmsNorm decomposes x / sqrt(mean(x^2) + eps) * w in the form ONNX
// Runtime's layer-norm fusion recognises (Pow 2, ReduceMean, Add, Sqrt,
// Div, Mul), so that it runs as one SimplifiedLayerNormalization kernel
// instead of seven passes over the activations.
func (e *emitter) rmsNorm(n *ir.Node, in []string, out string) {
	dt := n.Inputs[0].Type.DType
	v := func() string { return e.fresh("v") }
	sq, ms, mse, root, normed := v(), v(), v(), v(), v()
	e.add("Pow", []string{in[0], e.scalar(dt, 2)}, []string{sq}, nil)
	e.add("ReduceMean", []string{sq}, []string{ms}, map[string]any{"axes": []int64{-1}, "keepdims": int64(1)})
	e.add("Add", []string{ms, e.scalar(dt, n.Attrs.Float("eps", 1e-5))}, []string{mse}, nil)
	e.add("Sqrt", []string{mse}, []string{root}, nil)
	e.add("Div", []string{in[0], root}, []string{normed}, nil)
	e.add("Mul", []string{normed, in[1]}, []string{out}, nil)
}

// rope lowers the rotary embedding: to com.microsoft RotaryEmbedding when
// allowed, one kernel instead of six, else to slices, products and a
// concat. The tables hold one row per row of x, so the kernel's position
// ids are the offset 0.
func (e *emitter) rope(n *ir.Node, in []string, out string) {
	x := n.Inputs[0].Type
	if e.opts.MicrosoftDomain && x.DType == ir.F32 && x.Shape.Rank() == 4 {
		e.ropeKernel(n, in, out)
		return
	}

	last := int64(x.Shape.Rank() - 1)
	half := x.Shape[last].Size / 2
	v := func() string { return e.fresh("v") }
	x1, x2, a, b, c, d, lo, hi := v(), v(), v(), v(), v(), v(), v(), v()
	e.add("Split", []string{in[0], e.constI64(half, half)}, []string{x1, x2}, map[string]any{"axis": last})
	e.add("Mul", []string{x1, in[1]}, []string{a}, nil)
	e.add("Mul", []string{x2, in[2]}, []string{b}, nil)
	e.add("Sub", []string{a, b}, []string{lo}, nil)
	e.add("Mul", []string{x2, in[1]}, []string{c}, nil)
	e.add("Mul", []string{x1, in[2]}, []string{d}, nil)
	e.add("Add", []string{c, d}, []string{hi}, nil)
	e.add("Concat", []string{lo, hi}, []string{out}, map[string]any{"axis": last})
}

// ropeKernel emits RotaryEmbedding for a rank-4 rope. When the heads were
// split from [batch, seq, hidden] by reshape and transpose, the kernel
// rotates the unsplit tensor, with num_heads giving the split. The
// attention then reads that unsplit result (see merged), so no transpose
// runs. Rotating [batch, heads, seq, dim] directly would cost two
// transposes per rope.
func (e *emitter) ropeKernel(n *ir.Node, in []string, out string) {
	y, heads, ok := splitHeads(n.Inputs[0])
	name, known := e.names[y]
	if !ok || !known {
		e.addDomain("com.microsoft", "RotaryEmbedding", []string{in[0], e.constI64(0), in[1], in[2]}, []string{out},
			map[string]any{"interleaved": int64(0)})
		return
	}

	dim := n.Inputs[0].Type.Shape[3].Size
	r, split := e.fresh("v"), e.fresh("v")
	e.addDomain("com.microsoft", "RotaryEmbedding", []string{name, e.constI64(0), in[1], in[2]}, []string{r},
		map[string]any{"interleaved": int64(0), "num_heads": heads})
	e.setMerged(n.Outputs[0], r)
	e.add("Reshape", []string{r, e.constI64(0, 0, heads, dim)}, []string{split}, nil)
	e.add("Transpose", []string{split}, []string{out}, map[string]any{"perm": []int64{0, 2, 1, 3}})
}

// setMerged records name as the [batch, seq, heads*dim] form of v.
func (e *emitter) setMerged(v *ir.Value, name string) {
	if e.merged == nil {
		e.merged = map[*ir.Value]string{}
	}
	e.merged[v] = name
}

// splitHeads reports whether x [batch, heads, seq, dim] is
// transpose(reshape(y, [0, 0, heads, dim]), [0, 2, 1, 3]) of a y [batch,
// seq, heads*dim], and returns y and the head count.
func splitHeads(x *ir.Value) (*ir.Value, int64, bool) {
	t := x.Def
	if t == nil || t.Op != "transpose" || !slices.Equal(t.Attrs.Ints("perm"), []int64{0, 2, 1, 3}) {
		return nil, 0, false
	}
	r := t.Inputs[0].Def
	if r == nil || r.Op != "reshape" {
		return nil, 0, false
	}
	shape := x.Type.Shape
	heads, dim := shape[1], shape[3]
	spec := r.Attrs.Ints("shape")
	if !heads.IsStatic() || !dim.IsStatic() || !slices.Equal(spec, []int64{0, 0, heads.Size, dim.Size}) {
		return nil, 0, false
	}
	y := r.Inputs[0]
	ys := y.Type.Shape
	if ys.Rank() != 3 || ys[2] != ir.D(heads.Size*dim.Size) {
		return nil, 0, false
	}
	return y, heads.Size, true
}

// attention lowers the fused op: to com.microsoft MultiHeadAttention when
// allowed, else to MatMul, Softmax and MatMul.
func (e *emitter) attention(n *ir.Node, in []string, out string) {
	scale := n.Attrs.Float("scale", 0)
	v := func() string { return e.fresh("v") }
	if e.opts.MicrosoftDomain && n.Inputs[0].Type.DType == ir.F32 {
		e.multiHeadAttention(n, in, out, scale)
		return
	}
	kt, scores, scaled, probs := v(), v(), v(), v()
	e.add("Transpose", []string{in[1]}, []string{kt}, map[string]any{"perm": []int64{0, 1, 3, 2}})
	e.add("MatMul", []string{in[0], kt}, []string{scores}, nil)
	e.add("Mul", []string{scores, e.scalar(n.Inputs[0].Type.DType, scale)}, []string{scaled}, nil)
	logits := scaled
	if len(in) == 4 {
		biased := v()
		e.add("Add", []string{scaled, in[3]}, []string{biased}, nil)
		logits = biased
	}
	e.add("Softmax", []string{logits}, []string{probs}, map[string]any{"axis": int64(-1)})
	e.add("MatMul", []string{probs, in[2]}, []string{out}, nil)
}

// multiHeadAttention lowers to ONNX Runtime's com.microsoft
// MultiHeadAttention, which takes query, key and value as [batch, seq,
// hidden]. An operand with a merged form (split from one by reshape and
// transpose, or a rope on such a split) is read in that form. Other
// operands are transposed and merged on the way in. The result is split
// again on the way out, and ONNX Runtime's transpose optimizer cancels
// that against the transpose that follows in the model.
func (e *emitter) multiHeadAttention(n *ir.Node, in []string, out string, scale float64) {
	shape := n.Inputs[0].Type.Shape
	heads, dim := shape[1].Size, shape[3].Size
	v := func() string { return e.fresh("v") }
	merge := func(i int) string {
		x := n.Inputs[i]
		if name, ok := e.merged[x]; ok {
			return name
		}
		if y, h, ok := splitHeads(x); ok && h == heads {
			if name, ok := e.names[y]; ok {
				return name
			}
		}
		t, r := v(), v()
		e.add("Transpose", []string{in[i]}, []string{t}, map[string]any{"perm": []int64{0, 2, 1, 3}})
		e.add("Reshape", []string{t, e.constI64(0, 0, heads*dim)}, []string{r}, nil)
		return r
	}
	args := []string{merge(0), merge(1), merge(2)}
	if len(in) == 4 {
		args = append(args, "", "", in[3])
	}
	o, split := v(), v()
	e.addDomain("com.microsoft", "MultiHeadAttention", args, []string{o}, map[string]any{
		"num_heads": heads, "scale": scale,
	})
	e.add("Reshape", []string{o, e.constI64(0, 0, heads, dim)}, []string{split}, nil)
	e.add("Transpose", []string{split}, []string{out}, map[string]any{"perm": []int64{0, 2, 1, 3}})
}
