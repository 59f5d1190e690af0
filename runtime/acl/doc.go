// Package acl runs OM models, the files that Huawei's ATC compiles from
// ONNX, on Ascend NPUs through AscendCL.
//
// libascendcl.so is opened at run time with dlopen and never linked, so a
// binary with this package builds and runs on any machine. Only Load needs
// the library. Load takes the path from its argument, else from
// MMADAC_ACL_LIB, else lets the dynamic loader search for libascendcl.so,
// which the CANN set_env.sh script puts on LD_LIBRARY_PATH.
//
// Building needs cgo and a C compiler. A CGO_ENABLED=0 build keeps the
// API, but its Load always fails with ErrUnavailable.
//
// # Call sequence
//
// Lib.Open initialises AscendCL (aclInit, tolerating
// ACL_ERROR_REPEAT_INITIALIZE), sets the device, creates a context and a
// stream, loads the model from its file and reads the model description.
// It then allocates one device buffer per input and output, wraps each in
// an aclDataBuffer and adds those to an input and an output dataset. Session.Run copies the inputs to
// the device, selects the gear for models built with ATC --dynamic_dims,
// calls aclmdlExecute, reads the actual output shapes and copies the
// outputs back. Session.Close destroys everything in the reverse order.
// aclInit and aclFinalize are process-wide, so a Lib counts its open
// sessions and finalises only after the last one closes.
//
// # Threads
//
// An AscendCL context belongs to the OS thread that created it. Each
// Session therefore runs all its calls on one goroutine locked to one
// thread and receives work over a channel, so callers may use it from any
// goroutine.
//
// # Errors
//
// A non-zero aclError becomes an *Error that names the C function, the
// code, the code's name from the CANN headers and the text of
// aclGetRecentErrMsg. Calls that report failure with a NULL result carry
// CodeNull. Load's errors wrap ErrUnavailable.
//
// # Testing
//
// This package was tested only against a fake libascendcl.so, built by the
// tests from testdata/fakeacl/fakeacl.c, that follows the published
// AscendCL signatures and runs a model that copies each input to the
// output of the same index. It has never run on an NPU or against a real
// CANN installation. The signatures, enum values and error codes come from
// the public CANN 8.5 headers. The behaviour of real drivers and of older
// CANN releases may differ.
package acl
