package engine

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/mmadac/mmadac/codegen/bundle"
	"github.com/mmadac/mmadac/frontend"
	"github.com/mmadac/mmadac/internal/atomicfile"
)

// bundleIndexFile is the safetensors index an external build writes at the
// bundle's root. It maps every tensor to its file under weights/, so the
// bundle folder opens as a checkpoint of its own (config.json next to
// it), and a bundle runs after its source checkpoint has moved.
const bundleIndexFile = "model.safetensors.index.json"

// writeBundleIndex writes bundleIndexFile for the weight files under
// dir/weights, listing the tensors each file's header names.
func writeBundleIndex(dir string) (string, error) {
	files, err := filepath.Glob(filepath.Join(dir, "weights", "*.safetensors"))
	if err != nil {
		return "", err
	}
	weightMap := map[string]string{}
	for _, f := range files {
		ck, err := frontend.OpenCheckpoint(f)
		if err != nil {
			return "", err
		}
		rel := "weights/" + filepath.Base(f)
		for _, name := range ck.Names() {
			if other, dup := weightMap[name]; dup {
				ck.Close()
				return "", fmt.Errorf("tensor %s is stored in both %s and %s; pass a checkpoint that stores each tensor once", name, other, rel)
			}
			weightMap[name] = rel
		}
		if err := ck.Close(); err != nil {
			return "", err
		}
	}
	data, err := json.MarshalIndent(map[string]any{"metadata": map[string]any{"written_by": "mmadac build"}, "weight_map": weightMap}, "", "  ")
	if err != nil {
		return "", err
	}
	path := filepath.Join(dir, bundleIndexFile)
	return path, atomicfile.WriteBytes(path, data, 0o644)
}

// bundleSource returns the folder an onnx bundle's graphs are built from:
// the bundle itself when it indexes its own weights, else the checkpoint it
// was built from (inline builds, and bundles written before the index),
// which must still exist.
func bundleSource(path string, m *bundle.Manifest) (string, error) {
	if _, err := os.Stat(filepath.Join(path, bundleIndexFile)); err == nil {
		return path, nil
	}
	if st, err := os.Stat(m.Checkpoint); err == nil && st.IsDir() {
		return m.Checkpoint, nil
	}
	return "", fmt.Errorf("bundle %s was built from the checkpoint %s, which is missing; this bundle needs that folder to build its further graphs, so put it back at that path, or build the bundle again (with --weights external it then carries what it needs)", path, m.Checkpoint)
}
