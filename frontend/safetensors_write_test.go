package frontend

import (
	"encoding/binary"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"

	"github.com/mmadac/mmadac/ir"
)

// allDTypeTensors returns one tensor of each supported dtype, plus a scalar
// and an empty tensor.
func allDTypeTensors() map[string]*ir.Tensor {
	return map[string]*ir.Tensor{
		"f32":    ir.FromF32([]float32{1.5, -2, float32(math.Inf(1)), 3e-40}, 2, 2),
		"f64":    ir.FromF64([]float64{math.Pi, -1e300}, 2),
		"i64":    ir.FromI64([]int64{math.MinInt64, 0, math.MaxInt64}, 3, 1),
		"i32":    {DType: ir.I32, Shape: []int64{2}, Data: []int32{-7, 1 << 30}},
		"bool":   {DType: ir.Bool, Shape: []int64{3}, Data: []bool{true, false, true}},
		"f16":    {DType: ir.F16, Shape: []int64{2}, Data: []uint16{ir.F32ToF16(0.5), ir.F32ToF16(-65504)}},
		"bf16":   {DType: ir.BF16, Shape: []int64{1, 2}, Data: []uint16{ir.F32ToBF16(3.25), ir.F32ToBF16(-1e30)}},
		"scalar": ir.FromF32([]float32{42}),
		"empty":  ir.FromF32([]float32{}, 0, 4),
	}
}

func TestWriteReadRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "all.safetensors")
	want := allDTypeTensors()
	if err := WriteSafetensors(path, want); err != nil {
		t.Fatal(err)
	}
	got, err := ReadSafetensors(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("read %d tensors, want %d", len(got), len(want))
	}
	for name, w := range want {
		g := got[name]
		if g == nil {
			t.Errorf("%s missing", name)
			continue
		}
		if g.DType != w.DType {
			t.Errorf("%s: dtype %v, want %v", name, g.DType, w.DType)
		}
		if g.Len() != w.Len() || (len(w.Shape) > 0 && !reflect.DeepEqual(g.Shape, w.Shape)) {
			t.Errorf("%s: shape %v, want %v", name, g.Shape, w.Shape)
		}
		if !reflect.DeepEqual(g.Data, w.Data) {
			t.Errorf("%s: data %v, want %v", name, g.Data, w.Data)
		}
	}
	if len(got["scalar"].Shape) != 0 {
		t.Errorf("scalar read back with shape %v", got["scalar"].Shape)
	}
}

func TestWriteHeaderLayout(t *testing.T) {
	path := filepath.Join(t.TempDir(), "layout.safetensors")
	if err := WriteSafetensors(path, allDTypeTensors()); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	n := binary.LittleEndian.Uint64(data)
	if n%8 != 0 {
		t.Errorf("header length %d is not a multiple of 8", n)
	}
	header := string(data[8 : 8+n])
	trimmed := strings.TrimRight(header, " ")
	if !strings.HasSuffix(trimmed, "}") || len(header)-len(trimmed) >= 8 {
		t.Errorf("header is not JSON padded with fewer than 8 spaces: %q", header[len(header)-10:])
	}
	if !strings.Contains(header, `"__metadata__":{"format":"pt"}`) {
		t.Errorf("header lacks format metadata: %s", header)
	}
	if !strings.Contains(header, `"scalar":{"dtype":"F32","shape":[],`) {
		t.Errorf("scalar not written with shape []: %s", header)
	}

	// Data follows name order: bf16 is first and scalar after i64.
	c, err := OpenCheckpoint(path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	prevEnd := int64(8 + n)
	for _, name := range c.Names() {
		info, _ := c.Info(name)
		if info.Offset != prevEnd {
			t.Errorf("%s at offset %d, want %d (packed in name order)", name, info.Offset, prevEnd)
		}
		prevEnd = info.Offset + info.Size
	}
	if prevEnd != int64(len(data)) {
		t.Errorf("data ends at %d, file is %d bytes", prevEnd, len(data))
	}
}

func TestWriteRejectsBadTensors(t *testing.T) {
	cases := []struct {
		name    string
		tensors map[string]*ir.Tensor
		want    string
	}{
		{"nil tensor", map[string]*ir.Tensor{"x": nil}, `tensor "x" is nil`},
		{"dtype mismatch", map[string]*ir.Tensor{"x": {DType: ir.F64, Shape: []int64{1}, Data: []float32{1}}}, "[]float32 does not match dtype f64"},
		{"length mismatch", map[string]*ir.Tensor{"x": {DType: ir.F32, Shape: []int64{3}, Data: []float32{1}}}, "1 elements do not fill shape [3]"},
		{"unknown data", map[string]*ir.Tensor{"x": {DType: ir.F32, Shape: []int64{1}, Data: []int8{1}}}, "[]int8 is not a tensor slice"},
		{"reserved name", map[string]*ir.Tensor{"__metadata__": ir.FromF32([]float32{1}, 1)}, "reserved for metadata"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "out.safetensors")
			err := WriteSafetensors(path, tc.tensors)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want one containing %q", err, tc.want)
			}
			if entries, _ := os.ReadDir(dir); len(entries) != 0 {
				t.Errorf("failed write left %d files", len(entries))
			}
		})
	}
}

func TestWriteFailureLeavesNoPartialFile(t *testing.T) {
	dir := t.TempDir()
	// Renaming onto a non-empty directory fails after the data is written,
	// which exercises the clean-up of the temporary file.
	target := filepath.Join(dir, "out.safetensors")
	if err := os.MkdirAll(filepath.Join(target, "keep"), 0o755); err != nil {
		t.Fatal(err)
	}
	err := WriteSafetensors(target, allDTypeTensors())
	if err == nil {
		t.Fatal("write onto a non-empty directory succeeded")
	}
	if !strings.Contains(err.Error(), target) {
		t.Errorf("error %q does not name the path", err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 || entries[0].Name() != "out.safetensors" {
		t.Errorf("folder holds %v, want only the pre-existing directory", entries)
	}

	if err := WriteSafetensors(filepath.Join(dir, "absent", "x.safetensors"), allDTypeTensors()); err == nil {
		t.Error("write into a missing folder succeeded")
	}
}

func TestWriteReplacesExistingFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.safetensors")
	for _, v := range []float32{1, 2} {
		if err := WriteSafetensors(path, map[string]*ir.Tensor{"v": ir.FromF32([]float32{v}, 1)}); err != nil {
			t.Fatal(err)
		}
	}
	got, err := ReadSafetensors(path)
	if err != nil {
		t.Fatal(err)
	}
	if v := got["v"].F32()[0]; v != 2 {
		t.Errorf("v = %g, want the second write's 2", v)
	}
	if st, _ := os.Stat(path); st.Mode().Perm() != 0o644 {
		t.Errorf("mode %v, want 0644", st.Mode().Perm())
	}
}

// diskBytes returns the bytes a file occupies on disk (stat blocks of 512
// bytes), which for a sparse file is far below its length.
func diskBytes(t *testing.T, path string) int64 {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return st.Sys().(*syscall.Stat_t).Blocks * 512
}

func TestWriteSparseSafetensors(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sparse.safetensors")
	infos := []TensorInfo{
		{Name: "w", DType: ir.BF16, Shape: []int64{4096, 4096}},
		{Name: "b", DType: ir.F32, Shape: []int64{4096}},
		{Name: "ids", DType: ir.I64, Shape: []int64{}, File: "ignored", Offset: 99, Size: 1},
	}
	if err := WriteSparseSafetensors(path, infos); err != nil {
		t.Fatal(err)
	}
	c, err := OpenCheckpoint(path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	var dataSize int64
	for _, in := range infos {
		info, ok := c.Info(in.Name)
		if !ok {
			t.Fatalf("%s missing", in.Name)
		}
		if info.DType != in.DType || len(info.Shape) != len(in.Shape) {
			t.Errorf("%s is %v%v, want %v%v", in.Name, info.DType, info.Shape, in.DType, in.Shape)
		}
		dataSize += info.Size
	}

	st, _ := os.Stat(path)
	if st.Size() < dataSize {
		t.Errorf("file is %d bytes, shorter than its %d data bytes", st.Size(), dataSize)
	}
	if used := diskBytes(t, path); used > 64<<10 {
		t.Errorf("sparse file of %d bytes occupies %d bytes of disk", st.Size(), used)
	}
	values, err := c.TensorF32("w")
	if err != nil {
		t.Fatal(err)
	}
	if values[len(values)-1] != 0 {
		t.Errorf("hole reads as %g, want 0", values[len(values)-1])
	}
}

func TestWriteSparseRejectsBadInfos(t *testing.T) {
	dir := t.TempDir()
	cases := []struct {
		name  string
		infos []TensorInfo
		want  string
	}{
		{"no dtype", []TensorInfo{{Name: "a", Shape: []int64{2}}}, `tensor "a" has dtype invalid`},
		{"duplicate", []TensorInfo{{Name: "a", DType: ir.F32}, {Name: "a", DType: ir.F32}}, `tensor "a" appears twice`},
		{"negative dim", []TensorInfo{{Name: "a", DType: ir.F32, Shape: []int64{-1}}}, "invalid shape [-1]"},
		{"overflow", []TensorInfo{{Name: "a", DType: ir.F32, Shape: []int64{1 << 62, 4}}}, "invalid shape"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := WriteSparseSafetensors(filepath.Join(dir, "x.safetensors"), tc.infos)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want one containing %q", err, tc.want)
			}
		})
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("rejected writes left %d files", len(entries))
	}
}

func TestWriteSparseCheckpointArguments(t *testing.T) {
	infos := []TensorInfo{{Name: "a", DType: ir.F32, Shape: []int64{2}}, {Name: "b", DType: ir.F32, Shape: []int64{2}}}
	for _, shards := range []int{0, 3} {
		err := WriteSparseCheckpoint(t.TempDir(), nil, infos, shards)
		if err == nil || !strings.Contains(err.Error(), "between 1 and the tensor count 2") {
			t.Errorf("shards=%d: err = %v", shards, err)
		}
	}
	dup := append(infos, infos[0])
	if err := WriteSparseCheckpoint(t.TempDir(), nil, dup, 2); err == nil || !strings.Contains(err.Error(), `"a" appears twice`) {
		t.Errorf("duplicate across shards: err = %v", err)
	}

	// One shard is written as model.safetensors without an index.
	dir := t.TempDir()
	if err := WriteSparseCheckpoint(dir, []byte(`{"d_model": 8}`), infos, 1); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"config.json", "model.safetensors"} {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			t.Error(err)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, indexFileName)); err == nil {
		t.Error("a single-shard checkpoint got an index")
	}
}

func TestSplitShards(t *testing.T) {
	mk := func(sizes ...int64) []TensorInfo {
		var infos []TensorInfo
		for i, s := range sizes {
			infos = append(infos, TensorInfo{Name: string(rune('a' + i)), DType: ir.Bool, Shape: []int64{s}})
		}
		return infos
	}
	cases := []struct {
		name   string
		infos  []TensorInfo
		shards int
		want   []int // tensors per shard
	}{
		{"even", mk(10, 10, 10, 10), 2, []int{2, 2}},
		{"giant first", mk(1000, 1, 1, 1), 3, []int{1, 1, 2}},
		{"giant last", mk(1, 1, 1, 1000), 2, []int{3, 1}},
		{"one per shard", mk(5, 5, 5), 3, []int{1, 1, 1}},
		{"zero sizes", mk(0, 0, 0, 0), 2, []int{3, 1}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			groups := splitShards(tc.infos, tc.shards)
			var got []int
			var order []string
			for _, g := range groups {
				got = append(got, len(g))
				for _, info := range g {
					order = append(order, info.Name)
				}
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("tensors per shard %v, want %v", got, tc.want)
			}
			if strings.Join(order, "") != "abcd"[:len(tc.infos)] {
				t.Errorf("order %v changed", order)
			}
		})
	}
}
