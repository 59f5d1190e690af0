package ort

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	ortgo "github.com/yalue/onnxruntime_go"

	"github.com/mmadac/mmadac/ir"
)

// Options configures a session.
type Options struct {
	// IntraOpThreads is the number of threads one operator may use. Zero
	// means AvailableCPUs(), which respects a cgroup CPU quota.
	IntraOpThreads int
	// GraphOptimization turns on all of ONNX Runtime's graph rewrites
	// (ORT_ENABLE_ALL); false disables them (ORT_DISABLE_ALL), which only
	// helps when debugging a rewrite. The zero Options leaves it off, so
	// start from DefaultOptions.
	GraphOptimization bool
	// OptimizedModelPath, when set, makes ONNX Runtime write the graph it
	// runs, after its own rewrites, to this file. Tests use it to check
	// that a lowering is fused as intended; people use it when tuning.
	OptimizedModelPath string
	// ExternalDataDir is the folder against which the external-data
	// locations of a model given as bytes resolve. Without it ONNX Runtime
	// resolves them against the current directory. Leave it empty for a
	// model file, whose own folder is used.
	ExternalDataDir string
}

// externalDataDirKey is ONNX Runtime's session configuration key for
// ExternalDataDir (onnxruntime_session_options_config_keys.h).
const externalDataDirKey = "session.model_external_initializers_file_folder_path"

// ProfileEnv names the environment variable that turns on ONNX Runtime's
// own profiler for every session: its value is the path prefix of the
// Chrome-trace JSON files, one per session, written when a session closes.
// It is a tuning aid; the per-op times let one see where a step goes.
const ProfileEnv = "MMADAC_ORT_PROFILE"

// DefaultOptions returns the settings for normal use: one thread per
// available CPU and all graph optimisations on.
func DefaultOptions() Options {
	return Options{GraphOptimization: true}
}

// Session runs one ONNX model in ONNX Runtime. Input shapes may change from
// call to call within what the model declares (symbolic dimensions such as
// batch or seq), and ONNX Runtime allocates the outputs.
//
// Run may be called from several goroutines at once, as ONNX Runtime
// allows. Close must not race with Run; it waits for running calls.
type Session struct {
	sess *ortgo.DynamicAdvancedSession
	// model names the model in messages: its path, or "model bytes".
	model string
	// inputs and outputs are the declared specs of the names the session
	// was created with, in that order.
	inputs, outputs []*valueSpec

	// mu is held for reading by Run and for writing by Close.
	mu     sync.RWMutex
	closed bool

	lastInputBytes  atomic.Int64
	lastOutputBytes atomic.Int64
}

// NewSession loads the model file at modelPath. inputs and outputs name the
// graph inputs that every Run supplies and the graph outputs it returns.
// External-data files are found relative to the model's directory.
func NewSession(modelPath string, inputs, outputs []string, opts Options) (*Session, error) {
	if err := Init(); err != nil {
		return nil, err
	}
	// The file is read once more here for its signature. A model above the
	// 2 GiB protobuf limit cannot exist, so this stays bounded; large
	// weights live in external-data files, which are not read.
	data, err := os.ReadFile(modelPath)
	if err != nil {
		return nil, fmt.Errorf("read ONNX model: %w", err)
	}
	return newSession(modelPath, data, inputs, outputs, opts, func(so *ortgo.SessionOptions) (*ortgo.DynamicAdvancedSession, error) {
		return ortgo.NewDynamicAdvancedSession(modelPath, inputs, outputs, so)
	})
}

// NewSessionFromBytes is NewSession for a serialized model in memory. ONNX
// Runtime resolves external-data locations of such a model against the
// current directory, so use NewSession for models with external weights.
func NewSessionFromBytes(model []byte, inputs, outputs []string, opts Options) (*Session, error) {
	if err := Init(); err != nil {
		return nil, err
	}
	return newSession("model bytes", model, inputs, outputs, opts, func(so *ortgo.SessionOptions) (*ortgo.DynamicAdvancedSession, error) {
		return ortgo.NewDynamicAdvancedSessionWithONNXData(model, inputs, outputs, so)
	})
}

func newSession(name string, model []byte, inputs, outputs []string, opts Options,
	create func(*ortgo.SessionOptions) (*ortgo.DynamicAdvancedSession, error)) (*Session, error) {
	sig, err := readSignature(model)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	s := &Session{model: name}
	if s.inputs, err = selectSpecs("input", inputs, sig.inputs); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if s.outputs, err = selectSpecs("output", outputs, sig.outputs); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}

	so, threads, err := sessionOptions(opts)
	if err != nil {
		return nil, err
	}
	defer so.Destroy()

	start := time.Now()
	slog.Debug("ort: creating session", "model", name, "threads", threads, "graph_optimization", opts.GraphOptimization)
	s.sess, err = create(so)
	if err != nil {
		return nil, fmt.Errorf("create ONNX Runtime session for %s: %w", name, err)
	}
	slog.Debug("ort: session ready", "model", name, "elapsed", time.Since(start))
	return s, nil
}

// sessionOptions translates opts; it returns the thread count it chose.
func sessionOptions(opts Options) (*ortgo.SessionOptions, int, error) {
	threads := opts.IntraOpThreads
	if threads < 0 {
		return nil, 0, fmt.Errorf("Options.IntraOpThreads is %d; use a positive count or 0 for one per available CPU", threads)
	}
	if threads == 0 {
		threads = AvailableCPUs()
	}
	so, err := ortgo.NewSessionOptions()
	if err != nil {
		return nil, 0, fmt.Errorf("create ONNX Runtime session options: %w", err)
	}
	level := ortgo.GraphOptimizationLevel(ortgo.GraphOptimizationLevelDisableAll)
	if opts.GraphOptimization {
		level = ortgo.GraphOptimizationLevelEnableAll
	}
	if err := so.SetGraphOptimizationLevel(level); err != nil {
		so.Destroy()
		return nil, 0, fmt.Errorf("set graph optimization level: %w", err)
	}
	if err := so.SetIntraOpNumThreads(threads); err != nil {
		so.Destroy()
		return nil, 0, fmt.Errorf("set intra-op threads to %d: %w", threads, err)
	}
	if opts.OptimizedModelPath != "" {
		if err := so.SetOptimizedModelFilePath(opts.OptimizedModelPath); err != nil {
			so.Destroy()
			return nil, 0, fmt.Errorf("set the optimised model path %s: %w", opts.OptimizedModelPath, err)
		}
	}
	if opts.ExternalDataDir != "" {
		if err := so.AddSessionConfigEntry(externalDataDirKey, opts.ExternalDataDir); err != nil {
			so.Destroy()
			return nil, 0, fmt.Errorf("set the external data folder %s: %w", opts.ExternalDataDir, err)
		}
	}
	if prefix := os.Getenv(ProfileEnv); prefix != "" {
		// ONNX Runtime appends a timestamp and ".json" to the prefix and
		// writes the file when the session is destroyed. It writes
		// nothing and reports no error when the folder is missing.
		if fi, err := os.Stat(filepath.Dir(prefix)); err != nil || !fi.IsDir() {
			so.Destroy()
			return nil, 0, fmt.Errorf("%s=%s: folder %s does not exist; create it or unset %s", ProfileEnv, prefix, filepath.Dir(prefix), ProfileEnv)
		}
		if err := so.EnableProfiling(prefix); err != nil {
			so.Destroy()
			return nil, 0, fmt.Errorf("%s=%s: enable profiling: %w", ProfileEnv, prefix, err)
		}
	}
	return so, threads, nil
}

// InputNames returns the input names the session was created with.
func (s *Session) InputNames() []string { return specNames(s.inputs) }

// OutputNames returns the output names the session was created with.
func (s *Session) OutputNames() []string { return specNames(s.outputs) }

// LastOutputBytes returns the number of output bytes that the most
// recently finished Run copied from ONNX Runtime into Go memory. It
// measures host traffic per step.
func (s *Session) LastOutputBytes() int64 { return s.lastOutputBytes.Load() }

// LastInputBytes returns the size of the inputs of the most recently
// finished Run. Inputs are passed to ONNX Runtime without copying, except
// rank-0 tensors, so this counts bytes that ONNX Runtime reads from Go
// memory rather than bytes copied.
func (s *Session) LastInputBytes() int64 { return s.lastInputBytes.Load() }

// Run evaluates the model. inputs must contain exactly the session's input
// names. Each tensor must match the declared element type and fixed
// dimensions, and a symbolic dimension must have the same size in every
// input that uses it. The result maps each output name to a new tensor that
// the caller owns.
//
// Input data is read in place: it must not change until Run returns.
func (s *Session) Run(inputs map[string]*ir.Tensor) (map[string]*ir.Tensor, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return nil, fmt.Errorf("run %s: the session is closed", s.model)
	}

	dims, err := s.checkInputs(inputs)
	if err != nil {
		return nil, fmt.Errorf("run %s: %w", s.model, err)
	}

	var toDestroy []ortgo.Value
	defer func() {
		for _, v := range toDestroy {
			v.Destroy()
		}
	}()

	inValues := make([]ortgo.Value, len(s.inputs))
	var inBytes int64
	for i, spec := range s.inputs {
		t := inputs[spec.name]
		v, err := toOrtValue(t)
		if err != nil {
			return nil, fmt.Errorf("run %s: input %q: %w", s.model, spec.name, err)
		}
		inValues[i] = v
		toDestroy = append(toDestroy, v)
		inBytes += int64(t.Len() * t.DType.Size())
	}

	// ours marks the output values allocated here; the others are allocated
	// by ONNX Runtime during the run and converted by onnxruntime_go.
	outValues := make([]ortgo.Value, len(s.outputs))
	preallocated := make([]*ir.Tensor, len(s.outputs))
	ours := make([]bool, len(s.outputs))
	for i, spec := range s.outputs {
		v, t, err := preallocateOutput(spec, dims)
		if err != nil {
			return nil, fmt.Errorf("run %s: output %q: %w", s.model, spec.name, err)
		}
		if v != nil {
			outValues[i], preallocated[i], ours[i] = v, t, true
			toDestroy = append(toDestroy, v)
		}
	}

	err = s.sess.Run(inValues, outValues)
	runtime.KeepAlive(inputs)
	// Whatever happened, the values that ONNX Runtime allocated belong to
	// this call now.
	for i, v := range outValues {
		if v != nil && !ours[i] {
			toDestroy = append(toDestroy, v)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("run %s: %w", s.model, err)
	}

	result := make(map[string]*ir.Tensor, len(s.outputs))
	var outBytes int64
	for i, spec := range s.outputs {
		t, err := collectOutput(spec, outValues[i], preallocated[i])
		if err != nil {
			return nil, fmt.Errorf("run %s: output %q: %w", s.model, spec.name, err)
		}
		result[spec.name] = t
		outBytes += int64(t.Len() * t.DType.Size())
	}
	s.lastInputBytes.Store(inBytes)
	s.lastOutputBytes.Store(outBytes)
	return result, nil
}

// collectOutput turns the value of one output into a tensor. The tensor
// keeps no reference to v, which the caller destroys.
func collectOutput(spec *valueSpec, v ortgo.Value, pre *ir.Tensor) (*ir.Tensor, error) {
	if pre != nil {
		return pre, nil // ONNX Runtime wrote into pre's memory
	}
	if v == nil {
		return nil, fmt.Errorf("internal error: ONNX Runtime returned no value")
	}
	t, err := fromOrtValue(v)
	if err != nil {
		return nil, err
	}
	if t.DType != spec.dtype {
		return nil, fmt.Errorf("the model declares %v but ONNX Runtime returned %v", spec.dtype, t.DType)
	}
	return t, nil
}

// preallocateOutput allocates the outputs that onnxruntime_go v1.27.0
// cannot allocate itself and returns the value for ONNX Runtime to write
// into together with the tensor that receives the data. It returns nil
// values for outputs that ONNX Runtime allocates.
//
// NOTE: onnxruntime_go v1.27.0 copies an ORT-allocated float16 or bfloat16
// output with one byte per element instead of two, and it rejects rank-0
// outputs. Such outputs therefore need their shape before the run, taking
// fixed dimensions from the model and symbolic ones from the inputs. An output whose shape
// depends on data (not on input shapes) cannot be float16 here; cast it to
// float in the model.
func preallocateOutput(spec *valueSpec, dims map[string]dimBinding) (ortgo.Value, *ir.Tensor, error) {
	half := spec.dtype == ir.F16 || spec.dtype == ir.BF16
	scalar := spec.dims != nil && len(spec.dims) == 0
	if !half && !scalar {
		return nil, nil, nil
	}
	if scalar {
		v, err := emptyScalarValue(spec.dtype)
		return v, nil, err
	}
	if spec.dims == nil {
		return nil, nil, fmt.Errorf("a %v output needs a declared shape with onnxruntime_go v1.27.0, and the model declares none; cast it to float in the model", spec.dtype)
	}
	shape := make([]int64, len(spec.dims))
	for i, d := range spec.dims {
		switch {
		case d.size >= 0:
			shape[i] = d.size
		case d.param != "" && dims[d.param].known:
			shape[i] = dims[d.param].size
		default:
			return nil, nil, fmt.Errorf("a %v output needs its shape before the run with onnxruntime_go v1.27.0, but dimension %d (%s) of %s is not fixed by any input; cast it to float in the model",
				spec.dtype, i, d, spec.shapeString())
		}
	}
	t := ir.NewTensor(spec.dtype, shape...)
	v, err := toOrtValue(t)
	if err != nil {
		return nil, nil, err
	}
	return v, t, nil
}

// dimBinding is the size that the inputs of one Run give a symbolic
// dimension, and where it came from.
type dimBinding struct {
	known  bool
	size   int64
	source string // "input a, dimension 0"
}

// checkInputs validates the inputs against the declared signature and
// returns the sizes of the symbolic dimensions.
func (s *Session) checkInputs(inputs map[string]*ir.Tensor) (map[string]dimBinding, error) {
	names := s.InputNames()
	var unknown []string
	for name := range inputs {
		if !slices.Contains(names, name) {
			unknown = append(unknown, name)
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return nil, fmt.Errorf("unknown input %q; the session's inputs are %q", unknown[0], names)
	}

	dims := map[string]dimBinding{}
	for _, spec := range s.inputs {
		t, ok := inputs[spec.name]
		if !ok {
			return nil, fmt.Errorf("missing input %q; the session's inputs are %q", spec.name, names)
		}
		if err := checkTensor(t); err != nil {
			return nil, fmt.Errorf("input %q: %w", spec.name, err)
		}
		if t.DType != spec.dtype {
			return nil, fmt.Errorf("input %q: expected dtype %v, got %v", spec.name, spec.dtype, t.DType)
		}
		if spec.dims == nil {
			continue
		}
		if len(t.Shape) != len(spec.dims) {
			return nil, fmt.Errorf("input %q: expected shape %s (rank %d), got %v (rank %d)",
				spec.name, spec.shapeString(), len(spec.dims), t.Shape, len(t.Shape))
		}
		for i, d := range spec.dims {
			got := t.Shape[i]
			switch {
			case d.size >= 0 && got != d.size:
				return nil, fmt.Errorf("input %q: expected shape %s, got %v: dimension %d must be %d",
					spec.name, spec.shapeString(), t.Shape, i, d.size)
			case d.param != "":
				b := dims[d.param]
				if b.known && b.size != got {
					return nil, fmt.Errorf("input %q: dimension %d (%s) is %d, but %s gave %s the size %d",
						spec.name, i, d.param, got, b.source, d.param, b.size)
				}
				dims[d.param] = dimBinding{known: true, size: got, source: fmt.Sprintf("input %q, dimension %d,", spec.name, i)}
			}
		}
	}
	return dims, nil
}

// Close releases the ONNX Runtime session. It waits for running calls of
// Run, and calling it again does nothing.
func (s *Session) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	if err := s.sess.Destroy(); err != nil {
		return fmt.Errorf("close session for %s: %w", s.model, err)
	}
	return nil
}
