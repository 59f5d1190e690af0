package frontend

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/mmadac/mmadac/ir"
)

// File names looked up, in this order, when OpenCheckpoint is given a
// directory. "pytorch_model.safetensors" is the name the MAGVIT-v2 tokenizer
// uses on the Hugging Face hub.
const (
	indexFileName        = "model.safetensors.index.json"
	singleFileName       = "model.safetensors"
	pytorchModelFileName = "pytorch_model.safetensors"
)

// Checkpoint is an open set of safetensors files: one file, or the shards
// named by a model.safetensors.index.json. Opening reads only the headers;
// tensor data stays on disk until Source(...).Bytes, Tensor or TensorF32 maps
// the file that holds it. A Checkpoint is safe for concurrent use.
type Checkpoint struct {
	dir    string                      // absolute folder of the checkpoint
	files  []*safetensorsFile          // every open file, closed by Close
	infos  map[string]TensorInfo       // tensor name to its description
	owners map[string]*safetensorsFile // tensor name to the file holding it
	names  []string                    // keys of infos, sorted
}

// checkpointIndex is the JSON layout of model.safetensors.index.json. The
// metadata (total_size) is informational and not checked.
type checkpointIndex struct {
	Metadata  map[string]any    `json:"metadata"`
	WeightMap map[string]string `json:"weight_map"`
}

// OpenCheckpoint opens the checkpoint at path, which is one of:
//   - a directory holding model.safetensors.index.json (sharded),
//     model.safetensors, or pytorch_model.safetensors, tried in that order;
//   - the path of an index file ending in ".index.json";
//   - the path of a single .safetensors file.
//
// Every header is validated (see FormatError). In a sharded checkpoint the
// index is authoritative: shard tensors that it does not list are ignored, as
// Hugging Face transformers ignores them.
func OpenCheckpoint(path string) (*Checkpoint, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("open checkpoint: %w", err)
	}
	if !st.IsDir() {
		if strings.HasSuffix(path, ".index.json") {
			return openSharded(path)
		}
		return openSingle(path)
	}
	index := filepath.Join(path, indexFileName)
	if fileExists(index) {
		return openSharded(index)
	}
	for _, name := range []string{singleFileName, pytorchModelFileName} {
		if p := filepath.Join(path, name); fileExists(p) {
			return openSingle(p)
		}
	}
	return nil, fmt.Errorf("open checkpoint: directory %s has none of %s, %s, %s; pass the folder of a Hugging Face safetensors checkpoint or a .safetensors file",
		path, indexFileName, singleFileName, pytorchModelFileName)
}

// fileExists reports whether path names something other than a directory.
func fileExists(path string) bool {
	st, err := os.Stat(path)
	return err == nil && !st.IsDir()
}

// openSingle opens a checkpoint made of one safetensors file.
func openSingle(path string) (*Checkpoint, error) {
	f, err := openSafetensorsFile(path)
	if err != nil {
		return nil, fmt.Errorf("open checkpoint: %w", err)
	}
	c := &Checkpoint{
		dir:    filepath.Dir(f.path),
		files:  []*safetensorsFile{f},
		infos:  f.tensors,
		owners: make(map[string]*safetensorsFile, len(f.tensors)),
	}
	for name := range f.tensors {
		c.owners[name] = f
	}
	c.names = sortedNames(c.infos)
	slog.Debug("opened checkpoint", "file", f.path, "tensors", len(c.names))
	return c, nil
}

// openSharded opens the shards named by an index file and checks that every
// indexed tensor is in its shard.
func openSharded(indexPath string) (*Checkpoint, error) {
	indexPath, err := filepath.Abs(indexPath)
	if err != nil {
		return nil, fmt.Errorf("open checkpoint: %w", err)
	}
	data, err := os.ReadFile(indexPath)
	if err != nil {
		return nil, fmt.Errorf("open checkpoint: %w", err)
	}
	var index checkpointIndex
	if err := json.Unmarshal(data, &index); err != nil {
		return nil, fmt.Errorf("open checkpoint: %w", &FormatError{File: indexPath, Reason: fmt.Sprintf("index is not valid JSON: %v", err)})
	}
	if len(index.WeightMap) == 0 {
		return nil, fmt.Errorf("open checkpoint: %w", &FormatError{File: indexPath, Reason: "index has no weight_map entries"})
	}

	c := &Checkpoint{
		dir:    filepath.Dir(indexPath),
		infos:  make(map[string]TensorInfo, len(index.WeightMap)),
		owners: make(map[string]*safetensorsFile, len(index.WeightMap)),
	}
	if err := c.openShards(indexPath, index.WeightMap); err != nil {
		c.Close()
		return nil, fmt.Errorf("open checkpoint: %w", err)
	}
	c.names = sortedNames(c.infos)
	slog.Debug("opened sharded checkpoint", "index", indexPath, "shards", len(c.files), "tensors", len(c.names))
	return c, nil
}

// openShards opens each shard named in weightMap once and records the
// indexed tensors. Files already opened are left in c.files for Close.
func (c *Checkpoint) openShards(indexPath string, weightMap map[string]string) error {
	shards := map[string]*safetensorsFile{}
	for _, name := range sortedNames(weightMap) {
		shard := weightMap[name]
		f, ok := shards[shard]
		if !ok {
			if !filepath.IsLocal(shard) {
				return &FormatError{File: indexPath, Tensor: name, Reason: fmt.Sprintf(
					"shard %q is not a relative path inside the checkpoint folder", shard)}
			}
			shardPath := filepath.Join(c.dir, shard)
			if !fileExists(shardPath) {
				return &FormatError{File: indexPath, Tensor: name, Reason: fmt.Sprintf(
					"shard %s named in the index is missing; download the complete checkpoint", shardPath)}
			}
			var err error
			f, err = openSafetensorsFile(shardPath)
			if err != nil {
				return err
			}
			shards[shard] = f
			c.files = append(c.files, f)
		}
		info, ok := f.tensors[name]
		if !ok {
			return &FormatError{File: f.path, Tensor: name, Reason: fmt.Sprintf(
				"tensor is listed in %s but not stored in this shard", filepath.Base(indexPath))}
		}
		c.infos[name] = info
		c.owners[name] = f
	}
	for _, f := range c.files {
		if extra := len(f.tensors) - countOwned(c.owners, f); extra > 0 {
			slog.Debug("ignoring shard tensors absent from the index", "shard", f.path, "count", extra)
		}
	}
	return nil
}

// countOwned counts the tensors attributed to f.
func countOwned(owners map[string]*safetensorsFile, f *safetensorsFile) int {
	n := 0
	for _, o := range owners {
		if o == f {
			n++
		}
	}
	return n
}

// Dir returns the directory of the checkpoint, where config.json is expected.
func (c *Checkpoint) Dir() string { return c.dir }

// Names returns the tensor names in increasing order, in a new slice.
func (c *Checkpoint) Names() []string { return slices.Clone(c.names) }

// Info returns the description of the named tensor and whether it exists.
func (c *Checkpoint) Info(name string) (TensorInfo, bool) {
	info, ok := c.infos[name]
	if ok {
		info.Shape = append([]int64(nil), info.Shape...)
	}
	return info, ok
}

// notFound builds the error for a tensor name absent from the checkpoint.
func (c *Checkpoint) notFound(name string) error {
	return fmt.Errorf("tensor %q not found in checkpoint %s (%d tensors; list them with Names)", name, c.dir, len(c.names))
}

// Source returns a lazy reference to the named tensor's bytes. Bytes maps the
// file on first use and returns a read-only view that stays valid until
// Close. Reading the view after Close is a memory fault.
func (c *Checkpoint) Source(name string) (ir.WeightSource, error) {
	info, ok := c.infos[name]
	if !ok {
		return nil, c.notFound(name)
	}
	return &weightSource{file: c.owners[name], info: info}, nil
}

// Tensor copies the named tensor out of the file into memory, in its stored
// dtype (F16 and BF16 as []uint16 bit patterns).
func (c *Checkpoint) Tensor(name string) (*ir.Tensor, error) {
	info, raw, err := c.raw(name)
	if err != nil {
		return nil, err
	}
	return decodeTensor(info, raw)
}

// TensorF32 returns the named F32, F16 or BF16 tensor converted to float32.
// Other dtypes are an error.
func (c *Checkpoint) TensorF32(name string) ([]float32, error) {
	info, raw, err := c.raw(name)
	if err != nil {
		return nil, err
	}
	out, err := decodeF32(info, raw)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", info.File, err)
	}
	return out, nil
}

// raw returns the info and mapped bytes of the named tensor.
func (c *Checkpoint) raw(name string) (TensorInfo, []byte, error) {
	info, ok := c.infos[name]
	if !ok {
		return TensorInfo{}, nil, c.notFound(name)
	}
	raw, err := c.owners[name].bytes(info)
	if err != nil {
		return TensorInfo{}, nil, err
	}
	return info, raw, nil
}

// Close unmaps and closes every file. Views returned by Source(...).Bytes
// must not be used afterwards. Calling Close twice is safe.
func (c *Checkpoint) Close() error {
	var errs []error
	for _, f := range c.files {
		if err := f.close(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
