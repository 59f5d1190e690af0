package ascend

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"time"

	"github.com/mmadac/mmadac/codegen/bundle"
	"github.com/mmadac/mmadac/codegen/onnx"
	"github.com/mmadac/mmadac/ir"
)

// WriteWeights writes every parameter of g to its own file in dir, named
// by onnx.PerTensorFile, which is where a model emitted with
// onnx.WeightsPerTensor looks for it. Each file holds the raw little-endian
// data and nothing else, so ATC reads it without an offset. It returns one
// entry per file, in parameter order, with the file's size and SHA-256.
//
// A source that implements io.WriterTo (passes.ConvertedSource does) is
// streamed; any other is read with Bytes. Blocks of zeros are left as
// holes, so a sparse checkpoint gives sparse weight files. Files are
// written through temporary names, and a failure removes the partial file
// and names the tensor.
func WriteWeights(g *ir.Graph, dir string) ([]bundle.WeightFile, error) {
	start := time.Now()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	names := map[string]string{}
	for _, p := range g.Params {
		file := onnx.PerTensorFile(p.Name)
		if other, dup := names[file]; dup {
			return nil, fmt.Errorf("weights %s and %s both map to file %s; rename one of the tensors", other, p.Name, file)
		}
		names[file] = p.Name
		if p.Source == nil {
			return nil, fmt.Errorf("weight %s has no data (a graph read back from text cannot be written)", p.Name)
		}
	}

	out := make([]bundle.WeightFile, len(g.Params))
	errs := make([]error, len(g.Params))
	jobs := make(chan int)
	var wg sync.WaitGroup
	// Hashing and float16 conversion are CPU-bound; a few workers use the
	// cores without holding many tensors at once.
	for range min(runtime.GOMAXPROCS(0), 4) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				out[i], errs[i] = writeWeight(g.Params[i], dir)
			}
		}()
	}
	for i := range g.Params {
		jobs <- i
	}
	close(jobs)
	wg.Wait()

	var total int64
	for i, err := range errs {
		if err != nil {
			return nil, err
		}
		total += out[i].Size
	}
	slog.Info("weights written", "dir", dir, "files", len(out), "bytes", total, "elapsed", time.Since(start).Round(time.Millisecond))
	return out, nil
}

// writeWeight writes one parameter and returns its manifest entry.
func writeWeight(p *ir.Value, dir string) (bundle.WeightFile, error) {
	name := onnx.PerTensorFile(p.Name)
	want := p.Type.Shape.NumElements() * int64(p.Type.DType.Size())
	tmp, err := os.CreateTemp(dir, ".tmp-weight-*")
	if err != nil {
		return bundle.WeightFile{}, err
	}
	fail := func(err error) (bundle.WeightFile, error) {
		tmp.Close()
		os.Remove(tmp.Name())
		return bundle.WeightFile{}, fmt.Errorf("writing weight %s to %s: %w", p.Name, name, err)
	}
	w := &sparseWriter{f: tmp, h: sha256.New()}
	if wt, ok := p.Source.(io.WriterTo); ok {
		if _, err := wt.WriteTo(w); err != nil {
			return fail(err)
		}
	} else if file, off, size := p.Source.Location(); file != "" {
		// Reading the file, rather than a memory map of it, keeps an 8B
		// checkpoint from staying resident while it is copied.
		if err := copySection(w, file, off, size); err != nil {
			return fail(err)
		}
	} else {
		data, err := p.Source.Bytes()
		if err != nil {
			return fail(err)
		}
		if _, err := w.Write(data); err != nil {
			return fail(err)
		}
	}
	if w.off != want {
		return fail(fmt.Errorf("the source gave %d bytes, %v%v needs %d", w.off, p.Type.DType, p.Type.Shape, want))
	}
	// Truncate sets the length when the file ends in a hole.
	if err := tmp.Truncate(w.off); err != nil {
		return fail(err)
	}
	if err := tmp.Close(); err != nil {
		return fail(err)
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return fail(err)
	}
	if err := os.Rename(tmp.Name(), filepath.Join(dir, name)); err != nil {
		return fail(err)
	}
	slog.Debug("weight written", "tensor", p.Name, "file", name, "bytes", w.off)
	return bundle.WeightFile{
		File: name, Tensor: p.Name, DType: p.Type.DType, Shape: p.Type.Shape.Sizes(),
		Size: w.off, SHA256: hex.EncodeToString(w.h.Sum(nil)),
	}, nil
}

// copySection copies size bytes at off of file to w, a few MiB at a time.
func copySection(w io.Writer, file string, off, size int64) error {
	f, err := os.Open(file)
	if err != nil {
		return err
	}
	defer f.Close()
	n, err := io.CopyBuffer(w, io.NewSectionReader(f, off, size), make([]byte, 4<<20))
	if err != nil {
		return err
	}
	if n != size {
		return fmt.Errorf("%s ends after %d of the %d bytes at offset %d", file, n, size, off)
	}
	return nil
}

// holeBlock is the granularity of zero detection: a file system block.
const holeBlock = 4096

var zeroBlock [holeBlock]byte

// sparseWriter hashes everything written to it and writes it to f at the
// running offset, skipping whole blocks of zeros so they stay holes.
type sparseWriter struct {
	f   *os.File
	h   hash.Hash
	off int64
}

func (w *sparseWriter) Write(p []byte) (int, error) {
	w.h.Write(p)
	for done := 0; done < len(p); {
		n := min(holeBlock, len(p)-done)
		block := p[done : done+n]
		if n < holeBlock || !bytes.Equal(block, zeroBlock[:]) {
			if _, err := w.f.WriteAt(block, w.off); err != nil {
				return done, err
			}
		}
		w.off += int64(n)
		done += n
	}
	return len(p), nil
}
