package interp

import (
	"fmt"
	"math"

	"github.com/mmadac/mmadac/ir"
)

func init() {
	kernels["reshape"] = kernelReshape
	kernels["unsqueeze"] = kernelReshape
	kernels["squeeze"] = kernelReshape
	kernels["transpose"] = kernelTranspose
	kernels["gather"] = kernelGather
	kernels["concat"] = kernelConcat
	kernels["slice"] = kernelSlice
	kernels["reduce_mean"] = kernelReduce
	kernels["reduce_sum"] = kernelReduce
	kernels["reduce_max"] = kernelReduce
	kernels["softmax"] = kernelSoftmax
	kernels["argmax"] = kernelArgMax
	kernels["arange"] = kernelArange
}

// resultShape binds the node's symbolic result dimensions from the input
// sizes: result shapes of shape-only ops follow from their operands.
func reshapeTarget(n *ir.Node, in []int64) []int64 {
	switch n.Op {
	case "reshape":
		spec := n.Attrs.Ints("shape")
		out := make([]int64, len(spec))
		known, infer := int64(1), -1
		for i, d := range spec {
			switch {
			case d == 0:
				out[i] = in[i]
			case d == -1:
				infer = i
				continue
			default:
				out[i] = d
			}
			known *= out[i]
		}
		if infer >= 0 {
			out[infer] = ir.NumElements(in) / known
		}
		return out
	case "unsqueeze":
		axes := n.Attrs.Ints("axes")
		rank := len(in) + len(axes)
		mark := make([]bool, rank)
		for _, a := range axes {
			if a < 0 {
				a += int64(rank)
			}
			mark[a] = true
		}
		out := make([]int64, 0, rank)
		j := 0
		for i := 0; i < rank; i++ {
			if mark[i] {
				out = append(out, 1)
			} else {
				out = append(out, in[j])
				j++
			}
		}
		return out
	default: // squeeze
		drop := map[int]bool{}
		for _, a := range n.Attrs.Ints("axes") {
			if a < 0 {
				a += int64(len(in))
			}
			drop[int(a)] = true
		}
		out := []int64{}
		for i, d := range in {
			if !drop[i] {
				out = append(out, d)
			}
		}
		return out
	}
}

// kernelReshape shares the data: tensors are never written after they are
// produced, so a view is safe.
func kernelReshape(n *ir.Node, a []*ir.Tensor) (*ir.Tensor, error) {
	shape := reshapeTarget(n, a[0].Shape)
	if ir.NumElements(shape) != int64(a[0].Len()) {
		return nil, fmt.Errorf("cannot reshape %v to %v", a[0].Shape, shape)
	}
	return &ir.Tensor{DType: a[0].DType, Shape: shape, Data: a[0].Data}, nil
}

func strides(shape []int64) []int64 {
	st := make([]int64, len(shape))
	acc := int64(1)
	for i := len(shape) - 1; i >= 0; i-- {
		st[i] = acc
		acc *= shape[i]
	}
	return st
}

func kernelTranspose(n *ir.Node, a []*ir.Tensor) (*ir.Tensor, error) {
	perm := n.Attrs.Ints("perm")
	x := a[0]
	shape := make([]int64, len(perm))
	for i, p := range perm {
		shape[i] = x.Shape[p]
	}
	switch d := x.Data.(type) {
	case []float32:
		return &ir.Tensor{DType: x.DType, Shape: shape, Data: transposeT(d, x.Shape, perm, shape)}, nil
	case []float64:
		return &ir.Tensor{DType: x.DType, Shape: shape, Data: transposeT(d, x.Shape, perm, shape)}, nil
	case []int64:
		return &ir.Tensor{DType: x.DType, Shape: shape, Data: transposeT(d, x.Shape, perm, shape)}, nil
	case []uint16:
		return &ir.Tensor{DType: x.DType, Shape: shape, Data: transposeT(d, x.Shape, perm, shape)}, nil
	case []bool:
		return &ir.Tensor{DType: x.DType, Shape: shape, Data: transposeT(d, x.Shape, perm, shape)}, nil
	}
	return nil, fmt.Errorf("unsupported dtype %v", x.DType)
}

// transposeT copies d into the permuted layout; the inner loop walks the
// last output dimension with a fixed source stride.
func transposeT[T any](d []T, in []int64, perm []int64, out []int64) []T {
	res := make([]T, len(d))
	if len(out) == 0 {
		copy(res, d)
		return res
	}
	ist := strides(in)
	src := make([]int64, len(out)) // source stride of each output dimension
	for i, p := range perm {
		src[i] = ist[p]
	}
	rank := len(out)
	inner := int(out[rank-1])
	innerStride := src[rank-1]
	rows := len(d) / max(inner, 1)
	parallelFor(rows, 256, func(lo, hi int) {
		for r := lo; r < hi; r++ {
			rem := int64(r)
			off := int64(0)
			for k := rank - 2; k >= 0; k-- {
				off += (rem % out[k]) * src[k]
				rem /= out[k]
			}
			o := res[r*inner : (r+1)*inner]
			for j := range o {
				o[j] = d[off+int64(j)*innerStride]
			}
		}
	})
	return res
}

func kernelGather(n *ir.Node, a []*ir.Tensor) (*ir.Tensor, error) {
	data, idxT := a[0], a[1]
	axis := int(n.Attrs.Int("axis", 0))
	if axis < 0 {
		axis += len(data.Shape)
	}
	var idx []int64
	switch d := idxT.Data.(type) {
	case []int64:
		idx = d
	case []int32:
		idx = make([]int64, len(d))
		for i, v := range d {
			idx[i] = int64(v)
		}
	}
	outer := ir.NumElements(data.Shape[:axis])
	dim := data.Shape[axis]
	inner := ir.NumElements(data.Shape[axis+1:])
	for _, v := range idx {
		if v < -dim || v >= dim {
			return nil, fmt.Errorf("index %d out of range [0, %d)", v, dim)
		}
	}
	shape := append(append(append([]int64(nil), data.Shape[:axis]...), idxT.Shape...), data.Shape[axis+1:]...)
	switch d := data.Data.(type) {
	case []float32:
		return &ir.Tensor{DType: data.DType, Shape: shape, Data: gatherT(d, idx, outer, dim, inner)}, nil
	case []float64:
		return &ir.Tensor{DType: data.DType, Shape: shape, Data: gatherT(d, idx, outer, dim, inner)}, nil
	case []int64:
		return &ir.Tensor{DType: data.DType, Shape: shape, Data: gatherT(d, idx, outer, dim, inner)}, nil
	case []uint16:
		return &ir.Tensor{DType: data.DType, Shape: shape, Data: gatherT(d, idx, outer, dim, inner)}, nil
	case []bool:
		return &ir.Tensor{DType: data.DType, Shape: shape, Data: gatherT(d, idx, outer, dim, inner)}, nil
	}
	return nil, fmt.Errorf("unsupported dtype %v", data.DType)
}

func gatherT[T any](d []T, idx []int64, outer, dim, inner int64) []T {
	out := make([]T, outer*int64(len(idx))*inner)
	pos := int64(0)
	for o := int64(0); o < outer; o++ {
		for _, i := range idx {
			if i < 0 {
				i += dim
			}
			src := (o*dim + i) * inner
			copy(out[pos:pos+inner], d[src:src+inner])
			pos += inner
		}
	}
	return out
}

func kernelConcat(n *ir.Node, a []*ir.Tensor) (*ir.Tensor, error) {
	axis := int(n.Attrs.Int("axis", 0))
	if axis < 0 {
		axis += len(a[0].Shape)
	}
	shape := append([]int64(nil), a[0].Shape...)
	shape[axis] = 0
	for _, t := range a {
		shape[axis] += t.Shape[axis]
	}
	switch a[0].Data.(type) {
	case []float32:
		return concatT[float32](a, axis, shape), nil
	case []float64:
		return concatT[float64](a, axis, shape), nil
	case []int64:
		return concatT[int64](a, axis, shape), nil
	case []bool:
		return concatT[bool](a, axis, shape), nil
	case []uint16:
		return concatT[uint16](a, axis, shape), nil
	}
	return nil, fmt.Errorf("unsupported dtype %v", a[0].DType)
}

func concatT[T any](a []*ir.Tensor, axis int, shape []int64) *ir.Tensor {
	outer := ir.NumElements(shape[:axis])
	out := make([]T, ir.NumElements(shape))
	pos := int64(0)
	for o := int64(0); o < outer; o++ {
		for _, t := range a {
			chunk := ir.NumElements(t.Shape[axis:])
			d := t.Data.([]T)
			copy(out[pos:pos+chunk], d[o*chunk:(o+1)*chunk])
			pos += chunk
		}
	}
	return &ir.Tensor{DType: a[0].DType, Shape: shape, Data: out}
}

func kernelSlice(n *ir.Node, a []*ir.Tensor) (*ir.Tensor, error) {
	x := a[0]
	rank := len(x.Shape)
	start := make([]int64, rank)
	step := make([]int64, rank)
	shape := append([]int64(nil), x.Shape...)
	for i := range step {
		step[i] = 1
	}
	starts, ends, axes, steps := n.Attrs.Ints("starts"), n.Attrs.Ints("ends"), n.Attrs.Ints("axes"), n.Attrs.Ints("steps")
	for i, ax := range axes {
		if ax < 0 {
			ax += int64(rank)
		}
		st := int64(1)
		if steps != nil {
			st = steps[i]
		}
		s, e := ir.SliceBounds(starts[i], ends[i], st, x.Shape[ax])
		start[ax], step[ax] = s, st
		shape[ax] = ir.SliceLen(s, e, st)
	}
	switch d := x.Data.(type) {
	case []float32:
		return &ir.Tensor{DType: x.DType, Shape: shape, Data: sliceT(d, x.Shape, start, step, shape)}, nil
	case []float64:
		return &ir.Tensor{DType: x.DType, Shape: shape, Data: sliceT(d, x.Shape, start, step, shape)}, nil
	case []int64:
		return &ir.Tensor{DType: x.DType, Shape: shape, Data: sliceT(d, x.Shape, start, step, shape)}, nil
	case []bool:
		return &ir.Tensor{DType: x.DType, Shape: shape, Data: sliceT(d, x.Shape, start, step, shape)}, nil
	case []uint16:
		return &ir.Tensor{DType: x.DType, Shape: shape, Data: sliceT(d, x.Shape, start, step, shape)}, nil
	}
	return nil, fmt.Errorf("unsupported dtype %v", x.DType)
}

func sliceT[T any](d []T, in, start, step, out []int64) []T {
	res := make([]T, ir.NumElements(out))
	if len(res) == 0 {
		return res
	}
	ist := strides(in)
	rank := len(out)
	if rank == 0 {
		res[0] = d[0]
		return res
	}
	inner := out[rank-1]
	rows := int64(len(res)) / inner
	for r := int64(0); r < rows; r++ {
		rem := r
		off := start[rank-1] * ist[rank-1]
		for k := rank - 2; k >= 0; k-- {
			i := rem % out[k]
			rem /= out[k]
			off += (start[k] + i*step[k]) * ist[k]
		}
		o := res[r*inner : (r+1)*inner]
		s := step[rank-1] * ist[rank-1]
		for j := range o {
			o[j] = d[off+int64(j)*s]
		}
	}
	return res
}

// kernelReduce reduces f32 data over a set of axes. Sums accumulate in
// float64 so that long rows do not lose precision.
func kernelReduce(n *ir.Node, a []*ir.Tensor) (*ir.Tensor, error) {
	x := a[0]
	if x.DType == ir.F64 {
		return reduceF64(n, x)
	}
	if x.DType != ir.F32 {
		return nil, fmt.Errorf("unsupported dtype %v", x.DType)
	}
	rank := len(x.Shape)
	red := make([]bool, rank)
	for _, ax := range n.Attrs.Ints("axes") {
		if ax < 0 {
			ax += int64(rank)
		}
		red[ax] = true
	}
	keep := n.Attrs.Int("keepdims", 1) != 0
	// Move reduced axes last so each output element reduces a contiguous run.
	perm := []int64{}
	outShape, keptShape := []int64{}, []int64{}
	count := int64(1)
	for i := 0; i < rank; i++ {
		if !red[i] {
			perm = append(perm, int64(i))
			outShape = append(outShape, x.Shape[i])
			keptShape = append(keptShape, x.Shape[i])
		} else if keep {
			keptShape = append(keptShape, 1)
		}
	}
	for i := 0; i < rank; i++ {
		if red[i] {
			perm = append(perm, int64(i))
			count *= x.Shape[i]
		}
	}
	d := x.F32()
	if !isIdentity(perm) {
		tshape := make([]int64, rank)
		for i, p := range perm {
			tshape[i] = x.Shape[p]
		}
		d = transposeT(d, x.Shape, perm, tshape)
	}
	rows := ir.NumElements(outShape)
	out := make([]float32, rows)
	parallelFor(int(rows), 64, func(lo, hi int) {
		for r := lo; r < hi; r++ {
			seg := d[int64(r)*count : int64(r+1)*count]
			switch n.Op {
			case "reduce_max":
				m := float32(math.Inf(-1))
				for _, v := range seg {
					if v > m {
						m = v
					}
				}
				out[r] = m
			default:
				s := 0.0
				for _, v := range seg {
					s += float64(v)
				}
				if n.Op == "reduce_mean" {
					s /= float64(count)
				}
				out[r] = float32(s)
			}
		}
	})
	return ir.FromF32(out, keptShape...), nil
}

func isIdentity(perm []int64) bool {
	for i, p := range perm {
		if int64(i) != p {
			return false
		}
	}
	return true
}

// kernelSoftmax computes a max-subtracted softmax over the last axis (the
// only axis the builders use).
func kernelSoftmax(n *ir.Node, a []*ir.Tensor) (*ir.Tensor, error) {
	x := a[0]
	axis := n.Attrs.Int("axis", -1)
	if axis != -1 && axis != int64(len(x.Shape)-1) {
		return nil, fmt.Errorf("softmax over axis %d is not supported, only the last", axis)
	}
	inner := int(x.Shape[len(x.Shape)-1])
	switch d := x.Data.(type) {
	case []float32:
		out := make([]float32, len(d))
		parallelFor(len(d)/max(inner, 1), 16, func(lo, hi int) {
			for r := lo; r < hi; r++ {
				softmaxRow(d[r*inner:(r+1)*inner], out[r*inner:(r+1)*inner])
			}
		})
		return ir.FromF32(out, x.Shape...), nil
	case []float64:
		out := make([]float64, len(d))
		for r := 0; r < len(d)/max(inner, 1); r++ {
			row, o := d[r*inner:(r+1)*inner], out[r*inner:(r+1)*inner]
			m := math.Inf(-1)
			for _, v := range row {
				m = math.Max(m, v)
			}
			s := 0.0
			for i, v := range row {
				o[i] = math.Exp(v - m)
				s += o[i]
			}
			for i := range o {
				o[i] /= s
			}
		}
		return ir.FromF64(out, x.Shape...), nil
	}
	return nil, fmt.Errorf("unsupported dtype %v", x.DType)
}

func softmaxRow(row, o []float32) {
	m := float32(math.Inf(-1))
	for _, v := range row {
		if v > m {
			m = v
		}
	}
	s := float32(0)
	for i, v := range row {
		e := float32(math.Exp(float64(v - m)))
		o[i] = e
		s += e
	}
	inv := 1 / s
	for i := range o {
		o[i] *= inv
	}
}

func kernelArgMax(n *ir.Node, a []*ir.Tensor) (*ir.Tensor, error) {
	x := a[0]
	axis := n.Attrs.Int("axis", -1)
	if axis != -1 && axis != int64(len(x.Shape)-1) {
		return nil, fmt.Errorf("argmax over axis %d is not supported, only the last", axis)
	}
	inner := int(x.Shape[len(x.Shape)-1])
	d := x.AsF32()
	rows := len(d) / max(inner, 1)
	out := make([]int64, rows)
	for r := 0; r < rows; r++ {
		best, bi := float32(math.Inf(-1)), 0
		for i, v := range d[r*inner : (r+1)*inner] {
			if v > best {
				best, bi = v, i
			}
		}
		out[r] = int64(bi)
	}
	shape := append([]int64(nil), x.Shape[:len(x.Shape)-1]...)
	if n.Attrs.Int("keepdims", 0) != 0 {
		shape = append(shape, 1)
	}
	return ir.FromI64(out, shape...), nil
}

func kernelArange(n *ir.Node, a []*ir.Tensor) (*ir.Tensor, error) {
	axis := n.Attrs.Int("axis", 0)
	if axis < 0 {
		axis += int64(len(a[0].Shape))
	}
	size := a[0].Shape[axis]
	out := ir.NewTensor(n.Attrs.DType("dtype", ir.I64), size)
	for i := int64(0); i < size; i++ {
		switch d := out.Data.(type) {
		case []float32:
			d[i] = float32(i)
		case []float64:
			d[i] = float64(i)
		case []int64:
			d[i] = i
		case []int32:
			d[i] = int32(i)
		}
	}
	return out, nil
}

// reduceF64 reduces float64 data over the last axis, the only form the
// folded sampling head uses.
func reduceF64(n *ir.Node, x *ir.Tensor) (*ir.Tensor, error) {
	axes := n.Attrs.Ints("axes")
	rank := len(x.Shape)
	if len(axes) != 1 || (axes[0] != -1 && axes[0] != int64(rank-1)) {
		return nil, fmt.Errorf("float64 reduction over axes %v is not supported, only the last", axes)
	}
	inner := int(x.Shape[rank-1])
	d := x.F64()
	rows := len(d) / max(inner, 1)
	out := make([]float64, rows)
	for r := 0; r < rows; r++ {
		seg := d[r*inner : (r+1)*inner]
		switch n.Op {
		case "reduce_max":
			m := math.Inf(-1)
			for _, v := range seg {
				m = math.Max(m, v)
			}
			out[r] = m
		default:
			s := 0.0
			for _, v := range seg {
				s += v
			}
			if n.Op == "reduce_mean" {
				s /= float64(inner)
			}
			out[r] = s
		}
	}
	shape := append([]int64(nil), x.Shape[:rank-1]...)
	if n.Attrs.Int("keepdims", 1) != 0 {
		shape = append(shape, 1)
	}
	return ir.FromF64(out, shape...), nil
}
