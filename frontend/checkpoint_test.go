package frontend

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/mmadac/mmadac/ir"
)

const (
	tinyF32Dir  = "testdata/mmada"
	tinyBF16Dir = "testdata/mmada-bf16"
)

// tinyTensorCount is the tensor count of the two-layer test model: 9 per
// block plus the embedding, the final norm and the output head.
const tinyTensorCount = 2*9 + 3

func openTiny(t *testing.T, dir string) *Checkpoint {
	t.Helper()
	c, err := OpenCheckpoint(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestOpenSingleFile(t *testing.T) {
	c := openTiny(t, tinyF32Dir)
	names := c.Names()
	if len(names) != tinyTensorCount {
		t.Fatalf("%d tensors, want %d", len(names), tinyTensorCount)
	}
	if !slices.IsSorted(names) {
		t.Errorf("Names are not sorted: %v", names)
	}
	abs, _ := filepath.Abs(tinyF32Dir)
	if c.Dir() != abs {
		t.Errorf("Dir = %q, want %q", c.Dir(), abs)
	}

	info, ok := c.Info("model.transformer.blocks.0.ff_out.weight")
	if !ok {
		t.Fatal("ff_out.weight not found")
	}
	if info.DType != ir.F32 || !slices.Equal(info.Shape, []int64{64, 160}) {
		t.Errorf("ff_out.weight is %v%v, want f32[64 160]", info.DType, info.Shape)
	}
	if info.Size != 64*160*4 {
		t.Errorf("Size = %d, want %d", info.Size, 64*160*4)
	}
	if info.File != filepath.Join(abs, "model.safetensors") {
		t.Errorf("File = %q", info.File)
	}
	if _, ok := c.Info("model.transformer.missing"); ok {
		t.Error("Info found a tensor that does not exist")
	}
}

func TestSourceIsLazyAndInPlace(t *testing.T) {
	c := openTiny(t, tinyF32Dir)
	if c.files[0].isMapped() {
		t.Fatal("opening the checkpoint mapped the data")
	}
	src, err := c.Source("model.transformer.wte.weight")
	if err != nil {
		t.Fatal(err)
	}
	file, offset, size := src.Location()
	if c.files[0].isMapped() {
		t.Fatal("Source or Location mapped the data")
	}
	got, err := src.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	whole, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if size != 320*64*4 || int64(len(got)) != size {
		t.Fatalf("size %d, %d bytes returned, want %d", size, len(got), 320*64*4)
	}
	if !bytes.Equal(got, whole[offset:offset+size]) {
		t.Error("Bytes differ from the file's byte range at Location")
	}
	if _, err := c.Source("nope"); err == nil || !strings.Contains(err.Error(), `"nope" not found`) {
		t.Errorf("Source of a missing tensor: err = %v", err)
	}
}

func TestTensorDecodesF32(t *testing.T) {
	c := openTiny(t, tinyF32Dir)
	name := "model.transformer.ln_f.weight"
	tensor, err := c.Tensor(name)
	if err != nil {
		t.Fatal(err)
	}
	f32, err := c.TensorF32(name)
	if err != nil {
		t.Fatal(err)
	}
	if tensor.DType != ir.F32 || !slices.Equal(tensor.Shape, []int64{64}) {
		t.Fatalf("tensor is %v%v", tensor.DType, tensor.Shape)
	}
	if !slices.Equal(tensor.F32(), f32) {
		t.Error("Tensor and TensorF32 disagree")
	}
	ref, err := ReadSafetensors(filepath.Join(tinyF32Dir, "model.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(ref[name].F32(), f32) {
		t.Error("ReadSafetensors and TensorF32 disagree")
	}
}

func TestShardedBF16MatchesRoundedF32(t *testing.T) {
	f32 := openTiny(t, tinyF32Dir)
	bf16 := openTiny(t, tinyBF16Dir)
	if !slices.Equal(f32.Names(), bf16.Names()) {
		t.Fatalf("tensor names differ:\n%v\n%v", f32.Names(), bf16.Names())
	}
	shards := map[string]bool{}
	for _, name := range bf16.Names() {
		info, _ := bf16.Info(name)
		shards[filepath.Base(info.File)] = true
		want, err := f32.TensorF32(name)
		if err != nil {
			t.Fatal(err)
		}
		tensor, err := bf16.Tensor(name)
		if err != nil {
			t.Fatal(err)
		}
		if tensor.DType != ir.BF16 {
			t.Fatalf("%s: dtype %v, want bf16", name, tensor.DType)
		}
		widened, err := bf16.TensorF32(name)
		if err != nil {
			t.Fatal(err)
		}
		for i, bits := range tensor.U16() {
			if rounded := ir.F32ToBF16(want[i]); bits != rounded {
				t.Fatalf("%s[%d]: bf16 bits %#04x, want %#04x (from %g)", name, i, bits, rounded, want[i])
			}
			if widened[i] != ir.BF16ToF32(bits) {
				t.Fatalf("%s[%d]: TensorF32 = %g, want %g", name, i, widened[i], ir.BF16ToF32(bits))
			}
		}
	}
	if len(shards) != 2 {
		t.Errorf("tensors come from %d shards, want 2", len(shards))
	}
}

func TestOpenAcceptedPaths(t *testing.T) {
	for _, path := range []string{
		filepath.Join(tinyF32Dir, "model.safetensors"),
		filepath.Join(tinyBF16Dir, "model.safetensors.index.json"),
	} {
		c, err := OpenCheckpoint(path)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if len(c.Names()) != tinyTensorCount {
			t.Errorf("%s: %d tensors", path, len(c.Names()))
		}
		c.Close()
	}

	// The MAGVIT-v2 hub checkpoint is named pytorch_model.safetensors.
	dir := t.TempDir()
	err := WriteSafetensors(filepath.Join(dir, "pytorch_model.safetensors"),
		map[string]*ir.Tensor{"quantize.embedding": ir.FromF32([]float32{1, 2}, 2)})
	if err != nil {
		t.Fatal(err)
	}
	c, err := OpenCheckpoint(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if got := c.Names(); !slices.Equal(got, []string{"quantize.embedding"}) {
		t.Errorf("Names = %v", got)
	}
}

func TestOpenEmptyDirectory(t *testing.T) {
	dir := t.TempDir()
	_, err := OpenCheckpoint(dir)
	if err == nil || !strings.Contains(err.Error(), "model.safetensors.index.json") {
		t.Errorf("err = %v, want one listing the expected file names", err)
	}
	if _, err := OpenCheckpoint(filepath.Join(dir, "absent")); err == nil {
		t.Error("opened a path that does not exist")
	}
}

// copyTinyBF16 copies the sharded test checkpoint to a temporary folder so
// that a test can damage it.
func copyTinyBF16(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	entries, err := os.ReadDir(tinyBF16Dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		data, err := os.ReadFile(filepath.Join(tinyBF16Dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, e.Name()), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestShardedErrors(t *testing.T) {
	const shard1 = "model-00001-of-00002.safetensors"
	const anyTensor = "model.transformer.blocks.0.q_proj.weight"
	cases := []struct {
		name   string
		damage func(t *testing.T, dir string)
		want   []string
	}{
		{
			name: "missing shard",
			damage: func(t *testing.T, dir string) {
				os.Remove(filepath.Join(dir, shard1))
			},
			want: []string{shard1, "is missing", "model.safetensors.index.json"},
		},
		{
			name: "tensor absent from shard",
			damage: func(t *testing.T, dir string) {
				rewriteIndex(t, dir, `"`+anyTensor+`": "model-00002-of-00002.safetensors"`)
			},
			want: []string{anyTensor, "model-00002-of-00002.safetensors", "not stored in this shard"},
		},
		{
			name: "index not JSON",
			damage: func(t *testing.T, dir string) {
				os.WriteFile(filepath.Join(dir, indexFileName), []byte(`{"weight_map": `), 0o644)
			},
			want: []string{indexFileName, "not valid JSON"},
		},
		{
			name: "empty weight map",
			damage: func(t *testing.T, dir string) {
				os.WriteFile(filepath.Join(dir, indexFileName), []byte(`{"metadata": {}, "weight_map": {}}`), 0o644)
			},
			want: []string{indexFileName, "no weight_map entries"},
		},
		{
			name: "shard outside folder",
			damage: func(t *testing.T, dir string) {
				rewriteIndex(t, dir, `"`+anyTensor+`": "../elsewhere.safetensors"`)
			},
			want: []string{"../elsewhere.safetensors", "not a relative path inside"},
		},
		{
			name: "corrupt shard",
			damage: func(t *testing.T, dir string) {
				os.WriteFile(filepath.Join(dir, shard1), []byte{8, 0, 0}, 0o644)
			},
			want: []string{shard1, "shorter than the 8-byte header length"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := copyTinyBF16(t)
			tc.damage(t, dir)
			c, err := OpenCheckpoint(dir)
			if err == nil {
				c.Close()
				t.Fatal("opened a damaged checkpoint")
			}
			var fe *FormatError
			if !errors.As(err, &fe) {
				t.Errorf("error %q is not a *FormatError", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

// rewriteIndex replaces the weight map of dir's index with one entry.
func rewriteIndex(t *testing.T, dir, entry string) {
	t.Helper()
	index := `{"metadata": {"total_size": 1}, "weight_map": {` + entry + `}}`
	if err := os.WriteFile(filepath.Join(dir, indexFileName), []byte(index), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestIndexIgnoresUnlistedTensors(t *testing.T) {
	dir := copyTinyBF16(t)
	const name = "model.transformer.ln_f.weight"
	rewriteIndex(t, dir, `"`+name+`": "model-00002-of-00002.safetensors"`)
	c, err := OpenCheckpoint(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if got := c.Names(); !slices.Equal(got, []string{name}) {
		t.Errorf("Names = %v, want only the indexed tensor", got)
	}
}

func TestTensorF32RejectsIntegers(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ids.safetensors")
	if err := WriteSafetensors(path, map[string]*ir.Tensor{"ids": ir.FromI64([]int64{1, 2, 3}, 3)}); err != nil {
		t.Fatal(err)
	}
	c, err := OpenCheckpoint(path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, err = c.TensorF32("ids")
	if err == nil || !strings.Contains(err.Error(), `"ids" has dtype i64`) {
		t.Errorf("err = %v", err)
	}
	tensor, err := c.Tensor("ids")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(tensor.I64(), []int64{1, 2, 3}) {
		t.Errorf("ids = %v", tensor.I64())
	}
	if _, err := c.Tensor("absent"); err == nil {
		t.Error("Tensor of a missing name succeeded")
	}
}

func TestBytesAfterClose(t *testing.T) {
	c, err := OpenCheckpoint(tinyF32Dir)
	if err != nil {
		t.Fatal(err)
	}
	src, _ := c.Source("model.transformer.ln_f.weight")
	if _, err := src.Bytes(); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := src.Bytes(); err == nil || !strings.Contains(err.Error(), "is closed") {
		t.Errorf("Bytes after Close: err = %v", err)
	}
	if _, err := c.TensorF32("model.transformer.ln_f.weight"); err == nil {
		t.Error("TensorF32 after Close succeeded")
	}
}

func TestConcurrentReads(t *testing.T) {
	c := openTiny(t, tinyBF16Dir)
	names := c.Names()
	done := make(chan error, len(names))
	for _, name := range names {
		go func() {
			_, err := c.TensorF32(name)
			done <- err
		}()
	}
	for range names {
		if err := <-done; err != nil {
			t.Error(err)
		}
	}
	for _, f := range c.files {
		if !f.isMapped() {
			t.Errorf("%s was not mapped after reading every tensor", f.path)
		}
	}
}
