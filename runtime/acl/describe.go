package acl

/*
#include <stdlib.h>
#include "shim.h"
*/
import "C"

import (
	"fmt"
	"slices"
	"strings"
	"unsafe"
)

// maxDims is ACL_MAX_DIM_CNT, the capacity of aclmdlIODims.dims.
const maxDims = 128

// maxGears bounds the gear count that readGears accepts. ATC documents at
// most 100 gears for --dynamic_dims; a larger count means a corrupt
// description.
const maxGears = 1024

// describe reads the name, data type, buffer size and dims of every input
// and output from the model description.
func (s *Session) describe() error {
	l := s.lib
	numIn := int(C.macl_aclmdlGetNumInputs(l.api, s.desc))
	for i := range numIn {
		idx := C.size_t(i)
		name := C.macl_aclmdlGetInputNameByIndex(l.api, s.desc, idx)
		if err := l.checkNull("aclmdlGetInputNameByIndex", unsafe.Pointer(name)); err != nil {
			return fmt.Errorf("input %d: %w", i, err)
		}
		b := &ioBuffer{info: TensorInfo{Name: C.GoString(name), Index: i}}
		b.aclDType = int(C.macl_aclmdlGetInputDataType(l.api, s.desc, idx))
		b.info.Size = int64(C.macl_aclmdlGetInputSizeByIndex(l.api, s.desc, idx))
		var dims C.macl_iodims
		if err := l.check("aclmdlGetInputDims", C.macl_aclmdlGetInputDims(l.api, s.desc, idx, &dims)); err != nil {
			return fmt.Errorf("input %q: %w", b.info.Name, err)
		}
		shape, err := goDims(&dims)
		if err != nil {
			return fmt.Errorf("input %q: %w", b.info.Name, err)
		}
		b.info.Shape = shape
		s.in = append(s.in, b)
	}

	numOut := int(C.macl_aclmdlGetNumOutputs(l.api, s.desc))
	if numOut == 0 {
		return fmt.Errorf("the model reports no outputs; rebuild the OM file")
	}
	for i := range numOut {
		idx := C.size_t(i)
		name := C.macl_aclmdlGetOutputNameByIndex(l.api, s.desc, idx)
		if err := l.checkNull("aclmdlGetOutputNameByIndex", unsafe.Pointer(name)); err != nil {
			return fmt.Errorf("output %d: %w", i, err)
		}
		b := &ioBuffer{info: TensorInfo{Name: C.GoString(name), Index: i}}
		b.aclDType = int(C.macl_aclmdlGetOutputDataType(l.api, s.desc, idx))
		b.info.Size = int64(C.macl_aclmdlGetOutputSizeByIndex(l.api, s.desc, idx))
		var dims C.macl_iodims
		if err := l.check("aclmdlGetOutputDims", C.macl_aclmdlGetOutputDims(l.api, s.desc, idx, &dims)); err != nil {
			return fmt.Errorf("output %q: %w", b.info.Name, err)
		}
		shape, err := goDims(&dims)
		if err != nil {
			return fmt.Errorf("output %q: %w", b.info.Name, err)
		}
		b.info.Shape = shape
		s.out = append(s.out, b)
	}
	return nil
}

// checkDTypes converts the data types and checks the buffer sizes of every
// input and output except the gear input, whose type and contents the
// runtime manages.
func (s *Session) checkDTypes() error {
	check := func(kind string, b *ioBuffer) error {
		dt, err := FromACLDataType(b.aclDType)
		if err != nil {
			return fmt.Errorf("%s %q: %w", kind, b.info.Name, err)
		}
		b.info.DType = dt
		return nil
	}
	for _, b := range s.in {
		if b.isGearInput {
			continue
		}
		if err := check("input", b); err != nil {
			return err
		}
	}
	for _, b := range s.out {
		if err := check("output", b); err != nil {
			return err
		}
	}
	for _, b := range append(slices.Clone(s.in), s.out...) {
		if b.info.Size == 0 {
			// The runtime reports size 0 for a dimension without bound
			// (a dynamic-shape model), which this binding cannot allocate.
			return fmt.Errorf("%q has buffer size 0, so the model has a dimension without bound; "+
				"rebuild the OM with fixed shapes or with gears (ATC --dynamic_dims)", b.info.Name)
		}
	}
	return nil
}

// readGears finds the gear input and reads the gear list. A model without
// the gear input has no gears.
func (s *Session) readGears() error {
	l := s.lib
	named := -1
	for i, b := range s.in {
		if b.info.Name == GearInputName {
			named = i
		}
	}

	cname := C.CString(GearInputName)
	defer C.free(unsafe.Pointer(cname))
	var index C.size_t
	if err := l.check("aclmdlGetInputIndexByName", C.macl_aclmdlGetInputIndexByName(l.api, s.desc, cname, &index)); err != nil {
		if named < 0 {
			// The usual result for a model without gears.
			return nil
		}
		return fmt.Errorf("input %d is named %s: %w", named, GearInputName, err)
	}
	if int(index) >= len(s.in) {
		return fmt.Errorf("aclmdlGetInputIndexByName returned index %d for %s, but the model has %d inputs",
			index, GearInputName, len(s.in))
	}
	s.gearIndex = int(index)
	s.in[index].isGearInput = true

	var count C.size_t
	if err := l.check("aclmdlGetInputDynamicGearCount", C.macl_aclmdlGetInputDynamicGearCount(l.api, s.desc, &count)); err != nil {
		return err
	}
	if count == 0 {
		return fmt.Errorf("the model has the %s input but no --dynamic_dims gears; dynamic batch size "+
			"and dynamic image size models are not supported, so rebuild it with ATC --dynamic_dims", GearInputName)
	}
	if count > maxGears {
		return fmt.Errorf("the model reports %d gears, more than the maximum of %d", count, maxGears)
	}
	s.gearDims = make([]C.macl_iodims, count)
	if err := l.check("aclmdlGetInputDynamicDims", C.macl_aclmdlGetInputDynamicDims(l.api, s.desc, &s.gearDims[0], count)); err != nil {
		return err
	}
	for i := range s.gearDims {
		gear, err := goDims(&s.gearDims[i])
		if err != nil {
			return fmt.Errorf("gear %d: %w", i, err)
		}
		s.gears = append(s.gears, gear)
	}
	return s.chooseGearLayout()
}

// chooseGearLayout decides which inputs make up a gear vector.
// aclmdlGetInputDynamicDims concatenates the dims of the inputs named in
// ATC's --input_shape, in that option's order, with the gear's values in
// place of the -1 dims. The runtime does not report that list, so this
// tries the two forms mmadac's build writes: every input, or only the
// inputs with -1 dims, both in model order. The first whose static dims
// agree with every gear wins.
//
// NOTE: a model built with an --input_shape in another order than the
// model's inputs is rejected here, since its gears cannot be mapped to
// input names from the description alone.
func (s *Session) chooseGearLayout() error {
	var all, dynamic []*ioBuffer
	for _, b := range s.in {
		if b.isGearInput {
			continue
		}
		all = append(all, b)
		if slices.Contains(b.info.Shape, -1) {
			dynamic = append(dynamic, b)
		}
	}
	for _, layout := range [][]*ioBuffer{all, dynamic} {
		if s.layoutFits(layout) {
			s.gearLayout = layout
			return nil
		}
	}
	return fmt.Errorf("the gears %v match neither the dims of all inputs %s nor those of the inputs with -1 dims %s; "+
		"rebuild the OM with --input_shape listing the inputs in model order",
		s.gears, describeLayout(all), describeLayout(dynamic))
}

// layoutFits reports whether every gear has the total rank of layout and
// agrees with its static dims.
func (s *Session) layoutFits(layout []*ioBuffer) bool {
	if len(layout) == 0 {
		return false
	}
	for _, gear := range s.gears {
		pos := 0
		for _, b := range layout {
			for _, d := range b.info.Shape {
				if pos >= len(gear) {
					return false
				}
				if (d >= 0 && gear[pos] != d) || gear[pos] < 0 {
					return false
				}
				pos++
			}
		}
		if pos != len(gear) {
			return false
		}
	}
	return true
}

// describeLayout formats inputs as "[x[1 -1] mask[-1 -1]]" for messages.
func describeLayout(layout []*ioBuffer) string {
	parts := make([]string, len(layout))
	for i, b := range layout {
		parts[i] = fmt.Sprintf("%s%v", b.info.Name, b.info.Shape)
	}
	return "[" + strings.Join(parts, " ") + "]"
}

// goDims copies the dims of an aclmdlIODims.
func goDims(d *C.macl_iodims) ([]int64, error) {
	n := int(d.dimCount)
	if n > maxDims {
		return nil, fmt.Errorf("the runtime reports %d dims, more than the maximum of %d", n, maxDims)
	}
	dims := make([]int64, n)
	for i := range n {
		dims[i] = int64(d.dims[i])
	}
	return dims, nil
}
