package ir

import (
	"fmt"
	"math"
)

// Tensor is a dense host tensor in row-major order. Data holds a typed
// slice whose element type follows DType:
//
//	F32 []float32, F64 []float64, I64 []int64, I32 []int32, Bool []bool,
//	F16 and BF16 []uint16 (the raw bit patterns).
//
// Tensors cross package boundaries between the frontend (inputs read from
// files), the backends and the samplers.
type Tensor struct {
	DType DType
	Shape []int64
	Data  any
}

// NumElements returns the product of the dimensions (1 for a scalar).
func NumElements(shape []int64) int64 {
	n := int64(1)
	for _, d := range shape {
		n *= d
	}
	return n
}

// NewTensor allocates a zero tensor of the given type and shape.
func NewTensor(dt DType, shape ...int64) *Tensor {
	n := NumElements(shape)
	t := &Tensor{DType: dt, Shape: append([]int64(nil), shape...)}
	switch dt {
	case F32:
		t.Data = make([]float32, n)
	case F64:
		t.Data = make([]float64, n)
	case I64:
		t.Data = make([]int64, n)
	case I32:
		t.Data = make([]int32, n)
	case Bool:
		t.Data = make([]bool, n)
	case F16, BF16:
		t.Data = make([]uint16, n)
	default:
		panic(fmt.Sprintf("ir.NewTensor: invalid dtype %v", dt))
	}
	return t
}

// FromF32 wraps data as an F32 tensor; it panics if the sizes disagree.
func FromF32(data []float32, shape ...int64) *Tensor {
	mustLen(len(data), shape)
	return &Tensor{DType: F32, Shape: append([]int64(nil), shape...), Data: data}
}

// FromI64 wraps data as an I64 tensor; it panics if the sizes disagree.
func FromI64(data []int64, shape ...int64) *Tensor {
	mustLen(len(data), shape)
	return &Tensor{DType: I64, Shape: append([]int64(nil), shape...), Data: data}
}

// FromF64 wraps data as an F64 tensor; it panics if the sizes disagree.
func FromF64(data []float64, shape ...int64) *Tensor {
	mustLen(len(data), shape)
	return &Tensor{DType: F64, Shape: append([]int64(nil), shape...), Data: data}
}

func mustLen(n int, shape []int64) {
	if int64(n) != NumElements(shape) {
		panic(fmt.Sprintf("ir: %d elements do not fill shape %v", n, shape))
	}
}

// Len returns the number of elements.
func (t *Tensor) Len() int { return int(NumElements(t.Shape)) }

// F32 returns the data of an F32 tensor; it panics for other types.
func (t *Tensor) F32() []float32 { return t.Data.([]float32) }

// F64 returns the data of an F64 tensor; it panics for other types.
func (t *Tensor) F64() []float64 { return t.Data.([]float64) }

// I64 returns the data of an I64 tensor; it panics for other types.
func (t *Tensor) I64() []int64 { return t.Data.([]int64) }

// I32 returns the data of an I32 tensor; it panics for other types.
func (t *Tensor) I32() []int32 { return t.Data.([]int32) }

// Bools returns the data of a Bool tensor; it panics for other types.
func (t *Tensor) Bools() []bool { return t.Data.([]bool) }

// U16 returns the raw bits of an F16 or BF16 tensor; it panics for other types.
func (t *Tensor) U16() []uint16 { return t.Data.([]uint16) }

// AsF32 returns the values converted to float32 (a copy unless the tensor is
// already F32). Integer and bool tensors convert by value.
func (t *Tensor) AsF32() []float32 {
	switch d := t.Data.(type) {
	case []float32:
		return d
	case []float64:
		out := make([]float32, len(d))
		for i, v := range d {
			out[i] = float32(v)
		}
		return out
	case []int64:
		out := make([]float32, len(d))
		for i, v := range d {
			out[i] = float32(v)
		}
		return out
	case []int32:
		out := make([]float32, len(d))
		for i, v := range d {
			out[i] = float32(v)
		}
		return out
	case []bool:
		out := make([]float32, len(d))
		for i, v := range d {
			if v {
				out[i] = 1
			}
		}
		return out
	case []uint16:
		out := make([]float32, len(d))
		if t.DType == BF16 {
			for i, v := range d {
				out[i] = BF16ToF32(v)
			}
		} else {
			for i, v := range d {
				out[i] = F16ToF32(v)
			}
		}
		return out
	}
	panic(fmt.Sprintf("ir.Tensor: unsupported data %T", t.Data))
}

// BF16ToF32 widens a bfloat16 bit pattern exactly.
func BF16ToF32(b uint16) float32 { return math.Float32frombits(uint32(b) << 16) }

// F32ToBF16 rounds to the nearest bfloat16, ties to even, as PyTorch does.
func F32ToBF16(f float32) uint16 {
	bits := math.Float32bits(f)
	if f != f { // NaN: keep it quiet and NaN.
		return uint16(bits>>16) | 0x40
	}
	rounding := uint32(0x7fff) + (bits>>16)&1
	return uint16((bits + rounding) >> 16)
}

// F16ToF32 widens an IEEE half-precision bit pattern exactly.
func F16ToF32(h uint16) float32 {
	sign := uint32(h>>15) << 31
	exp := uint32(h>>10) & 0x1f
	mant := uint32(h) & 0x3ff
	switch {
	case exp == 0 && mant == 0:
		return math.Float32frombits(sign)
	case exp == 0: // subnormal: normalise.
		e := uint32(127 - 15 + 1)
		for mant&0x400 == 0 {
			mant <<= 1
			e--
		}
		mant &= 0x3ff
		return math.Float32frombits(sign | e<<23 | mant<<13)
	case exp == 0x1f:
		return math.Float32frombits(sign | 0xff<<23 | mant<<13)
	}
	return math.Float32frombits(sign | (exp+127-15)<<23 | mant<<13)
}

// F32ToF16 rounds to the nearest half-precision value, ties to even.
// Values beyond the float16 range become infinities; callers that must not
// overflow check with math.Abs(v) > 65504 first.
func F32ToF16(f float32) uint16 {
	bits := math.Float32bits(f)
	sign := uint16(bits>>16) & 0x8000
	exp := int32(bits>>23&0xff) - 127 + 15
	mant := bits & 0x7fffff
	if bits&0x7fffffff > 0x7f800000 { // NaN
		return sign | 0x7e00
	}
	if exp >= 0x1f {
		return sign | 0x7c00
	}
	if exp <= 0 {
		if exp < -10 {
			return sign
		}
		mant |= 0x800000
		shift := uint32(14 - exp)
		half := uint32(1) << (shift - 1)
		rem := mant & (1<<shift - 1)
		out := mant >> shift
		if rem > half || (rem == half && out&1 == 1) {
			out++
		}
		return sign | uint16(out)
	}
	out := uint32(exp)<<10 | mant>>13
	rem := mant & 0x1fff
	if rem > 0x1000 || (rem == 0x1000 && out&1 == 1) {
		out++
	}
	return sign | uint16(out)
}
