package passes

import (
	"slices"

	"github.com/mmadac/mmadac/ir"
)

func init() {
	register(&Pass{Name: "fuse-rope", Run: runFuseRoPE,
		Doc: "replace x*cos + concat(-x2, x1)*sin over the halves of the last axis with one rope op on half tables"})
}

// runFuseRoPE matches the rotary embedding the model builder writes,
//
//	%lo  = slice %x {axes=[last], starts=[0], ends=[dim/2]}
//	%hi  = slice %x {axes=[last], starts=[dim/2], ends=[dim]}
//	%rot = concat (neg %hi), %lo {axis=last}
//	%y   = add (mul %x, %cos), (mul %rot, %sin)
//
// with cos and sin [rows, dim] tables whose two halves are equal, and
// rewrites the add into rope %x, %cos_half, %sin_half. The tables' halves
// are proved equal from their form: cos(concat(a, a)) halves to cos(a),
// and a gather of rows of a constant table whose halves match halves to a
// gather of the constant's first half (fold-rope writes such tables).
// ONNX Runtime runs the rope as one RotaryEmbedding kernel instead of six.
func runFuseRoPE(g *ir.Graph, c *Context) error {
	fused := 0
	ed := newEdits()
	halves := map[*ir.Value]*ir.Value{}
	// tables maps each full table to its half, so that the q and k of
	// every layer read one shared half table.
	tables := map[*ir.Value]*ir.Value{}
	half := func(e *emitter, v *ir.Value, dim int64) *ir.Value {
		if h, ok := tables[v]; ok {
			return h
		}
		h := halfTable(e, v, dim, halves)
		if h != nil {
			tables[v] = h
		}
		return h
	}
	for _, n := range g.Nodes {
		if n.Op != "add" {
			continue
		}
		direct, rotated := def(n.Inputs[0], "mul"), def(n.Inputs[1], "mul")
		if direct == nil || rotated == nil {
			continue
		}
		x, cos := direct.Inputs[0], direct.Inputs[1]
		sin := rotated.Inputs[1]
		if !isRotateHalf(rotated.Inputs[0], x) || !n.Outputs[0].Type.Equal(x.Type) {
			continue
		}
		dim := x.Type.Shape[x.Type.Shape.Rank()-1].Size
		rows := x.Type.Shape[x.Type.Shape.Rank()-2]
		if !isTable(cos, rows, dim) || !isTable(sin, rows, dim) {
			continue
		}
		e := &emitter{g: g}
		ch := half(e, cos, dim)
		sh := half(e, sin, dim)
		if ch == nil || sh == nil {
			continue
		}
		out := e.op("rope", nil, x, ch, sh)
		ed.insert(n, e.nodes)
		ed.replace(n.Outputs[0], out)
		fused++
	}
	ed.apply(g)
	c.count("fuse-rope.fused", fused)
	return runDCE(g, c)
}

// isRotateHalf reports whether v is concat(neg(x[dim/2:]), x[:dim/2]) on
// the last axis of x.
func isRotateHalf(v, x *ir.Value) bool {
	shape := x.Type.Shape
	r := int64(shape.Rank())
	if r < 2 || !shape[r-1].IsStatic() || shape[r-1].Size%2 != 0 {
		return false
	}
	dim := shape[r-1].Size
	cat := def(v, "concat")
	if cat == nil || len(cat.Inputs) != 2 || !lastAxis(cat.Attrs.Int("axis", 0), r) {
		return false
	}
	neg := def(cat.Inputs[0], "neg")
	if neg == nil {
		return false
	}
	return isHalfSlice(neg.Inputs[0], x, dim/2, dim) && isHalfSlice(cat.Inputs[1], x, 0, dim/2)
}

// isHalfSlice reports whether v is x[start:end] on the last axis, step 1.
func isHalfSlice(v, x *ir.Value, start, end int64) bool {
	s := def(v, "slice")
	if s == nil || s.Inputs[0] != x {
		return false
	}
	r := int64(x.Type.Shape.Rank())
	axes := s.Attrs.Ints("axes")
	if len(axes) != 1 || !lastAxis(axes[0], r) {
		return false
	}
	if steps := s.Attrs.Ints("steps"); steps != nil && !equalInts(steps, []int64{1}) {
		return false
	}
	return equalInts(s.Attrs.Ints("starts"), []int64{start}) && equalInts(s.Attrs.Ints("ends"), []int64{end})
}

func lastAxis(axis, rank int64) bool { return axis == rank-1 || axis == -1 }

// isTable reports whether v is a [rows, dim] table of the right dtype.
func isTable(v *ir.Value, rows ir.Dim, dim int64) bool {
	s := v.Type.Shape
	return v.Type.DType == ir.F32 && s.Rank() == 2 && s[0] == rows && s[1] == ir.D(dim)
}

// halfTable returns the first half of the columns of a table whose two
// halves are provably equal, or nil. halves caches the halved constants
// so that q and k of every layer share them.
func halfTable(e *emitter, v *ir.Value, dim int64, halves map[*ir.Value]*ir.Value) *ir.Value {
	if v.Def == nil {
		return nil
	}
	switch v.Def.Op {
	case "cos", "sin":
		cat := def(v.Def.Inputs[0], "concat")
		if cat == nil || len(cat.Inputs) != 2 || cat.Inputs[0] != cat.Inputs[1] || !lastAxis(cat.Attrs.Int("axis", 0), 2) {
			return nil
		}
		return e.op(v.Def.Op, nil, cat.Inputs[0])
	case "gather":
		table, idx := v.Def.Inputs[0], v.Def.Inputs[1]
		if v.Def.Attrs.Int("axis", 0) != 0 || table.Kind != ir.KindConst || idx.Type.Shape.Rank() != 1 {
			return nil
		}
		half, ok := halves[table]
		if !ok {
			half = halfConst(e.g, table, dim)
			halves[table] = half
		}
		if half == nil {
			return nil
		}
		return e.op("gather", ir.Attrs{"axis": int64(0)}, half, idx)
	}
	return nil
}

// halfConst returns a constant holding the first dim/2 columns of a
// [n, dim] f32 constant whose rows repeat their first half, or nil.
func halfConst(g *ir.Graph, table *ir.Value, dim int64) *ir.Value {
	data, ok := table.Const.Data.([]float32)
	if !ok || table.Type.Shape.Rank() != 2 || table.Type.Shape[1] != ir.D(dim) {
		return nil
	}
	half := int(dim / 2)
	rows := len(data) / int(dim)
	out := make([]float32, 0, rows*half)
	for r := range rows {
		row := data[r*int(dim) : (r+1)*int(dim)]
		if !slices.Equal(row[:half], row[half:]) {
			return nil
		}
		out = append(out, row[:half]...)
	}
	return g.Constant(ir.FromF32(out, int64(rows), int64(half)))
}
