package interp

import (
	"fmt"
	"math"

	"github.com/mmadac/mmadac/ir"
)

func init() {
	unaryF32 := map[string]func(float32) float32{
		"neg":        func(x float32) float32 { return -x },
		"exp":        func(x float32) float32 { return float32(math.Exp(float64(x))) },
		"log":        func(x float32) float32 { return float32(math.Log(float64(x))) },
		"sqrt":       func(x float32) float32 { return float32(math.Sqrt(float64(x))) },
		"rsqrt":      func(x float32) float32 { return float32(1 / math.Sqrt(float64(x))) },
		"reciprocal": func(x float32) float32 { return 1 / x },
		"sigmoid":    func(x float32) float32 { return float32(1 / (1 + math.Exp(-float64(x)))) },
		"silu":       func(x float32) float32 { return x * float32(1/(1+math.Exp(-float64(x)))) },
		"tanh":       func(x float32) float32 { return float32(math.Tanh(float64(x))) },
		"sin":        func(x float32) float32 { return float32(math.Sin(float64(x))) },
		"cos":        func(x float32) float32 { return float32(math.Cos(float64(x))) },
		"abs":        func(x float32) float32 { return float32(math.Abs(float64(x))) },
	}
	unaryF64 := map[string]func(float64) float64{
		"neg":        func(x float64) float64 { return -x },
		"exp":        math.Exp,
		"log":        math.Log,
		"sqrt":       math.Sqrt,
		"rsqrt":      func(x float64) float64 { return 1 / math.Sqrt(x) },
		"reciprocal": func(x float64) float64 { return 1 / x },
		"sigmoid":    func(x float64) float64 { return 1 / (1 + math.Exp(-x)) },
		"silu":       func(x float64) float64 { return x / (1 + math.Exp(-x)) },
		"tanh":       math.Tanh,
		"sin":        math.Sin,
		"cos":        math.Cos,
		"abs":        math.Abs,
	}
	for name, f32 := range unaryF32 {
		f32, f64 := f32, unaryF64[name]
		name := name
		kernels[name] = func(n *ir.Node, a []*ir.Tensor) (*ir.Tensor, error) {
			x := a[0]
			switch d := x.Data.(type) {
			case []float32:
				out := make([]float32, len(d))
				parallelFor(len(d), 1<<14, func(lo, hi int) {
					for i := lo; i < hi; i++ {
						out[i] = f32(d[i])
					}
				})
				return &ir.Tensor{DType: ir.F32, Shape: x.Shape, Data: out}, nil
			case []float64:
				out := make([]float64, len(d))
				for i, v := range d {
					out[i] = f64(v)
				}
				return &ir.Tensor{DType: ir.F64, Shape: x.Shape, Data: out}, nil
			case []int64:
				if name == "neg" || name == "abs" {
					out := make([]int64, len(d))
					for i, v := range d {
						out[i] = int64(f64(float64(v)))
					}
					return &ir.Tensor{DType: ir.I64, Shape: x.Shape, Data: out}, nil
				}
			}
			return nil, fmt.Errorf("unsupported dtype %v", x.DType)
		}
	}
	kernels["not"] = func(n *ir.Node, a []*ir.Tensor) (*ir.Tensor, error) {
		d := a[0].Bools()
		out := make([]bool, len(d))
		for i, v := range d {
			out[i] = !v
		}
		return &ir.Tensor{DType: ir.Bool, Shape: a[0].Shape, Data: out}, nil
	}

	arith := []string{"add", "sub", "mul", "div", "pow", "max", "min"}
	for _, name := range arith {
		name := name
		kernels[name] = func(n *ir.Node, a []*ir.Tensor) (*ir.Tensor, error) {
			switch a[0].DType {
			case ir.F32:
				return broadcast2(a[0], a[1], ir.F32, arithF32(name))
			case ir.F64:
				return broadcast2(a[0], a[1], ir.F64, arithF64(name))
			case ir.I64:
				return broadcast2(a[0], a[1], ir.I64, arithI64(name))
			}
			return nil, fmt.Errorf("unsupported dtype %v", a[0].DType)
		}
	}
	for _, name := range []string{"equal", "less", "greater"} {
		name := name
		kernels[name] = func(n *ir.Node, a []*ir.Tensor) (*ir.Tensor, error) {
			switch a[0].DType {
			case ir.F32:
				return broadcast2(a[0], a[1], ir.Bool, compare[float32](name))
			case ir.F64:
				return broadcast2(a[0], a[1], ir.Bool, compare[float64](name))
			case ir.I64:
				return broadcast2(a[0], a[1], ir.Bool, compare[int64](name))
			case ir.Bool:
				if name == "equal" {
					return broadcast2(a[0], a[1], ir.Bool, func(x, y bool) bool { return x == y })
				}
			}
			return nil, fmt.Errorf("unsupported dtype %v", a[0].DType)
		}
	}
	kernels["and"] = func(n *ir.Node, a []*ir.Tensor) (*ir.Tensor, error) {
		return broadcast2(a[0], a[1], ir.Bool, func(x, y bool) bool { return x && y })
	}
	kernels["or"] = func(n *ir.Node, a []*ir.Tensor) (*ir.Tensor, error) {
		return broadcast2(a[0], a[1], ir.Bool, func(x, y bool) bool { return x || y })
	}
	kernels["where"] = kernelWhere
	kernels["cast"] = kernelCast
}

func arithF32(name string) func(x, y float32) float32 {
	switch name {
	case "add":
		return func(x, y float32) float32 { return x + y }
	case "sub":
		return func(x, y float32) float32 { return x - y }
	case "mul":
		return func(x, y float32) float32 { return x * y }
	case "div":
		return func(x, y float32) float32 { return x / y }
	case "pow":
		return func(x, y float32) float32 { return float32(math.Pow(float64(x), float64(y))) }
	case "max":
		return func(x, y float32) float32 { return float32(math.Max(float64(x), float64(y))) }
	case "min":
		return func(x, y float32) float32 { return float32(math.Min(float64(x), float64(y))) }
	}
	panic("unknown arithmetic op " + name)
}

func arithF64(name string) func(x, y float64) float64 {
	switch name {
	case "add":
		return func(x, y float64) float64 { return x + y }
	case "sub":
		return func(x, y float64) float64 { return x - y }
	case "mul":
		return func(x, y float64) float64 { return x * y }
	case "div":
		return func(x, y float64) float64 { return x / y }
	case "pow":
		return math.Pow
	case "max":
		return math.Max
	case "min":
		return math.Min
	}
	panic("unknown arithmetic op " + name)
}

func arithI64(name string) func(x, y int64) int64 {
	switch name {
	case "add":
		return func(x, y int64) int64 { return x + y }
	case "sub":
		return func(x, y int64) int64 { return x - y }
	case "mul":
		return func(x, y int64) int64 { return x * y }
	case "div":
		return func(x, y int64) int64 { return x / y }
	case "pow":
		return func(x, y int64) int64 { return int64(math.Pow(float64(x), float64(y))) }
	case "max":
		return func(x, y int64) int64 { return max(x, y) }
	case "min":
		return func(x, y int64) int64 { return min(x, y) }
	}
	panic("unknown arithmetic op " + name)
}

type ordered interface{ ~float32 | ~float64 | ~int64 }

func compare[T ordered](name string) func(x, y T) bool {
	switch name {
	case "equal":
		return func(x, y T) bool { return x == y }
	case "less":
		return func(x, y T) bool { return x < y }
	case "greater":
		return func(x, y T) bool { return x > y }
	}
	panic("unknown comparison " + name)
}

// broadcastShape applies the NumPy rule to concrete shapes.
func broadcastShape(a, b []int64) ([]int64, error) {
	n := max(len(a), len(b))
	out := make([]int64, n)
	for i := 0; i < n; i++ {
		da, db := int64(1), int64(1)
		if j := len(a) - n + i; j >= 0 {
			da = a[j]
		}
		if j := len(b) - n + i; j >= 0 {
			db = b[j]
		}
		switch {
		case da == db, db == 1:
			out[i] = da
		case da == 1:
			out[i] = db
		default:
			return nil, fmt.Errorf("shapes %v and %v do not broadcast", a, b)
		}
	}
	return out, nil
}

// broadcastStrides returns the element strides of shape inside out, with 0
// on broadcast dimensions.
func broadcastStrides(shape, out []int64) []int64 {
	st := make([]int64, len(out))
	acc := int64(1)
	for i := len(out) - 1; i >= 0; i-- {
		j := len(shape) - len(out) + i
		if j < 0 || shape[j] == 1 {
			st[i] = 0
		} else {
			st[i] = acc
		}
		if j >= 0 {
			acc *= shape[j]
		}
	}
	return st
}

// broadcast2 applies f element-wise with NumPy broadcasting. The inner
// loop walks the last dimension with fixed strides.
func broadcast2[A, R any](a, b *ir.Tensor, dt ir.DType, f func(x, y A) R) (*ir.Tensor, error) {
	ad, bd := a.Data.([]A), b.Data.([]A)
	shape, err := broadcastShape(a.Shape, b.Shape)
	if err != nil {
		return nil, err
	}
	n := int(ir.NumElements(shape))
	out := make([]R, n)
	if equalShape(a.Shape, b.Shape) {
		parallelFor(n, 1<<14, func(lo, hi int) {
			for i := lo; i < hi; i++ {
				out[i] = f(ad[i], bd[i])
			}
		})
		return &ir.Tensor{DType: dt, Shape: shape, Data: out}, nil
	}
	if len(bd) == 1 {
		y := bd[0]
		parallelFor(n, 1<<14, func(lo, hi int) {
			for i := lo; i < hi; i++ {
				out[i] = f(ad[i], y)
			}
		})
		return &ir.Tensor{DType: dt, Shape: shape, Data: out}, nil
	}
	if len(ad) == 1 {
		x := ad[0]
		for i := range out {
			out[i] = f(x, bd[i])
		}
		return &ir.Tensor{DType: dt, Shape: shape, Data: out}, nil
	}
	sa, sb := broadcastStrides(a.Shape, shape), broadcastStrides(b.Shape, shape)
	rank := len(shape)
	if rank == 0 {
		out[0] = f(ad[0], bd[0])
		return &ir.Tensor{DType: dt, Shape: shape, Data: out}, nil
	}
	inner := int(shape[rank-1])
	ia, ib := sa[rank-1], sb[rank-1]
	rows := n / max(inner, 1)
	parallelFor(rows, 64, func(lo, hi int) {
		idx := make([]int64, rank)
		for r := lo; r < hi; r++ {
			// Decompose the row number into the outer indices.
			rem := int64(r)
			offA, offB := int64(0), int64(0)
			for d := rank - 2; d >= 0; d-- {
				idx[d] = rem % shape[d]
				rem /= shape[d]
				offA += idx[d] * sa[d]
				offB += idx[d] * sb[d]
			}
			o := out[r*inner : (r+1)*inner]
			for i := range o {
				o[i] = f(ad[offA+int64(i)*ia], bd[offB+int64(i)*ib])
			}
		}
	})
	return &ir.Tensor{DType: dt, Shape: shape, Data: out}, nil
}

func equalShape(a, b []int64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// expand materialises a broadcast of t to shape.
func expand[T any](t *ir.Tensor, shape []int64) []T {
	d := t.Data.([]T)
	n := int(ir.NumElements(shape))
	if equalShape(t.Shape, shape) {
		return d
	}
	out := make([]T, n)
	st := broadcastStrides(t.Shape, shape)
	idx := make([]int64, len(shape))
	for i := 0; i < n; i++ {
		rem := int64(i)
		off := int64(0)
		for k := len(shape) - 1; k >= 0; k-- {
			idx[k] = rem % shape[k]
			rem /= shape[k]
			off += idx[k] * st[k]
		}
		out[i] = d[off]
	}
	return out
}

func kernelWhere(n *ir.Node, a []*ir.Tensor) (*ir.Tensor, error) {
	shape, err := broadcastShape(a[0].Shape, a[1].Shape)
	if err != nil {
		return nil, err
	}
	if shape, err = broadcastShape(shape, a[2].Shape); err != nil {
		return nil, err
	}
	cond := expand[bool](a[0], shape)
	switch a[1].DType {
	case ir.F32:
		return whereT[float32](cond, a[1], a[2], shape), nil
	case ir.F64:
		return whereT[float64](cond, a[1], a[2], shape), nil
	case ir.I64:
		return whereT[int64](cond, a[1], a[2], shape), nil
	case ir.Bool:
		return whereT[bool](cond, a[1], a[2], shape), nil
	}
	return nil, fmt.Errorf("unsupported dtype %v", a[1].DType)
}

func whereT[T any](cond []bool, x, y *ir.Tensor, shape []int64) *ir.Tensor {
	xd, yd := expand[T](x, shape), expand[T](y, shape)
	out := make([]T, len(cond))
	for i, c := range cond {
		if c {
			out[i] = xd[i]
		} else {
			out[i] = yd[i]
		}
	}
	return &ir.Tensor{DType: x.DType, Shape: shape, Data: out}
}

func kernelCast(n *ir.Node, a []*ir.Tensor) (*ir.Tensor, error) {
	to := n.Attrs.DType("to", ir.InvalidDType)
	x := a[0]
	if x.DType == to {
		return x, nil
	}
	out := ir.NewTensor(to, x.Shape...)
	switch to {
	case ir.F32:
		copy(out.F32(), x.AsF32())
	case ir.F64:
		o := out.F64()
		switch d := x.Data.(type) {
		case []int64:
			for i, v := range d {
				o[i] = float64(v)
			}
		default:
			for i, v := range x.AsF32() {
				o[i] = float64(v)
			}
		}
	case ir.I64:
		o := out.I64()
		switch d := x.Data.(type) {
		case []int32:
			for i, v := range d {
				o[i] = int64(v)
			}
		case []bool:
			for i, v := range d {
				if v {
					o[i] = 1
				}
			}
		case []float64:
			for i, v := range d {
				o[i] = int64(v)
			}
		default:
			for i, v := range x.AsF32() {
				o[i] = int64(v)
			}
		}
	case ir.I32:
		o := out.I32()
		switch d := x.Data.(type) {
		case []int64:
			for i, v := range d {
				o[i] = int32(v)
			}
		default:
			for i, v := range x.AsF32() {
				o[i] = int32(v)
			}
		}
	case ir.Bool:
		o := out.Bools()
		switch d := x.Data.(type) {
		case []int64:
			for i, v := range d {
				o[i] = v != 0
			}
		default:
			for i, v := range x.AsF32() {
				o[i] = v != 0
			}
		}
	case ir.BF16:
		o := out.U16()
		for i, v := range x.AsF32() {
			o[i] = ir.F32ToBF16(v)
		}
	case ir.F16:
		o := out.U16()
		for i, v := range x.AsF32() {
			o[i] = ir.F32ToF16(v)
		}
	default:
		return nil, fmt.Errorf("cast to %v is not supported", to)
	}
	return out, nil
}
