package frontend

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/mmadac/mmadac/ir"
)

// The safetensors layout: an 8-byte little-endian header length N, N bytes of
// JSON, then the data section. The JSON maps each tensor name to
// {"dtype", "shape", "data_offsets": [begin, end]}, where the offsets are
// relative to the start of the data section. An optional "__metadata__" entry
// holds string pairs.

// maxHeaderSize bounds the JSON header we are willing to allocate. The
// reference reader uses the same 100 MB limit, far above the roughly 30 KB
// header of an 8B-parameter shard.
const maxHeaderSize = 100_000_000

// metadataKey is the reserved header entry for free-form string metadata.
const metadataKey = "__metadata__"

// TensorInfo describes one stored tensor without its data.
type TensorInfo struct {
	// Name is the tensor name as stored, e.g. "model.transformer.wte.weight".
	Name string
	// DType is the stored element type.
	DType ir.DType
	// Shape is the stored shape; an empty shape is a scalar.
	Shape []int64
	// File is the absolute path of the safetensors file holding the data.
	File string
	// Offset is the absolute byte offset of the data inside File, that is
	// 8 + header length + data_offsets[0].
	Offset int64
	// Size is the data length in bytes, product(Shape) * DType.Size().
	Size int64
}

// FormatError reports a safetensors file or checkpoint index that breaks the
// format or uses an unsupported feature (such as a dtype).
type FormatError struct {
	// File is the path of the offending file.
	File string
	// Tensor is the tensor concerned, or "" when the problem is not about one tensor.
	Tensor string
	// Reason is the problem and, where possible, the remedy.
	Reason string
}

func (e *FormatError) Error() string {
	if e.Tensor == "" {
		return fmt.Sprintf("%s: %s", e.File, e.Reason)
	}
	return fmt.Sprintf("%s: tensor %q: %s", e.File, e.Tensor, e.Reason)
}

// safetensorsDTypes maps the dtype names of the safetensors format to IR
// dtypes. The format defines more (F8_E4M3, U8, I8, ...), which the model
// graphs never use and are rejected with a FormatError.
var safetensorsDTypes = map[string]ir.DType{
	"F32":  ir.F32,
	"F16":  ir.F16,
	"BF16": ir.BF16,
	"F64":  ir.F64,
	"I64":  ir.I64,
	"I32":  ir.I32,
	"BOOL": ir.Bool,
}

// supportedDTypeList is the message fragment naming the accepted dtypes.
const supportedDTypeList = "F32, F16, BF16, F64, I64, I32, BOOL"

// safetensorsName returns the format's name for an IR dtype, or "" when the
// dtype has none.
func safetensorsName(dt ir.DType) string {
	for name, d := range safetensorsDTypes {
		if d == dt {
			return name
		}
	}
	return ""
}

// headerEntry is one tensor entry of the JSON header as stored.
type headerEntry struct {
	DType       *string  `json:"dtype"`
	Shape       *[]int64 `json:"shape"`
	DataOffsets *[]int64 `json:"data_offsets"`
}

// safetensorsFile is one open safetensors file: its parsed header and, once
// the first tensor's bytes are requested, a read-only memory map of the
// whole file. The mutex guards mapped and closed.
type safetensorsFile struct {
	path    string // absolute path
	file    *os.File
	size    int64
	tensors map[string]TensorInfo

	mu     sync.Mutex
	mapped []byte
	closed bool
}

// openSafetensorsFile opens path and parses and validates its header. It
// reads only the header; the data section is mapped on first use.
func openSafetensorsFile(path string) (*safetensorsFile, error) {
	return openSafetensorsFileSkipping(path, nil)
}

// unsupportedDTypeError marks a header entry whose dtype mmadac cannot
// read; lenient readers skip such tensors.
type unsupportedDTypeError struct{ error }

func (e *unsupportedDTypeError) Unwrap() error { return e.error }

// openSafetensorsFileSkipping opens a file; with skipped non-nil, tensors
// of unsupported dtypes are left out and their names appended to it.
func openSafetensorsFileSkipping(path string, skipped *[]string) (*safetensorsFile, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("open safetensors file: %w", err)
	}
	path = abs
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open safetensors file: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("open safetensors file: %w", err)
	}
	tensors, err := readHeader(f, path, st.Size(), skipped)
	if err != nil {
		f.Close()
		return nil, err
	}
	return &safetensorsFile{path: path, file: f, size: st.Size(), tensors: tensors}, nil
}

// readHeader reads and validates the header of a safetensors file of the
// given size. The returned infos have absolute offsets and File set to path.
func readHeader(r io.ReaderAt, path string, size int64, skipped *[]string) (map[string]TensorInfo, error) {
	bad := func(format string, args ...any) error {
		return &FormatError{File: path, Reason: fmt.Sprintf(format, args...)}
	}
	if size < 8 {
		return nil, bad("file is %d bytes, shorter than the 8-byte header length; the file is truncated or not a safetensors file", size)
	}
	var lenBuf [8]byte
	if _, err := r.ReadAt(lenBuf[:], 0); err != nil {
		return nil, fmt.Errorf("read header length of %s: %w", path, err)
	}
	headerLen := binary.LittleEndian.Uint64(lenBuf[:])
	if headerLen > uint64(size-8) {
		return nil, bad("header length %d exceeds the %d bytes after the length field; the file is truncated or not a safetensors file", headerLen, size-8)
	}
	if headerLen > maxHeaderSize {
		return nil, bad("header length %d exceeds the limit of %d bytes", headerLen, maxHeaderSize)
	}
	header := make([]byte, headerLen)
	if _, err := r.ReadAt(header, 8); err != nil {
		return nil, fmt.Errorf("read header of %s: %w", path, err)
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(header, &raw); err != nil {
		return nil, bad("header is not a JSON object: %v", err)
	}

	dataStart := 8 + int64(headerLen)
	dataLen := size - dataStart
	tensors := make(map[string]TensorInfo, len(raw))
	for name, msg := range raw {
		if name == metadataKey {
			continue
		}
		info, err := parseEntry(path, name, msg, dataStart, dataLen)
		var unsupported *unsupportedDTypeError
		if skipped != nil && errors.As(err, &unsupported) {
			*skipped = append(*skipped, name)
			continue
		}
		if err != nil {
			return nil, err
		}
		tensors[name] = info
	}
	if err := checkOverlaps(path, tensors); err != nil {
		return nil, err
	}
	return tensors, nil
}

// parseEntry validates one header entry against the data section
// [dataStart, dataStart+dataLen) of the file.
func parseEntry(path, name string, msg json.RawMessage, dataStart, dataLen int64) (TensorInfo, error) {
	bad := func(format string, args ...any) error {
		return &FormatError{File: path, Tensor: name, Reason: fmt.Sprintf(format, args...)}
	}
	var e headerEntry
	if err := json.Unmarshal(msg, &e); err != nil {
		return TensorInfo{}, bad("header entry is not an object with dtype, shape and data_offsets: %v", err)
	}
	switch {
	case e.DType == nil:
		return TensorInfo{}, bad("header entry has no dtype")
	case e.Shape == nil:
		return TensorInfo{}, bad("header entry has no shape")
	case e.DataOffsets == nil:
		return TensorInfo{}, bad("header entry has no data_offsets")
	}

	dt, ok := safetensorsDTypes[*e.DType]
	if !ok {
		return TensorInfo{}, &unsupportedDTypeError{bad("dtype %q is not supported (supported: %s); convert the checkpoint", *e.DType, supportedDTypeList)}
	}
	shape := *e.Shape
	numel, err := checkedNumElements(shape)
	if err != nil {
		return TensorInfo{}, bad("shape %v: %v", shape, err)
	}

	offsets := *e.DataOffsets
	if len(offsets) != 2 {
		return TensorInfo{}, bad("data_offsets %v must have 2 entries [begin, end]", offsets)
	}
	begin, end := offsets[0], offsets[1]
	if begin < 0 || begin > end {
		return TensorInfo{}, bad("data_offsets [%d, %d]: begin must be between 0 and end", begin, end)
	}
	if end > dataLen {
		return TensorInfo{}, bad("data_offsets [%d, %d] reach beyond the data section of %d bytes; the file is truncated", begin, end, dataLen)
	}
	size := end - begin
	if numel > math.MaxInt64/int64(dt.Size()) || numel*int64(dt.Size()) != size {
		return TensorInfo{}, bad("data_offsets [%d, %d] span %d bytes, but shape %v of %s needs %d elements of %d bytes",
			begin, end, size, shape, *e.DType, numel, dt.Size())
	}
	return TensorInfo{
		Name:   name,
		DType:  dt,
		Shape:  shape,
		File:   path,
		Offset: dataStart + begin,
		Size:   size,
	}, nil
}

// checkedNumElements returns the product of shape, rejecting negative
// dimensions and products that overflow int64.
func checkedNumElements(shape []int64) (int64, error) {
	n := int64(1)
	for _, d := range shape {
		if d < 0 {
			return 0, fmt.Errorf("dimension %d is negative", d)
		}
		if d != 0 && n > math.MaxInt64/d {
			return 0, fmt.Errorf("element count overflows int64")
		}
		n *= d
	}
	return n, nil
}

// checkOverlaps rejects tensors whose byte ranges intersect. Empty tensors
// occupy no bytes and never overlap.
func checkOverlaps(path string, tensors map[string]TensorInfo) error {
	infos := slices.Collect(maps.Values(tensors))
	sort.Slice(infos, func(i, j int) bool {
		if infos[i].Offset != infos[j].Offset {
			return infos[i].Offset < infos[j].Offset
		}
		return infos[i].Name < infos[j].Name
	})
	var prev *TensorInfo
	for i := range infos {
		cur := &infos[i]
		if cur.Size == 0 {
			continue
		}
		if prev != nil && cur.Offset < prev.Offset+prev.Size {
			return &FormatError{File: path, Tensor: cur.Name, Reason: fmt.Sprintf(
				"bytes [%d, %d) overlap tensor %q at [%d, %d)",
				cur.Offset, cur.Offset+cur.Size, prev.Name, prev.Offset, prev.Offset+prev.Size)}
		}
		prev = cur
	}
	return nil
}

// bytes returns a read-only view of info's data, mapping the file on first
// use. The view stays valid until close.
//
// NOTE: the file must not shrink while it is mapped. Reading a view past the
// new end of the file raises SIGBUS, which Go cannot turn into an error.
func (f *safetensorsFile) bytes(info TensorInfo) ([]byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return nil, fmt.Errorf("read tensor %q: %s is closed", info.Name, f.path)
	}
	if info.Size == 0 {
		// mmap rejects empty mappings, and an empty tensor needs none.
		return []byte{}, nil
	}
	if f.mapped == nil {
		if f.size > math.MaxInt {
			return nil, fmt.Errorf("map %s: %d bytes do not fit the address space", f.path, f.size)
		}
		m, err := unix.Mmap(int(f.file.Fd()), 0, int(f.size), unix.PROT_READ, unix.MAP_SHARED)
		if err != nil {
			return nil, fmt.Errorf("map %s: %w", f.path, err)
		}
		f.mapped = m
	}
	return f.mapped[info.Offset : info.Offset+info.Size : info.Offset+info.Size], nil
}

// isMapped reports whether the data section has been mapped.
func (f *safetensorsFile) isMapped() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.mapped != nil
}

// close unmaps and closes the file. It is safe to call twice.
func (f *safetensorsFile) close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return nil
	}
	f.closed = true
	var errs []error
	if f.mapped != nil {
		if err := unix.Munmap(f.mapped); err != nil {
			errs = append(errs, fmt.Errorf("unmap %s: %w", f.path, err))
		}
		f.mapped = nil
	}
	if err := f.file.Close(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// weightSource is the ir.WeightSource of one tensor of an open file.
type weightSource struct {
	file *safetensorsFile
	info TensorInfo
}

func (s *weightSource) Location() (file string, offset, size int64) {
	return s.info.File, s.info.Offset, s.info.Size
}

func (s *weightSource) Bytes() ([]byte, error) { return s.file.bytes(s.info) }

// decodeTensor copies raw little-endian data into a new tensor of info's
// dtype and shape. BOOL bytes other than 0 read as true.
func decodeTensor(info TensorInfo, raw []byte) (*ir.Tensor, error) {
	t, err := ir.TensorFromBytes(info.DType, info.Shape, raw)
	if err != nil {
		return nil, fmt.Errorf("tensor %q: %w", info.Name, err)
	}
	return t, nil
}

// decodeF32 converts raw F32, F16 or BF16 data to float32 values.
func decodeF32(info TensorInfo, raw []byte) ([]float32, error) {
	n := info.Size / int64(info.DType.Size())
	out := make([]float32, n)
	switch info.DType {
	case ir.F32:
		for i := range out {
			out[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
		}
	case ir.F16:
		for i := range out {
			out[i] = ir.F16ToF32(binary.LittleEndian.Uint16(raw[2*i:]))
		}
	case ir.BF16:
		for i := range out {
			out[i] = ir.BF16ToF32(binary.LittleEndian.Uint16(raw[2*i:]))
		}
	default:
		return nil, fmt.Errorf("tensor %q has dtype %v; float32 conversion supports f32, f16 and bf16 only (read it with Tensor instead)", info.Name, info.DType)
	}
	return out, nil
}

// ReadSafetensors reads every tensor of a single safetensors file into
// memory. It is meant for small files such as model inputs and reference
// vectors; use OpenCheckpoint for weights.
func ReadSafetensors(path string) (map[string]*ir.Tensor, error) {
	out, _, err := readSafetensors(path, nil)
	return out, err
}

// ReadSafetensorsSkipping is ReadSafetensors that leaves out tensors of
// dtypes mmadac cannot represent (U8 reference images, for example) and
// returns their names.
func ReadSafetensorsSkipping(path string) (map[string]*ir.Tensor, []string, error) {
	skipped := []string{}
	out, _, err := readSafetensors(path, &skipped)
	return out, skipped, err
}

func readSafetensors(path string, skipped *[]string) (map[string]*ir.Tensor, []string, error) {
	f, err := openSafetensorsFileSkipping(path, skipped)
	if err != nil {
		return nil, nil, err
	}
	defer f.close()
	out := make(map[string]*ir.Tensor, len(f.tensors))
	for name, info := range f.tensors {
		raw, err := f.bytes(info)
		if err != nil {
			return nil, nil, err
		}
		if out[name], err = decodeTensor(info, raw); err != nil {
			return nil, nil, err
		}
	}
	return out, nil, nil
}

// sortedNames returns the keys of m in increasing order.
func sortedNames[V any](m map[string]V) []string {
	names := slices.Collect(maps.Keys(m))
	slices.Sort(names)
	return names
}
