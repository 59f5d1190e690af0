package ir

import (
	"encoding/binary"
	"fmt"
	"math"
)

// TensorBytes returns the raw little-endian bytes of a tensor's data, as
// safetensors and ONNX raw_data store them. Bool is one byte per element.
func TensorBytes(t *Tensor) []byte {
	n := t.Len()
	out := make([]byte, n*t.DType.Size())
	switch d := t.Data.(type) {
	case []float32:
		for i, v := range d {
			binary.LittleEndian.PutUint32(out[4*i:], math.Float32bits(v))
		}
	case []float64:
		for i, v := range d {
			binary.LittleEndian.PutUint64(out[8*i:], math.Float64bits(v))
		}
	case []int64:
		for i, v := range d {
			binary.LittleEndian.PutUint64(out[8*i:], uint64(v))
		}
	case []int32:
		for i, v := range d {
			binary.LittleEndian.PutUint32(out[4*i:], uint32(v))
		}
	case []uint16:
		for i, v := range d {
			binary.LittleEndian.PutUint16(out[2*i:], v)
		}
	case []bool:
		for i, v := range d {
			if v {
				out[i] = 1
			}
		}
	default:
		panic(fmt.Sprintf("ir.TensorBytes: unsupported data %T", t.Data))
	}
	return out
}

// TensorFromBytes decodes raw little-endian bytes into a tensor.
func TensorFromBytes(dt DType, shape []int64, raw []byte) (*Tensor, error) {
	n := NumElements(shape)
	if int64(len(raw)) != n*int64(dt.Size()) {
		return nil, fmt.Errorf("%d bytes do not hold %v%v (%d bytes)", len(raw), dt, shape, n*int64(dt.Size()))
	}
	t := NewTensor(dt, shape...)
	switch d := t.Data.(type) {
	case []float32:
		for i := range d {
			d[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
		}
	case []float64:
		for i := range d {
			d[i] = math.Float64frombits(binary.LittleEndian.Uint64(raw[8*i:]))
		}
	case []int64:
		for i := range d {
			d[i] = int64(binary.LittleEndian.Uint64(raw[8*i:]))
		}
	case []int32:
		for i := range d {
			d[i] = int32(binary.LittleEndian.Uint32(raw[4*i:]))
		}
	case []uint16:
		for i := range d {
			d[i] = binary.LittleEndian.Uint16(raw[2*i:])
		}
	case []bool:
		for i := range d {
			d[i] = raw[i] != 0
		}
	}
	return t, nil
}

// DecodeF32 converts raw little-endian F32, F16 or BF16 bytes to float32.
func DecodeF32(dt DType, raw []byte) ([]float32, error) {
	switch dt {
	case F32:
		out := make([]float32, len(raw)/4)
		for i := range out {
			out[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
		}
		return out, nil
	case BF16:
		out := make([]float32, len(raw)/2)
		for i := range out {
			out[i] = BF16ToF32(binary.LittleEndian.Uint16(raw[2*i:]))
		}
		return out, nil
	case F16:
		out := make([]float32, len(raw)/2)
		for i := range out {
			out[i] = F16ToF32(binary.LittleEndian.Uint16(raw[2*i:]))
		}
		return out, nil
	}
	return nil, fmt.Errorf("cannot decode %v as float32", dt)
}
