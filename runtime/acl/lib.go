package acl

/*
#cgo LDFLAGS: -ldl
#include <stdlib.h>
#include "shim.h"
*/
import "C"

import (
	"fmt"
	"log/slog"
	"os"
	"sync"
	"unsafe"
)

// Lib is a loaded libascendcl.so with every function the binding calls
// already resolved. A Lib stays loaded for the life of the process.
type Lib struct {
	// path is the file name that Load passed to dlopen.
	path string
	// handle is the dlopen handle; it is never closed.
	handle unsafe.Pointer
	// api is the C table of function pointers, allocated with C.calloc.
	api *C.macl_api

	// mu guards the process-wide initialisation state below.
	mu sync.Mutex
	// sessions counts the open sessions that rely on aclInit.
	sessions int
	// ownsInit records that this Lib's aclInit succeeded, so the last
	// session to close must call aclFinalize. It is false when aclInit
	// returned ACL_ERROR_REPEAT_INITIALIZE because other code in the process
	// initialised AscendCL and remains responsible for finalising it.
	ownsInit bool
}

var (
	// libsMu guards libs.
	libsMu sync.Mutex
	// libs maps dlopen handles to their Lib. dlopen returns the same handle
	// for the same library, and aclInit/aclFinalize are process-wide, so one
	// Lib per handle keeps a single count of the sessions that need them.
	libs = map[unsafe.Pointer]*Lib{}
)

// Load opens libascendcl.so and resolves every symbol the binding uses.
// The path comes from libPath, else from the MMADAC_ACL_LIB environment
// variable, else DefaultLibrary through the loader's search path. A library
// that cannot be opened or lacks a symbol yields an error that wraps
// ErrUnavailable and explains how to fix the setup.
func Load(libPath string) (*Lib, error) {
	path := libPath
	if path == "" {
		path = os.Getenv(EnvLibrary)
	}
	if path == "" {
		path = DefaultLibrary
	}

	cpath := C.CString(path)
	defer C.free(unsafe.Pointer(cpath))
	var errBuf [512]C.char
	handle := C.macl_dlopen(cpath, &errBuf[0], C.size_t(len(errBuf)))
	if handle == nil {
		return nil, fmt.Errorf("%w: cannot load %q: %s; source the CANN environment script "+
			"(for example /usr/local/Ascend/ascend-toolkit/set_env.sh) so that LD_LIBRARY_PATH "+
			"reaches libascendcl.so, or set %s to the library's path",
			ErrUnavailable, path, C.GoString(&errBuf[0]), EnvLibrary)
	}

	libsMu.Lock()
	defer libsMu.Unlock()
	if lib, ok := libs[handle]; ok {
		// Drop the reference this dlopen added; the cached Lib holds one.
		C.macl_dlclose(handle)
		return lib, nil
	}

	api := (*C.macl_api)(C.calloc(1, C.sizeof_macl_api))
	var missing *C.char
	if C.macl_resolve(handle, api, &missing) != C.MACL_OPEN_OK {
		C.free(unsafe.Pointer(api))
		C.macl_dlclose(handle)
		return nil, fmt.Errorf("%w: %q has no symbol %s; it is not an AscendCL runtime library "+
			"or its CANN version is too old, so point %s at the libascendcl.so of the installed CANN toolkit",
			ErrUnavailable, path, C.GoString(missing), EnvLibrary)
	}

	lib := &Lib{path: path, handle: handle, api: api}
	libs[handle] = lib
	slog.Debug("acl: library loaded", "path", path, "recent_err_msg", api.aclGetRecentErrMsg != nil)
	return lib, nil
}

// Path returns the path that Load passed to dlopen.
func (l *Lib) Path() string { return l.path }

// check turns a non-zero aclError of call into an *Error. It must run on
// the thread that made the call, because aclGetRecentErrMsg reads
// thread-local state.
func (l *Lib) check(call string, rc C.macl_error) error {
	if rc == codeSuccess {
		return nil
	}
	return newError(call, int(rc), l.recentMessage())
}

// checkNull reports a NULL result of call as an *Error with CodeNull.
func (l *Lib) checkNull(call string, p unsafe.Pointer) error {
	if p != nil {
		return nil
	}
	return newError(call, CodeNull, l.recentMessage())
}

// recentMessage returns aclGetRecentErrMsg's text, or "" when the library
// lacks the function.
func (l *Lib) recentMessage() string {
	msg := C.macl_aclGetRecentErrMsg(l.api)
	if msg == nil {
		return ""
	}
	return C.GoString(msg)
}

// acquireInit calls aclInit(NULL) for the first session of the process and
// counts the session. ACL_ERROR_REPEAT_INITIALIZE means that other code
// already initialised AscendCL, which the documentation says to ignore.
func (l *Lib) acquireInit() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.sessions == 0 {
		rc := C.macl_aclInit(l.api, nil)
		switch {
		case rc == codeSuccess:
			l.ownsInit = true
		case rc == codeRepeatInitialize:
			l.ownsInit = false
			slog.Debug("acl: aclInit reports AscendCL already initialised; leaving aclFinalize to its owner")
		default:
			return l.check("aclInit", rc)
		}
	}
	l.sessions++
	return nil
}

// releaseInit uncounts a session and calls aclFinalize when it was the last
// one and this Lib's aclInit succeeded.
//
// NOTE: whether a real CANN runtime accepts aclInit again after aclFinalize
// in the same process has not been checked on hardware. A program that
// opens, closes and reopens sessions can keep one idle session open to keep
// AscendCL initialised.
func (l *Lib) releaseInit() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.sessions--
	if l.sessions > 0 || !l.ownsInit {
		return nil
	}
	l.ownsInit = false
	return l.check("aclFinalize", C.macl_aclFinalize(l.api))
}
