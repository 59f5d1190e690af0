package engine

import (
	"errors"
	"fmt"
	"path/filepath"

	"github.com/mmadac/mmadac/codegen/bundle"
	"github.com/mmadac/mmadac/codegen/onnx"
	"github.com/mmadac/mmadac/frontend"
	"github.com/mmadac/mmadac/ir"
	"github.com/mmadac/mmadac/models/mmada"
)

// weightStore is the source of a text model's weights for its graphs: a
// checkpoint folder, or an onnx bundle's own files.
type weightStore interface {
	mmada.WeightStore
	// Dir is the folder that the weight files' locations are relative to.
	Dir() string
	Close() error
}

// bundleStore serves an onnx bundle's weights to the graph builders from
// the bundle itself: the initializers of its ONNX file, stored inline or
// in the safetensors files under weights/. The checkpoint the bundle was
// built from is never read, so a bundle keeps running after that folder
// moves, and another checkpoint put at the old path cannot change its
// weights.
type bundleStore struct {
	dir    string
	infos  map[string]frontend.TensorInfo
	inline map[string][]byte
	owners map[string]*frontend.Checkpoint
	files  []*frontend.Checkpoint
}

var _ weightStore = (*bundleStore)(nil)

// openBundleStore indexes inits, the initializers of the bundle in dir.
// External ones must lie in safetensors files under dir at the offsets
// the files' headers give, as `mmadac build --weights external` links them.
func openBundleStore(dir string, inits []onnx.Initializer) (*bundleStore, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	s := &bundleStore{dir: abs, infos: map[string]frontend.TensorInfo{}, inline: map[string][]byte{}, owners: map[string]*frontend.Checkpoint{}}
	opened := map[string]*frontend.Checkpoint{}
	for _, in := range inits {
		size := int64(len(in.Data))
		if !in.External {
			s.infos[in.Name] = frontend.TensorInfo{Name: in.Name, DType: in.DType, Shape: in.Dims, Size: size}
			s.inline[in.Name] = in.Data
			continue
		}
		path, err := bundle.LocalPath(dir, in.Ref.Location)
		if err != nil {
			s.Close()
			return nil, err
		}
		file, ok := opened[path]
		if !ok {
			if file, err = frontend.OpenCheckpoint(path); err != nil {
				s.Close()
				return nil, err
			}
			opened[path] = file
			s.files = append(s.files, file)
		}
		info, ok := file.Info(in.Name)
		if !ok || info.Offset != in.Ref.Offset {
			s.Close()
			return nil, fmt.Errorf("weight %s is missing from %s at offset %d, where the ONNX file records it", in.Name, filepath.Base(path), in.Ref.Offset)
		}
		s.infos[in.Name] = info
		s.owners[in.Name] = file
	}
	return s, nil
}

// Dir returns the bundle's folder.
func (s *bundleStore) Dir() string { return s.dir }

// Info implements mmada.WeightStore.
func (s *bundleStore) Info(name string) (frontend.TensorInfo, bool) {
	info, ok := s.infos[name]
	if ok {
		info.Shape = append([]int64(nil), info.Shape...)
	}
	return info, ok
}

// Source implements mmada.WeightStore.
func (s *bundleStore) Source(name string) (ir.WeightSource, error) {
	if data, ok := s.inline[name]; ok {
		return inlineSource(data), nil
	}
	if file, ok := s.owners[name]; ok {
		return file.Source(name)
	}
	return nil, fmt.Errorf("weight %s is missing from the bundle; build the bundle again", name)
}

// Close releases the mapped weight files.
func (s *bundleStore) Close() error {
	var errs []error
	for _, f := range s.files {
		errs = append(errs, f.Close())
	}
	s.files = nil
	return errors.Join(errs...)
}

// inlineSource is a weight stored inside a bundle's ONNX file, held in
// memory. It has no file of its own to link.
type inlineSource []byte

func (s inlineSource) Location() (string, int64, int64) { return "", 0, int64(len(s)) }

func (s inlineSource) Bytes() ([]byte, error) { return s, nil }
