package passes

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"strconv"
	"sync"

	"github.com/mmadac/mmadac/ir"
)

func init() {
	register(&Pass{Name: "legalize-ascend", Required: true, Run: runLegalizeAscend,
		Doc: "make the graph ATC-ready: no fused ops, bfloat16 weights and constants as float16, masking constants float16 can hold"})
}

// AscendMaskValue replaces float constants that float16 cannot hold. The
// only such constants that mmadac's models create are masking biases
// (float32's lowest value), and ATC's default precision mode computes in
// float16, where that bias turns into -Inf. -32768 is exact in float16 and
// bfloat16, exp(-32768) is 0 in both float16 and float32, and it leaves
// room below -65504 for an attention score to be added without overflow.
const AscendMaskValue = -32768

// F16Max is the largest finite float16 value.
const F16Max = 65504

// ErrF16Overflow marks a weight or constant value beyond float16's range.
var ErrF16Overflow = errors.New("value beyond float16's range (±65504)")

// runLegalizeAscend rewrites a graph, after decompose-fused, so that the
// ONNX emitted from it uses no type or constant that ATC rejects or
// float16 cannot represent:
//
//   - a fused op left over is an error (decompose-fused must lower it);
//   - bfloat16 parameters become float16 parameters whose data is
//     converted when it is read (see ConvertedSource), bfloat16 constants
//     are converted here, and casts to bfloat16 cast to float16 instead;
//   - float constants beyond float16's range are set to ±AscendMaskValue;
//   - a bfloat16 graph input is an error, because the caller feeds it.
//
// Compute stays in the graph's dtypes. The models compute in float32 and
// cast each low-precision weight to float32 where it is read, so softmax,
// the RMSNorm statistics and the sampling head stay in float32; ATC's
// precision mode then decides what the device computes in.
func runLegalizeAscend(g *ir.Graph, c *Context) error {
	for i, n := range g.Nodes {
		switch n.Op {
		case "rms_norm", "swiglu", "rope", "attention":
			return fmt.Errorf("node %d is the fused op %s, which ATC has no ONNX mapping for; run decompose-fused before legalize-ascend", i, n.Op)
		}
	}
	for _, in := range g.Inputs {
		if in.Type.DType == ir.BF16 {
			return fmt.Errorf("graph input %s is bfloat16, which ATC's ONNX parser does not read in CANN 8.0; declare it float16 or float32", in.Name)
		}
	}

	retyped := 0
	for _, p := range g.Params {
		if p.Type.DType == ir.BF16 {
			p.Type.DType = ir.F16
			if p.Source != nil {
				p.Source = NewConvertedSource(p.Name, p.Source, ir.BF16, p.Type.Shape.NumElements())
			}
			retyped++
		}
	}
	for _, v := range g.Consts {
		if v.Const == nil || v.Type.DType != ir.BF16 {
			continue
		}
		if _, opaque := v.Const.Data.(ir.OpaqueData); opaque {
			v.Type.DType = ir.F16
			v.Const = &ir.Tensor{DType: ir.F16, Shape: v.Const.Shape, Data: v.Const.Data}
			retyped++
			continue
		}
		data, err := bf16ToF16(v.Ref(), v.Const.U16())
		if err != nil {
			return err
		}
		v.Type.DType = ir.F16
		v.Const = &ir.Tensor{DType: ir.F16, Shape: v.Const.Shape, Data: data}
		retyped++
	}
	for _, n := range g.Nodes {
		if n.Op == "cast" && n.Attrs.DType("to", ir.InvalidDType) == ir.BF16 {
			n.Attrs["to"] = ir.F16
			retyped++
		}
	}
	if retyped > 0 {
		if err := reinferTypes(g); err != nil {
			return err
		}
	}

	clamped := clampMaskConstants(g)
	if clamped > 0 {
		if g.Meta == nil {
			g.Meta = map[string]string{}
		}
		g.Meta["mask_value"] = strconv.Itoa(AscendMaskValue)
	}
	c.count("legalize-ascend.bf16-retyped", retyped)
	c.count("legalize-ascend.mask-clamped", clamped)
	return runDCE(g, c)
}

// reinferTypes recomputes the result types of every node in order, after
// operand dtypes changed. Only dtypes may change: a different shape means a
// rewrite broke an invariant, and it panics.
func reinferTypes(g *ir.Graph) error {
	for i, n := range g.Nodes {
		d, ok := ir.LookupOp(n.Op)
		if !ok {
			return fmt.Errorf("node %d: unknown op %q", i, n.Op)
		}
		types, err := d.CheckAndInfer(n.Inputs, n.Attrs)
		if err != nil {
			return fmt.Errorf("node %d (%s) after converting bfloat16 to float16: %w", i, n.Op, err)
		}
		for j, t := range types {
			if !t.Shape.Equal(n.Outputs[j].Type.Shape) {
				panic(fmt.Sprintf("node %d (%s): retyping changed result %d from %v to %v", i, n.Op, j, n.Outputs[j].Type, t))
			}
			n.Outputs[j].Type = t
		}
	}
	return nil
}

// clampMaskConstants sets every element of a float constant whose
// magnitude float16 cannot hold (beyond ±65504, infinities included) to
// ±AscendMaskValue and returns the number of constants changed.
func clampMaskConstants(g *ir.Graph) int {
	changed := 0
	for _, v := range g.Consts {
		if v.Const == nil {
			continue
		}
		n := 0
		switch d := v.Const.Data.(type) {
		case []float32:
			for i, x := range d {
				if math.Abs(float64(x)) > F16Max {
					d[i] = float32(math.Copysign(-AscendMaskValue, float64(x)))
					n++
				}
			}
		case []float64:
			for i, x := range d {
				if math.Abs(x) > F16Max {
					d[i] = math.Copysign(-AscendMaskValue, x)
					n++
				}
			}
		}
		if n > 0 {
			slog.Debug("legalize-ascend: masking constant clamped", "const", v.Ref(), "elements", n, "value", AscendMaskValue)
			changed++
		}
	}
	return changed
}

// ConvertWeightsToF16 stores every float32 parameter of g as float16 and
// inserts a cast back to float32 in front of its readers, so the graph
// computes exactly as before on weights rounded to float16. It returns the
// number of parameters converted. The data is converted when it is read;
// a value beyond float16's range fails that read with ErrF16Overflow.
func ConvertWeightsToF16(g *ir.Graph) int {
	var casts []*ir.Node
	converted := 0
	for _, p := range g.Params {
		if p.Type.DType != ir.F32 {
			continue
		}
		wide := &ir.Value{ID: g.NewID(), Type: p.Type, Kind: ir.KindResult}
		replaceUses(g, p, wide)
		p.Type.DType = ir.F16
		if p.Source != nil {
			p.Source = NewConvertedSource(p.Name, p.Source, ir.F32, p.Type.Shape.NumElements())
		}
		n := &ir.Node{Op: "cast", Inputs: []*ir.Value{p}, Outputs: []*ir.Value{wide}, Attrs: ir.Attrs{"to": ir.F32}}
		wide.Def = n
		casts = append(casts, n)
		converted++
	}
	g.Nodes = append(casts, g.Nodes...)
	return converted
}

// ConvertedSource presents a bfloat16 or float32 weight as float16 data.
// It converts on every read and keeps nothing, so a build that streams
// weights to files never holds more than one chunk of a tensor.
type ConvertedSource struct {
	name  string
	src   ir.WeightSource
	from  ir.DType
	count int64
}

// NewConvertedSource wraps src, which holds count elements of dtype from
// (BF16 or F32), as float16 data. name is the tensor name that errors
// report.
func NewConvertedSource(name string, src ir.WeightSource, from ir.DType, count int64) *ConvertedSource {
	if from != ir.BF16 && from != ir.F32 {
		panic(fmt.Sprintf("passes: cannot convert %v weights to float16", from))
	}
	return &ConvertedSource{name: name, src: src, from: from, count: count}
}

// Location returns an empty file name and the float16 size: converted data
// exists in no file, so it cannot be linked in place and must be read with
// Bytes or WriteTo.
func (s *ConvertedSource) Location() (string, int64, int64) {
	return "", 0, 2 * s.count
}

// Bytes returns the whole tensor as little-endian float16.
func (s *ConvertedSource) Bytes() ([]byte, error) {
	raw, err := s.src.Bytes()
	if err != nil {
		return nil, err
	}
	if int64(len(raw)) != s.count*int64(s.from.Size()) {
		return nil, fmt.Errorf("tensor %s: the source has %d bytes, but %d %v elements need %d", s.name, len(raw), s.count, s.from, s.count*int64(s.from.Size()))
	}
	out := make([]byte, 2*s.count)
	if _, err := convertChunk(s.name, out, raw, s.from, 0); err != nil {
		return nil, err
	}
	return out, nil
}

// convertChunkElems is the number of elements WriteTo converts at a time.
const convertChunkElems = 1 << 20

// WriteTo streams the float16 data to w in chunks of a million elements
// and returns the number of bytes written. When the source names a file it
// reads that file chunk by chunk instead of mapping the whole tensor, so an
// 8B checkpoint passes through the page cache without staying resident.
func (s *ConvertedSource) WriteTo(w io.Writer) (int64, error) {
	width := int64(s.from.Size())
	in, closeIn, err := s.open()
	if err != nil {
		return 0, err
	}
	defer closeIn()
	if in.Size() != s.count*width {
		return 0, fmt.Errorf("tensor %s: the source has %d bytes, but %d %v elements need %d", s.name, in.Size(), s.count, s.from, s.count*width)
	}

	buf := make([]byte, 2*min(s.count, convertChunkElems))
	raw := make([]byte, width*min(s.count, convertChunkElems))
	var written int64
	flushed := 0
	for start := int64(0); start < s.count; start += convertChunkElems {
		end := min(start+convertChunkElems, s.count)
		out := buf[:2*(end-start)]
		chunk := raw[:width*(end-start)]
		if _, err := in.ReadAt(chunk, start*width); err != nil {
			return written, fmt.Errorf("reading tensor %s: %w", s.name, err)
		}
		lost, err := convertChunk(s.name, out, chunk, s.from, start)
		if err != nil {
			return written, err
		}
		flushed += lost
		n, err := w.Write(out)
		written += int64(n)
		if err != nil {
			return written, fmt.Errorf("writing tensor %s: %w", s.name, err)
		}
	}
	if flushed > 0 {
		slog.Warn("float16 conversion flushed small weights to zero", "tensor", s.name, "elements", flushed, "of", s.count)
	}
	return written, nil
}

// open returns a reader over the source data: a section of the source's
// file when it names one, else the bytes from Bytes.
func (s *ConvertedSource) open() (*io.SectionReader, func(), error) {
	if file, off, size := s.src.Location(); file != "" {
		f, err := os.Open(file)
		if err != nil {
			return nil, nil, fmt.Errorf("tensor %s: %w", s.name, err)
		}
		return io.NewSectionReader(f, off, size), func() { f.Close() }, nil
	}
	raw, err := s.src.Bytes()
	if err != nil {
		return nil, nil, err
	}
	return io.NewSectionReader(bytes.NewReader(raw), 0, int64(len(raw))), func() {}, nil
}

// convertChunk converts the elements in raw (dtype from) to float16 in out
// and returns how many non-zero values became zero. first is the index of
// raw's first element in the tensor, for error messages.
func convertChunk(name string, out, raw []byte, from ir.DType, first int64) (int, error) {
	lost := 0
	switch from {
	case ir.BF16:
		table := bf16ToF16Table()
		for i := 0; i < len(raw)/2; i++ {
			b := uint16(raw[2*i]) | uint16(raw[2*i+1])<<8
			h := table[b]
			if h == f16OverflowMark {
				return lost, fmt.Errorf("tensor %s: element %d is %g: %w; convert the checkpoint to float32 (bfloat16 widens exactly) and build with float32 weights",
					name, first+int64(i), ir.BF16ToF32(b), ErrF16Overflow)
			}
			if h&0x7fff == 0 && b&0x7fff != 0 {
				lost++
			}
			out[2*i], out[2*i+1] = byte(h), byte(h>>8)
		}
	case ir.F32:
		for i := 0; i < len(raw)/4; i++ {
			bits := uint32(raw[4*i]) | uint32(raw[4*i+1])<<8 | uint32(raw[4*i+2])<<16 | uint32(raw[4*i+3])<<24
			f := math.Float32frombits(bits)
			h := ir.F32ToF16(f)
			if h&0x7c00 == 0x7c00 && h&0x3ff == 0 && !math.IsInf(float64(f), 0) {
				return lost, fmt.Errorf("tensor %s: element %d is %g: %w; build with float32 weights", name, first+int64(i), f, ErrF16Overflow)
			}
			if h&0x7fff == 0 && bits&0x7fffffff != 0 {
				lost++
			}
			out[2*i], out[2*i+1] = byte(h), byte(h>>8)
		}
	}
	return lost, nil
}

// f16OverflowMark flags, in the bfloat16 table, a finite value that rounds
// beyond float16's range. It is a NaN pattern that the table never
// produces for a real NaN, which maps to 0x7e00.
const f16OverflowMark = 0x7fff

var (
	bf16TableOnce sync.Once
	bf16Table     []uint16
)

// bf16ToF16Table maps every bfloat16 bit pattern to its float16 rounding,
// so converting an 8B checkpoint costs a table lookup per element.
func bf16ToF16Table() []uint16 {
	bf16TableOnce.Do(func() {
		bf16Table = make([]uint16, 1<<16)
		for b := range bf16Table {
			f := ir.BF16ToF32(uint16(b))
			h := ir.F32ToF16(f)
			if h&0x7fff == 0x7c00 && !math.IsInf(float64(f), 0) {
				h = f16OverflowMark
			}
			bf16Table[b] = h
		}
	})
	return bf16Table
}

// bf16ToF16 converts a bfloat16 constant's data, failing on overflow.
func bf16ToF16(name string, data []uint16) ([]uint16, error) {
	table := bf16ToF16Table()
	out := make([]uint16, len(data))
	for i, b := range data {
		h := table[b]
		if h == f16OverflowMark {
			return nil, fmt.Errorf("constant %s: element %d is %g: %w", name, i, ir.BF16ToF32(b), ErrF16Overflow)
		}
		out[i] = h
	}
	return out, nil
}
