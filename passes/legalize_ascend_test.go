package passes

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/mmadac/mmadac/ir"
	"github.com/mmadac/mmadac/runtime/interp"
)

// memSource is a WeightSource over bytes in memory.
type memSource struct{ data []byte }

func (m memSource) Location() (string, int64, int64) { return "", 0, int64(len(m.data)) }
func (m memSource) Bytes() ([]byte, error)           { return m.data, nil }

func bf16Bytes(vals ...float32) []byte {
	out := make([]byte, 2*len(vals))
	for i, v := range vals {
		binary.LittleEndian.PutUint16(out[2*i:], ir.F32ToBF16(v))
	}
	return out
}

func f32Bytes(vals ...float32) []byte {
	out := make([]byte, 4*len(vals))
	for i, v := range vals {
		binary.LittleEndian.PutUint32(out[4*i:], math.Float32bits(v))
	}
	return out
}

func f16Values(t *testing.T, b []byte) []float32 {
	t.Helper()
	out := make([]float32, len(b)/2)
	for i := range out {
		out[i] = ir.F16ToF32(binary.LittleEndian.Uint16(b[2*i:]))
	}
	return out
}

func TestConvertedSourceBF16IsExact(t *testing.T) {
	// Values inside float16's normal range keep every bfloat16 bit.
	vals := []float32{0, 1, -2.5, 0.0078125, 1000, -60000, 3.1415927}
	src := NewConvertedSource("w", memSource{bf16Bytes(vals...)}, ir.BF16, int64(len(vals)))
	got, err := src.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range f16Values(t, got) {
		want := ir.BF16ToF32(ir.F32ToBF16(vals[i]))
		if v != want {
			t.Errorf("element %d: float16 %g, bfloat16 %g", i, v, want)
		}
	}
	if file, _, size := src.Location(); file != "" || size != int64(2*len(vals)) {
		t.Errorf("Location() = %q, size %d; want no file and %d bytes", file, size, 2*len(vals))
	}
	var buf bytes.Buffer
	n, err := src.WriteTo(&buf)
	if err != nil || n != int64(len(got)) || !bytes.Equal(buf.Bytes(), got) {
		t.Errorf("WriteTo wrote %d bytes (%v) that differ from Bytes", n, err)
	}
}

func TestConvertedSourceOverflowNamesTensor(t *testing.T) {
	for _, tc := range []struct {
		from ir.DType
		data []byte
	}{
		{ir.BF16, bf16Bytes(1, 70000)},
		{ir.F32, f32Bytes(1, -1e6)},
	} {
		src := NewConvertedSource("model.blocks.3.ff_out.weight", memSource{tc.data}, tc.from, 2)
		_, err := src.Bytes()
		if !errors.Is(err, ErrF16Overflow) || !strings.Contains(err.Error(), "model.blocks.3.ff_out.weight: element 1") {
			t.Errorf("%v source: Bytes error %v, want ErrF16Overflow naming the tensor and element 1", tc.from, err)
		}
		if _, err := src.WriteTo(&bytes.Buffer{}); !errors.Is(err, ErrF16Overflow) {
			t.Errorf("%v source: WriteTo error %v, want ErrF16Overflow", tc.from, err)
		}
	}
}

func TestConvertedSourceKeepsInfinityAndRejectsShortData(t *testing.T) {
	src := NewConvertedSource("w", memSource{f32Bytes(float32(math.Inf(-1)))}, ir.F32, 1)
	got, err := src.Bytes()
	if err != nil || !math.IsInf(float64(f16Values(t, got)[0]), -1) {
		t.Errorf("an infinite weight converts to %v, %v; want -Inf", got, err)
	}
	short := NewConvertedSource("w", memSource{f32Bytes(1)}, ir.F32, 2)
	if _, err := short.Bytes(); err == nil || !strings.Contains(err.Error(), "the source has 4 bytes") {
		t.Errorf("short source: %v", err)
	}
}

func TestConvertWeightsToF16(t *testing.T) {
	g := ir.NewGraph("g")
	x := g.Input("x", ir.F32, ir.Static(2, 3))
	wv := []float32{0.5, -1.25, 2, 0.1, 0.2, 0.3}
	w := g.Param("w", ir.F32, ir.Static(3, 2), memSource{f32Bytes(wv...)})
	g.SetOutput("y", g.Op("matmul", nil, x, w))
	want, err := interp.New(g)
	if err != nil {
		t.Fatal(err)
	}
	in := map[string]*ir.Tensor{"x": ir.FromF32([]float32{1, 2, 3, -1, 0, 4}, 2, 3)}
	before, err := want.Run(in)
	if err != nil {
		t.Fatal(err)
	}

	if n := ConvertWeightsToF16(g); n != 1 {
		t.Fatalf("converted %d weights, want 1", n)
	}
	if err := ir.Verify(g); err != nil {
		t.Fatal(err)
	}
	if w.Type.DType != ir.F16 || g.Nodes[0].Op != "cast" || g.Nodes[1].Inputs[1] != g.Nodes[0].Outputs[0] {
		t.Fatalf("want an f16 weight cast to f32 in front of the matmul, got\n%s", g)
	}
	s, err := interp.New(g)
	if err != nil {
		t.Fatal(err)
	}
	after, err := s.Run(in)
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range after["y"].F32() {
		if d := math.Abs(float64(v - before["y"].F32()[i])); d > 1e-3 {
			t.Errorf("output %d: %g after, %g before", i, v, before["y"].F32()[i])
		}
	}
}

func TestLegalizeWrapsBF16Sources(t *testing.T) {
	g := ir.NewGraph("g")
	x := g.Input("x", ir.F32, ir.Static(1, 2))
	w := g.Param("w", ir.BF16, ir.Static(2, 2), memSource{bf16Bytes(1, 2, 3, 4)})
	g.SetOutput("y", g.Op("matmul", nil, x, g.Op("cast", ir.Attrs{"to": ir.F32}, w)))
	c := &Context{}
	if err := Registry["legalize-ascend"].Run(g, c); err != nil {
		t.Fatal(err)
	}
	if _, ok := w.Source.(*ConvertedSource); !ok || w.Type.DType != ir.F16 {
		t.Fatalf("weight is %v with source %T; want f16 with a *ConvertedSource", w.Type, w.Source)
	}
	s, err := interp.New(g)
	if err != nil {
		t.Fatal(err)
	}
	out, err := s.Run(map[string]*ir.Tensor{"x": ir.FromF32([]float32{1, 1}, 1, 2)})
	if err != nil {
		t.Fatal(err)
	}
	if got := out["y"].F32(); got[0] != 4 || got[1] != 6 {
		t.Errorf("y = %v, want [4 6]", got)
	}
}
