// Package ort runs ONNX models in ONNX Runtime, the backend for users
// without an NPU. It wraps github.com/yalue/onnxruntime_go and converts
// between ir.Tensor and ONNX Runtime values.
//
// # Loading the library at run time
//
// onnxruntime_go does not link ONNX Runtime: Init opens the shared library
// with dlopen when the first session is created. mmadac therefore builds
// and runs everywhere without ONNX Runtime installed, and only this backend
// needs it. The library is the file named by MMADAC_ORT_LIB, or else the
// copy that scripts/setup.sh installs from the onnxruntime-node npm package
// (version 1.30.0 is the one tested) under
// ${MMADAC_CACHE:-$HOME/.cache/mmadac}. A missing or unloadable library
// yields an error with install instructions, not a crash. Init runs once per
// process and its error is permanent, because a process cannot load the
// library a second time.
//
// # Sessions
//
// NewSession uses onnxruntime_go's dynamic session API, so each Run may
// bind inputs of new shapes (another sequence length or batch size) and
// ONNX Runtime allocates the outputs. Before a run, the inputs are checked
// against the graph signature read from the model file: names, element
// types, fixed dimensions, and symbolic dimensions that must agree across
// inputs. Errors name the input and give the expected and actual values.
//
// onnxruntime_go v1.27.0 cannot return float16, bfloat16 or rank-0 outputs
// that ONNX Runtime allocates (it copies too few bytes of 16-bit floats and
// rejects empty shapes). Session allocates such outputs itself before the
// run, from the declared output shape with symbolic dimensions taken from
// the inputs; an output of that kind whose shape depends on data is
// rejected with a hint to cast it to float in the model.
//
// # Host traffic
//
// Inputs are handed to ONNX Runtime without copying. Outputs are copied
// once, from ONNX Runtime's buffer into a Go slice that the returned
// ir.Tensor owns. The outputs that Session allocates itself are written
// by ONNX Runtime straight into Go memory. Session.LastOutputBytes reports
// the output bytes of the last run either way.
package ort
