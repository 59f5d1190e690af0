package ir

import (
	"fmt"
	"strconv"
	"strings"
)

// Dim is one dimension of a shape: a fixed size, or a symbolic name such as
// "batch" or "seq" whose size is only known when the graph runs. A Dim with
// a non-empty Sym ignores Size.
type Dim struct {
	Size int64
	Sym  string
}

// D returns a fixed dimension.
func D(n int64) Dim { return Dim{Size: n} }

// S returns a symbolic dimension.
func S(name string) Dim { return Dim{Sym: name} }

// IsStatic reports whether the dimension has a fixed size.
func (d Dim) IsStatic() bool { return d.Sym == "" }

// String prints the size, or the symbol.
func (d Dim) String() string {
	if d.Sym != "" {
		return d.Sym
	}
	return strconv.FormatInt(d.Size, 10)
}

// SumDim returns the dimension of a concatenation of the given ones. With
// all sizes fixed it is their sum. Otherwise it is a symbol named after
// the parts, symbols first in order, then the fixed total: "block_plus_320"
// for 320 and block. Two concatenations of the same parts get the same
// symbol, so a graph input can be declared with the size a concat makes.
func SumDim(dims ...Dim) Dim {
	var syms []string
	total := int64(0)
	for _, d := range dims {
		if d.IsStatic() {
			total += d.Size
		} else {
			syms = append(syms, d.Sym)
		}
	}
	if len(syms) == 0 {
		return D(total)
	}
	if total > 0 {
		syms = append(syms, strconv.FormatInt(total, 10))
	}
	return S(strings.Join(syms, "_plus_"))
}

// Shape is an ordered list of dimensions; a scalar has none.
type Shape []Dim

// Static builds a fully static shape.
func Static(dims ...int64) Shape {
	s := make(Shape, len(dims))
	for i, d := range dims {
		s[i] = D(d)
	}
	return s
}

// Rank returns the number of dimensions.
func (s Shape) Rank() int { return len(s) }

// IsStatic reports whether every dimension has a fixed size.
func (s Shape) IsStatic() bool {
	for _, d := range s {
		if !d.IsStatic() {
			return false
		}
	}
	return true
}

// Sizes returns the fixed sizes, with -1 for symbolic dimensions.
func (s Shape) Sizes() []int64 {
	out := make([]int64, len(s))
	for i, d := range s {
		if d.IsStatic() {
			out[i] = d.Size
		} else {
			out[i] = -1
		}
	}
	return out
}

// NumElements returns the element count of a static shape, or -1.
func (s Shape) NumElements() int64 {
	n := int64(1)
	for _, d := range s {
		if !d.IsStatic() {
			return -1
		}
		n *= d.Size
	}
	return n
}

// Equal compares two shapes dimension by dimension.
func (s Shape) Equal(o Shape) bool {
	if len(s) != len(o) {
		return false
	}
	for i := range s {
		if s[i] != o[i] {
			return false
		}
	}
	return true
}

// Clone returns a copy that can be modified freely.
func (s Shape) Clone() Shape { return append(Shape(nil), s...) }

// String prints the shape as "[batch,seq,64]".
func (s Shape) String() string {
	parts := make([]string, len(s))
	for i, d := range s {
		parts[i] = d.String()
	}
	return "[" + strings.Join(parts, ",") + "]"
}

// Resolve binds the symbolic dimensions to sizes; it fails when a symbol
// has no binding.
func (s Shape) Resolve(bind map[string]int64) ([]int64, error) {
	out := make([]int64, len(s))
	for i, d := range s {
		if d.IsStatic() {
			out[i] = d.Size
			continue
		}
		v, ok := bind[d.Sym]
		if !ok {
			return nil, fmt.Errorf("symbolic dimension %q has no size", d.Sym)
		}
		out[i] = v
	}
	return out, nil
}

// Type is the type of a value: element type and shape.
type Type struct {
	DType DType
	Shape Shape
}

// T builds a Type.
func T(dt DType, shape Shape) Type { return Type{DType: dt, Shape: shape} }

// String prints the type as "f32[batch,seq,64]".
func (t Type) String() string { return t.DType.String() + t.Shape.String() }

// Equal compares element type and shape.
func (t Type) Equal(o Type) bool { return t.DType == o.DType && t.Shape.Equal(o.Shape) }
