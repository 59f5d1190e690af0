package bundle

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"github.com/mmadac/mmadac/internal/atomicfile"
	"github.com/mmadac/mmadac/ir"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// Write encodes m and writes it to dir/ManifestFile through a temporary
// file and a rename, so a failed write leaves no partial manifest.
func Write(dir string, m *Manifest) error {
	data, err := Encode(m)
	if err != nil {
		return err
	}
	path := filepath.Join(dir, ManifestFile)
	if err := atomicfile.WriteBytes(path, data, 0o644); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}

// IsBundle reports whether dir holds a bundle manifest.
func IsBundle(dir string) bool {
	st, err := os.Stat(filepath.Join(dir, ManifestFile))
	return err == nil && st.Mode().IsRegular()
}

// Read reads and decodes dir/ManifestFile. It does not check the weight
// files; call VerifyWeights for that.
func Read(dir string) (*Manifest, error) {
	path := filepath.Join(dir, ManifestFile)
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%s is not a bundle: %s is missing; build one with mmadac build", dir, ManifestFile)
	}
	if err != nil {
		return nil, err
	}
	m, err := Decode(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return m, nil
}

// HashFile returns the lowercase hex SHA-256 of a file and its size.
func HashFile(path string) (string, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return "", 0, fmt.Errorf("hashing %s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}

// LocalPath resolves a path recorded in a manifest against the bundle
// folder. It rejects absolute paths and paths that leave the folder, so a
// manifest cannot make a reader open files elsewhere.
func LocalPath(dir, rel string) (string, error) {
	if !filepath.IsLocal(filepath.FromSlash(rel)) {
		return "", fmt.Errorf("bundle path %q is absolute or leaves the bundle folder", rel)
	}
	return filepath.Join(dir, filepath.FromSlash(rel)), nil
}

// VerifyWeights checks every weight file of m inside dir: it must exist,
// have the recorded size and the recorded SHA-256. All mismatches are
// returned together, each naming the file and what differs.
func VerifyWeights(dir string, m *Manifest) error {
	start := time.Now()
	var errs []error
	var total int64
	v, _ := m.Option(WeightHashOption)
	headerOnly := v == WeightHashHeader
	for _, w := range m.Weights {
		path, err := LocalPath(dir, w.File)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		st, err := os.Stat(path)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", describeWeight(w), err))
			continue
		}
		if st.Size() != w.Size {
			errs = append(errs, fmt.Errorf("%s has %d bytes, the manifest records %d", describeWeight(w), st.Size(), w.Size))
			continue
		}
		hash := HashFile
		if headerOnly {
			hash = HeaderHash
		}
		sum, _, err := hash(path)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if sum != w.SHA256 {
			errs = append(errs, fmt.Errorf("%s has SHA-256 %s, the manifest records %s", describeWeight(w), sum, w.SHA256))
		}
		total += st.Size()
	}
	if len(errs) > 0 {
		advice := "rebuild the bundle"
		if headerOnly {
			advice = "the files are hard links of the checkpoint's own files (or copies of them), so check the checkpoint, then rebuild the bundle"
		}
		return fmt.Errorf("bundle %s: %d of %d weight files do not match the manifest; %s: %w",
			dir, len(errs), len(m.Weights), advice, errors.Join(errs...))
	}
	check := "SHA-256 of every byte"
	if headerOnly {
		check = "size and safetensors header only"
	}
	slog.Info("bundle weights checked", "bundle", dir, "files", len(m.Weights), "bytes", total, "check", check, "elapsed", time.Since(start).Round(time.Millisecond))
	return nil
}

// describeWeight names a manifest weight file in messages: with its
// tensor, or with what it holds when it holds many.
func describeWeight(w WeightFile) string {
	if strings.HasPrefix(w.Tensor, "(") {
		return fmt.Sprintf("weight file %s %s", w.File, w.Tensor)
	}
	return fmt.Sprintf("weight file %s of tensor %s", w.File, w.Tensor)
}

// Format prints the manifest for people: the header fields, the special
// tokens, each graph with its signature and gears, the schedules, the
// build options and a summary of the weight files (all of them when
// allWeights is set).
func Format(w io.Writer, m *Manifest, allWeights bool) error {
	var b strings.Builder
	fmt.Fprintf(&b, "bundle manifest (format %d)\n", FormatVersion)
	fmt.Fprintf(&b, "  kind:       %s\n  target:     %s\n  checkpoint: %s\n  created:    %s\n", m.Kind, m.Target, m.Checkpoint, m.Created)
	fmt.Fprintf(&b, "  config:     %d bytes of config.json\n", len(m.Config))
	if len(m.SpecialTokens) > 0 {
		b.WriteString("special tokens:\n")
		for _, name := range sortedKeys(m.SpecialTokens) {
			fmt.Fprintf(&b, "  %-14s %d\n", name, m.SpecialTokens[name])
		}
	}
	for _, g := range m.Graphs {
		fmt.Fprintf(&b, "graph %s:\n  onnx: %s\n", g.Name, orNone(g.ONNXFile))
		fmt.Fprintf(&b, "  om:   %s\n", orNone(g.OMFile))
		if g.SoC != "" {
			fmt.Fprintf(&b, "  soc:  %s\n", g.SoC)
		}
		for _, t := range g.Inputs {
			fmt.Fprintf(&b, "  input  %s\n", t)
		}
		for _, t := range g.Outputs {
			fmt.Fprintf(&b, "  output %s\n", t)
		}
		if len(g.Gears) > 0 {
			fmt.Fprintf(&b, "  gears (one value per -1 input dimension): %v\n", g.Gears)
		}
	}
	if len(m.Schedules) > 0 {
		b.WriteString("schedules:\n")
		for _, s := range m.Schedules {
			fmt.Fprintf(&b, "  %s ints=%v floats=%v\n", s.Name, s.Ints, s.Floats)
		}
	}
	if len(m.BuildOptions) > 0 {
		b.WriteString("build options:\n")
		for _, o := range m.BuildOptions {
			fmt.Fprintf(&b, "  %s = %s\n", o.Key, o.Value)
		}
	}
	var total int64
	for _, wf := range m.Weights {
		total += wf.Size
	}
	fmt.Fprintf(&b, "weights: %d files, %d bytes\n", len(m.Weights), total)
	hashLabel := "sha256"
	if v, _ := m.Option(WeightHashOption); v == WeightHashHeader {
		hashLabel = "header sha256"
	}
	for i, wf := range m.Weights {
		if !allWeights && i == 5 {
			fmt.Fprintf(&b, "  ... %d more (inspect --all lists them)\n", len(m.Weights)-5)
			break
		}
		what := fmt.Sprintf("%v%v", wf.DType, wf.Shape)
		if wf.DType == ir.InvalidDType {
			// A file holding many tensors (the model itself, or a
			// checkpoint shard) has no single dtype and shape.
			what = wf.Tensor
		}
		fmt.Fprintf(&b, "  %s  %s  %d bytes  %s %s\n", wf.File, what, wf.Size, hashLabel, wf.SHA256)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// String formats a tensor as "name f32[1,-1(seq)]".
func (t Tensor) String() string {
	parts := make([]string, len(t.Dims))
	for i, d := range t.Dims {
		parts[i] = fmt.Sprint(d)
		if i < len(t.Symbols) && t.Symbols[i] != "" {
			parts[i] += "(" + t.Symbols[i] + ")"
		}
	}
	return fmt.Sprintf("%s %v[%s]", t.Name, t.DType, strings.Join(parts, ","))
}

func sortedKeys(m map[string]int64) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

// Weight hash scopes, recorded as the build option WeightHashOption.
const (
	WeightHashOption = "weight_hash"
	// WeightHashHeader marks bundles whose weight files are checkpoint
	// shards linked in place. They are too large to hash on every build,
	// so each SHA256 covers only the safetensors header, and the size is
	// checked too.
	WeightHashHeader = "safetensors-header"
)

// HeaderHash returns the SHA-256 of a safetensors file's header (the
// length field and the JSON) and the file size.
func HeaderHash(path string) (string, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return "", 0, err
	}
	var lenBuf [8]byte
	if _, err := io.ReadFull(f, lenBuf[:]); err != nil {
		return "", 0, fmt.Errorf("%s: %w", path, err)
	}
	n := binary.LittleEndian.Uint64(lenBuf[:])
	if n > uint64(st.Size()) {
		return "", 0, fmt.Errorf("%s: header length %d exceeds the file", path, n)
	}
	h := sha256.New()
	h.Write(lenBuf[:])
	if _, err := io.CopyN(h, f, int64(n)); err != nil {
		return "", 0, fmt.Errorf("%s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), st.Size(), nil
}
