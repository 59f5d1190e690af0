package frontend

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/mmadac/mmadac/ir"
)

// headerMetadata is written into every file so that Hugging Face
// transformers, which checks the "format" entry, accepts what we write.
var headerMetadata = map[string]string{"format": "pt"}

// WriteSafetensors writes tensors to path in the safetensors format, in name
// order. The header is padded with spaces to a multiple of 8 bytes, as the
// reference writer does, so that the data section starts 8-byte aligned. The
// file is written under a temporary name in the same folder and renamed into
// place, so that a failure leaves no partial file at path.
func WriteSafetensors(path string, tensors map[string]*ir.Tensor) error {
	names := sortedNames(tensors)
	infos := make([]TensorInfo, 0, len(names))
	for _, name := range names {
		t := tensors[name]
		if t == nil {
			return fmt.Errorf("write %s: tensor %q is nil", path, name)
		}
		if err := checkTensorData(t); err != nil {
			return fmt.Errorf("write %s: tensor %q: %w", path, name, err)
		}
		infos = append(infos, TensorInfo{Name: name, DType: t.DType, Shape: t.Shape})
	}
	header, infos, err := buildHeader(path, infos)
	if err != nil {
		return err
	}
	return writeFileAtomic(path, func(f *os.File) error {
		w := bufio.NewWriterSize(f, 1<<20)
		if _, err := w.Write(header); err != nil {
			return err
		}
		for _, info := range infos {
			if err := encodeTensor(w, tensors[info.Name]); err != nil {
				return err
			}
		}
		return w.Flush()
	})
}

// WriteSparseSafetensors writes a safetensors file holding the header for
// infos (Name, DType and Shape are used; File, Offset and Size are ignored)
// and extends it to its full length with Truncate. On file systems with
// sparse files the data section is a hole that reads as zeros and takes no
// disk space, so the file can replace a real checkpoint of that layout in
// tests and benchmarks.
func WriteSparseSafetensors(path string, infos []TensorInfo) error {
	sorted := slices.Clone(infos)
	slices.SortFunc(sorted, func(a, b TensorInfo) int { return strings.Compare(a.Name, b.Name) })
	header, sorted, err := buildHeader(path, sorted)
	if err != nil {
		return err
	}
	total := int64(len(header))
	if n := len(sorted); n > 0 {
		total = sorted[n-1].Offset + sorted[n-1].Size
	}
	return writeFileAtomic(path, func(f *os.File) error {
		if _, err := f.Write(header); err != nil {
			return err
		}
		return f.Truncate(total)
	})
}

// buildHeader lays infos out back to back in the given order and returns the
// length-prefixed, space-padded header together with the infos completed
// with File, Offset and Size. Names must be unique and dtypes supported.
func buildHeader(path string, infos []TensorInfo) ([]byte, []TensorInfo, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, nil, fmt.Errorf("write %s: %w", path, err)
	}
	entries := make(map[string]any, len(infos)+1)
	entries[metadataKey] = headerMetadata
	out := make([]TensorInfo, len(infos))
	var offset int64
	for i, info := range infos {
		if info.Name == metadataKey {
			return nil, nil, fmt.Errorf("write %s: tensor name %q is reserved for metadata", path, info.Name)
		}
		if _, dup := entries[info.Name]; dup {
			return nil, nil, fmt.Errorf("write %s: tensor %q appears twice", path, info.Name)
		}
		name := safetensorsName(info.DType)
		if name == "" {
			return nil, nil, fmt.Errorf("write %s: tensor %q has dtype %v, which safetensors files here cannot hold (supported: %s)",
				path, info.Name, info.DType, supportedDTypeList)
		}

		numel, err := checkedNumElements(info.Shape)
		if err != nil || numel > math.MaxInt64/int64(info.DType.Size()) {
			return nil, nil, fmt.Errorf("write %s: tensor %q: invalid shape %v", path, info.Name, info.Shape)
		}
		size := numel * int64(info.DType.Size())
		shape := info.Shape
		if shape == nil {
			shape = []int64{} // a scalar must be written as [], not null
		}
		entries[info.Name] = struct {
			DType       string   `json:"dtype"`
			Shape       []int64  `json:"shape"`
			DataOffsets [2]int64 `json:"data_offsets"`
		}{name, shape, [2]int64{offset, offset + size}}
		out[i] = TensorInfo{Name: info.Name, DType: info.DType, Shape: slices.Clone(info.Shape), File: abs, Offset: offset, Size: size}
		offset += size
	}

	// json.Marshal writes map keys in sorted order, which puts __metadata__
	// (underscore, 0x5f) after upper-case and before lower-case names.
	js, err := json.Marshal(entries)
	if err != nil {
		return nil, nil, fmt.Errorf("write %s: encode header: %w", path, err)
	}
	pad := (8 - len(js)%8) % 8
	header := make([]byte, 8, 8+len(js)+pad)
	binary.LittleEndian.PutUint64(header, uint64(len(js)+pad))
	header = append(header, js...)
	header = append(header, strings.Repeat(" ", pad)...)
	for i := range out {
		out[i].Offset += int64(len(header))
	}
	return header, out, nil
}

// checkTensorData verifies that t.Data has the Go type of t.DType and one
// element per position of t.Shape.
func checkTensorData(t *ir.Tensor) error {
	var n int
	ok := true
	switch d := t.Data.(type) {
	case []float32:
		n, ok = len(d), t.DType == ir.F32
	case []float64:
		n, ok = len(d), t.DType == ir.F64
	case []int64:
		n, ok = len(d), t.DType == ir.I64
	case []int32:
		n, ok = len(d), t.DType == ir.I32
	case []bool:
		n, ok = len(d), t.DType == ir.Bool
	case []uint16:
		n, ok = len(d), t.DType == ir.F16 || t.DType == ir.BF16
	default:
		return fmt.Errorf("data of Go type %T is not a tensor slice", t.Data)
	}
	if !ok {
		return fmt.Errorf("data of Go type %T does not match dtype %v", t.Data, t.DType)
	}
	numel, err := checkedNumElements(t.Shape)
	if err != nil {
		return fmt.Errorf("shape %v: %w", t.Shape, err)
	}
	if int64(n) != numel {
		return fmt.Errorf("%d elements do not fill shape %v (%d elements)", n, t.Shape, numel)
	}
	return nil
}

// encodeTensor writes t's data little-endian; checkTensorData must have
// accepted t.
func encodeTensor(w io.Writer, t *ir.Tensor) error {
	le := binary.LittleEndian
	switch d := t.Data.(type) {
	case []float32:
		return encodeValues(w, d, func(b []byte, v float32) []byte { return le.AppendUint32(b, math.Float32bits(v)) })
	case []float64:
		return encodeValues(w, d, func(b []byte, v float64) []byte { return le.AppendUint64(b, math.Float64bits(v)) })
	case []int64:
		return encodeValues(w, d, func(b []byte, v int64) []byte { return le.AppendUint64(b, uint64(v)) })
	case []int32:
		return encodeValues(w, d, func(b []byte, v int32) []byte { return le.AppendUint32(b, uint32(v)) })
	case []uint16:
		return encodeValues(w, d, le.AppendUint16)
	case []bool:
		return encodeValues(w, d, func(b []byte, v bool) []byte {
			if v {
				return append(b, 1)
			}
			return append(b, 0)
		})
	}
	return fmt.Errorf("data of Go type %T is not a tensor slice", t.Data)
}

// encodeValues appends each value with put and writes the bytes in chunks of
// 64 Ki values, so that a large tensor needs no second full-size buffer.
func encodeValues[T any](w io.Writer, values []T, put func([]byte, T) []byte) error {
	const chunk = 1 << 16
	var buf []byte
	for start := 0; start < len(values); start += chunk {
		buf = buf[:0]
		for _, v := range values[start:min(start+chunk, len(values))] {
			buf = put(buf, v)
		}
		if _, err := w.Write(buf); err != nil {
			return err
		}
	}
	return nil
}

// writeFileAtomic creates a temporary file next to path, lets fill write it,
// syncs it and renames it to path. On any error the temporary file is
// removed and path is left as it was.
func writeFileAtomic(path string, fill func(f *os.File) error) (err error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	f, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
			err = fmt.Errorf("write %s: %w", path, err)
		}
	}()
	if err = fill(f); err != nil {
		return err
	}
	if err = f.Chmod(0o644); err != nil {
		return err
	}
	if err = f.Sync(); err != nil {
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// WriteSparseCheckpoint writes a sharded stand-in checkpoint into dir:
// config.json (skipped when config is empty), the shards as sparse files
// (see WriteSparseSafetensors) and model.safetensors.index.json, the layout
// that Hugging Face save_pretrained produces. Tensors go to the shards in the
// order of infos, split into shards runs of roughly equal byte size, and the
// shards are named model-00001-of-0000N.safetensors. With shards == 1 the
// single file is model.safetensors and no index is written, as
// save_pretrained does.
func WriteSparseCheckpoint(dir string, config []byte, infos []TensorInfo, shards int) error {
	if shards < 1 || shards > len(infos) {
		return fmt.Errorf("write sparse checkpoint %s: shard count %d must be between 1 and the tensor count %d", dir, shards, len(infos))
	}
	seen := make(map[string]bool, len(infos))
	for _, info := range infos {
		if seen[info.Name] {
			return fmt.Errorf("write sparse checkpoint %s: tensor %q appears twice", dir, info.Name)
		}
		seen[info.Name] = true
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("write sparse checkpoint: %w", err)
	}
	if len(config) > 0 {
		err := writeFileAtomic(filepath.Join(dir, "config.json"), func(f *os.File) error {
			_, err := f.Write(config)
			return err
		})
		if err != nil {
			return fmt.Errorf("write sparse checkpoint: %w", err)
		}
	}
	if shards == 1 {
		return WriteSparseSafetensors(filepath.Join(dir, singleFileName), infos)
	}

	groups := splitShards(infos, shards)
	weightMap := make(map[string]string, len(infos))
	var totalSize int64
	for k, group := range groups {
		name := fmt.Sprintf("model-%05d-of-%05d.safetensors", k+1, shards)
		if err := WriteSparseSafetensors(filepath.Join(dir, name), group); err != nil {
			return fmt.Errorf("write sparse checkpoint: %w", err)
		}
		for _, info := range group {
			weightMap[info.Name] = name
			totalSize += byteSize(info)
		}
		slog.Debug("wrote sparse shard", "file", name, "tensors", len(group))
	}
	index, err := json.MarshalIndent(checkpointIndex{
		Metadata:  map[string]any{"total_size": totalSize},
		WeightMap: weightMap,
	}, "", "  ")
	if err != nil {
		return fmt.Errorf("write sparse checkpoint: encode index: %w", err)
	}
	err = writeFileAtomic(filepath.Join(dir, indexFileName), func(f *os.File) error {
		_, err := f.Write(append(index, '\n'))
		return err
	})
	if err != nil {
		return fmt.Errorf("write sparse checkpoint: %w", err)
	}
	return nil
}

// byteSize returns the data size of info computed from its dtype and shape,
// or 0 when the shape is invalid (buildHeader reports that case).
func byteSize(info TensorInfo) int64 {
	n, err := checkedNumElements(info.Shape)
	if err != nil {
		return 0
	}
	return n * int64(info.DType.Size())
}

// splitShards cuts infos, in order, into exactly shards non-empty runs whose
// byte sizes are close to total/shards. The caller guarantees
// 1 <= shards <= len(infos).
func splitShards(infos []TensorInfo, shards int) [][]TensorInfo {
	var total int64
	for _, info := range infos {
		total += byteSize(info)
	}
	groups := make([][]TensorInfo, shards)
	shard := 0
	var cum int64
	for i, info := range infos {
		size := byteSize(info)
		later := shards - 1 - shard // shards after the current one
		if len(groups[shard]) > 0 && later > 0 {
			// The boundary of shard k sits at total*(k+1)/shards. Move on
			// when this tensor's midpoint passes it, or when the remaining
			// tensors are just enough to give each later shard one.
			boundary := float64(total) * float64(shard+1) / float64(shards)
			if float64(cum)+float64(size)/2 > boundary || len(infos)-i == later {
				shard++
			}
		}
		groups[shard] = append(groups[shard], info)
		cum += size
	}
	return groups
}
