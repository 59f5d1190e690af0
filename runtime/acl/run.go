package acl

/*
#include "shim.h"
*/
import "C"

import (
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"strings"
	"time"
	"unsafe"

	"github.com/mmadac/mmadac/ir"
)

// aclrtMemcpyKind values used by Run.
const (
	memcpyHostToDevice = 1
	memcpyDeviceToHost = 2
)

// runPlan is a validated Run request.
type runPlan struct {
	// host holds the bytes of each input, indexed like Session.in; the
	// entry of the gear input is nil.
	host [][]byte
	// gear is the index into Session.gears to select, or -1 for a model
	// without gears.
	gear int
}

// Run copies inputs to the device, executes the model and returns every
// output by name. inputs must contain exactly the tensors that Inputs
// lists, with their dtypes and shapes. A -1 dimension accepts any size, but
// the input shapes together must form one of the model's gears, which Run
// then selects. Output shapes of a model with gears come from
// aclmdlGetCurOutputDims. A failing AscendCL call is reported as an *Error,
// and the session stays usable afterwards.
func (s *Session) Run(inputs map[string]*ir.Tensor) (map[string]*ir.Tensor, error) {
	s.mu.Lock()
	closed := s.closed
	s.mu.Unlock()
	if closed {
		return nil, ErrClosed
	}

	plan, err := s.plan(inputs)
	if err != nil {
		return nil, err
	}

	start := time.Now()
	var outputs map[string]*ir.Tensor
	err = s.call(func() error {
		var err error
		outputs, err = s.execute(plan)
		return err
	})
	if errors.Is(err, ErrClosed) {
		return nil, err
	}
	if err != nil {
		return nil, fmt.Errorf("acl: run %s: %w", s.modelPath, err)
	}
	slog.Debug("acl: model executed", "model", s.modelPath, "gear", plan.gear, "elapsed", time.Since(start))
	return outputs, nil
}

// plan checks inputs against the model description and picks the gear.
func (s *Session) plan(inputs map[string]*ir.Tensor) (*runPlan, error) {
	known := map[string]bool{}
	for _, b := range s.in {
		if !b.isGearInput {
			known[b.info.Name] = true
		}
	}
	names := make([]string, 0, len(inputs))
	for name := range inputs {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		switch {
		case name == GearInputName && s.gearIndex >= 0:
			return nil, fmt.Errorf("acl: input %q is filled from the shapes of the other inputs; leave it out", name)
		case !known[name]:
			return nil, fmt.Errorf("acl: unknown input %q; the model's inputs are %s", name, s.describeInputs())
		}
	}

	p := &runPlan{host: make([][]byte, len(s.in)), gear: -1}
	for _, b := range s.in {
		if b.isGearInput {
			continue
		}
		t := inputs[b.info.Name]
		if t == nil {
			return nil, fmt.Errorf("acl: missing input %q (%v%v); the model's inputs are %s",
				b.info.Name, b.info.DType, b.info.Shape, s.describeInputs())
		}
		host, err := checkInput(b.info, t)
		if err != nil {
			return nil, err
		}
		p.host[b.info.Index] = host
	}

	if s.gearIndex >= 0 {
		gear, err := s.selectGear(inputs)
		if err != nil {
			return nil, err
		}
		p.gear = gear
	}
	return p, nil
}

// checkInput validates t against info and returns its bytes.
func checkInput(info TensorInfo, t *ir.Tensor) ([]byte, error) {
	if t.DType != info.DType {
		return nil, fmt.Errorf("acl: input %q: dtype %v, the model expects %v", info.Name, t.DType, info.DType)
	}
	if !shapeFits(t.Shape, info.Shape) {
		return nil, fmt.Errorf("acl: input %q: shape %v, the model expects %v (-1 marks a dimension set by a gear)",
			info.Name, t.Shape, info.Shape)
	}
	host, err := hostBytes(t)
	if err != nil {
		return nil, fmt.Errorf("acl: input %q: %w", info.Name, err)
	}
	if int64(len(host)) > info.Size {
		return nil, fmt.Errorf("acl: input %q: %d bytes exceed the model's buffer of %d bytes",
			info.Name, len(host), info.Size)
	}
	return host, nil
}

// shapeFits reports whether shape has the rank of model and equals it in
// every dimension that model fixes.
func shapeFits(shape, model []int64) bool {
	if len(shape) != len(model) {
		return false
	}
	for i, d := range shape {
		if d < 0 || (model[i] >= 0 && d != model[i]) {
			return false
		}
	}
	return true
}

// selectGear returns the index of the gear equal to the concatenated shapes
// of the gear-carrying inputs.
func (s *Session) selectGear(inputs map[string]*ir.Tensor) (int, error) {
	var want []int64
	parts := make([]string, len(s.gearLayout))
	for i, b := range s.gearLayout {
		shape := inputs[b.info.Name].Shape
		want = append(want, shape...)
		parts[i] = fmt.Sprintf("%s%v", b.info.Name, shape)
	}
	for i, gear := range s.gears {
		if slices.Equal(gear, want) {
			return i, nil
		}
	}
	return -1, fmt.Errorf("acl: no gear matches the input shapes %s (dims %v); the model's gears are %v, "+
		"so pad the inputs to one of them", strings.Join(parts, " "), want, s.gears)
}

// describeInputs formats the expected inputs as "[x f32[2 3], ...]".
func (s *Session) describeInputs() string {
	var parts []string
	for _, info := range s.Inputs() {
		parts = append(parts, fmt.Sprintf("%s %v%v", info.Name, info.DType, info.Shape))
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

// execute runs a validated request on the worker thread.
func (s *Session) execute(p *runPlan) (map[string]*ir.Tensor, error) {
	l := s.lib
	if p.gear >= 0 {
		rc := C.macl_aclmdlSetInputDynamicDims(l.api, s.modelID, s.inDataset, C.size_t(s.gearIndex), &s.gearDims[p.gear])
		if err := l.check("aclmdlSetInputDynamicDims", rc); err != nil {
			return nil, fmt.Errorf("select gear %v: %w", s.gears[p.gear], err)
		}
	}

	for i, host := range p.host {
		if len(host) == 0 {
			continue
		}
		b := s.in[i]
		rc := C.macl_aclrtMemcpy(l.api, b.dev, C.size_t(b.info.Size), unsafe.Pointer(&host[0]), C.size_t(len(host)), memcpyHostToDevice)
		if err := l.check("aclrtMemcpy", rc); err != nil {
			return nil, fmt.Errorf("copy input %q to the device: %w", b.info.Name, err)
		}
	}

	if err := l.check("aclmdlExecute", C.macl_aclmdlExecute(l.api, s.modelID, s.inDataset, s.outDataset)); err != nil {
		return nil, err
	}

	outputs := make(map[string]*ir.Tensor, len(s.out))
	for _, b := range s.out {
		t, err := s.readOutput(b, p.gear >= 0)
		if err != nil {
			return nil, err
		}
		outputs[b.info.Name] = t
	}
	return outputs, nil
}

// readOutput copies one output to the host. With gears its shape comes
// from aclmdlGetCurOutputDims; otherwise the static shape of the
// description applies.
func (s *Session) readOutput(b *ioBuffer, hasGear bool) (*ir.Tensor, error) {
	l := s.lib
	shape := b.info.Shape
	if hasGear {
		var dims C.macl_iodims
		rc := C.macl_aclmdlGetCurOutputDims(l.api, s.desc, C.size_t(b.info.Index), &dims)
		if err := l.check("aclmdlGetCurOutputDims", rc); err != nil {
			return nil, fmt.Errorf("output %q: %w", b.info.Name, err)
		}
		var err error
		if shape, err = goDims(&dims); err != nil {
			return nil, fmt.Errorf("output %q: %w", b.info.Name, err)
		}
	}
	for _, d := range shape {
		if d < 0 {
			return nil, fmt.Errorf("output %q: the runtime reports shape %v with a negative dimension", b.info.Name, shape)
		}
	}
	size := ir.NumElements(shape) * int64(b.info.DType.Size())
	if size > b.info.Size {
		return nil, fmt.Errorf("output %q: shape %v needs %d bytes, more than its buffer of %d bytes",
			b.info.Name, shape, size, b.info.Size)
	}

	t := ir.NewTensor(b.info.DType, shape...)
	if size == 0 {
		return t, nil
	}
	// Go requires every bool byte to be 0 or 1, which device memory does
	// not promise, so bool outputs go through a byte buffer.
	var dst []byte
	if b.info.DType == ir.Bool {
		dst = make([]byte, size)
	} else {
		var err error
		if dst, err = hostBytes(t); err != nil {
			return nil, fmt.Errorf("output %q: %w", b.info.Name, err)
		}
	}
	rc := C.macl_aclrtMemcpy(l.api, unsafe.Pointer(&dst[0]), C.size_t(len(dst)), b.dev, C.size_t(len(dst)), memcpyDeviceToHost)
	if err := l.check("aclrtMemcpy", rc); err != nil {
		return nil, fmt.Errorf("copy output %q to the host: %w", b.info.Name, err)
	}
	if b.info.DType == ir.Bool {
		values := t.Bools()
		for i, v := range dst {
			values[i] = v != 0
		}
	}
	return t, nil
}

// hostBytes returns the bytes of t's data without copying. It checks that
// the Go type of the data matches t.DType and that the element count
// matches t.Shape.
func hostBytes(t *ir.Tensor) ([]byte, error) {
	var (
		n     int
		first unsafe.Pointer
		ok    bool
	)
	switch d := t.Data.(type) {
	case []float32:
		n, first, ok = len(d), unsafe.Pointer(unsafe.SliceData(d)), t.DType == ir.F32
	case []float64:
		n, first, ok = len(d), unsafe.Pointer(unsafe.SliceData(d)), t.DType == ir.F64
	case []int64:
		n, first, ok = len(d), unsafe.Pointer(unsafe.SliceData(d)), t.DType == ir.I64
	case []int32:
		n, first, ok = len(d), unsafe.Pointer(unsafe.SliceData(d)), t.DType == ir.I32
	case []bool:
		n, first, ok = len(d), unsafe.Pointer(unsafe.SliceData(d)), t.DType == ir.Bool
	case []uint16:
		n, first, ok = len(d), unsafe.Pointer(unsafe.SliceData(d)), t.DType == ir.F16 || t.DType == ir.BF16
	default:
		return nil, fmt.Errorf("data of Go type %T is not a tensor slice", t.Data)
	}
	if !ok {
		return nil, fmt.Errorf("data of Go type %T does not hold dtype %v", t.Data, t.DType)
	}
	if want := ir.NumElements(t.Shape); int64(n) != want {
		return nil, fmt.Errorf("data holds %d elements, but shape %v needs %d", n, t.Shape, want)
	}
	if n == 0 {
		return nil, nil
	}
	return unsafe.Slice((*byte)(first), n*t.DType.Size()), nil
}
