package acl

/*
#include <stdlib.h>
#include "shim.h"
*/
import "C"

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"sync"
	"unsafe"
)

// mallocHugeFirst is ACL_MEM_MALLOC_HUGE_FIRST: huge pages when available,
// else normal pages.
const mallocHugeFirst = 0

// ioBuffer is one model input or output with its device memory. dev and
// buf are touched only on the session's worker thread; the other fields are
// read-only once Open returns.
type ioBuffer struct {
	info TensorInfo
	// aclDType is the aclDataType the model reports.
	aclDType int
	// isGearInput marks the GearInputName input.
	isGearInput bool
	// dev is the device memory from aclrtMalloc, nil until allocated.
	dev unsafe.Pointer
	// buf is the aclDataBuffer wrapping dev, nil until created.
	buf unsafe.Pointer
}

// Session is one OM model loaded on one device. Every AscendCL call of a
// session runs on a dedicated goroutine locked to one OS thread, because
// aclrtCreateContext binds the context to the calling thread and loading,
// executing and unloading must happen under that context. Callers may use a
// Session from any goroutine; Run calls are executed one at a time.
type Session struct {
	lib       *Lib
	modelPath string
	deviceID  int

	// work carries jobs to the worker goroutine; closed by shutdown.
	work chan func()
	// mu guards closed and serialises sends on work with its closing.
	mu     sync.Mutex
	closed bool

	// Set by open and read-only afterwards, so Run may read them on any
	// goroutine.
	in  []*ioBuffer // every model input, in model order
	out []*ioBuffer // every model output, in model order
	// gearIndex is the index of GearInputName among the inputs, or -1 for a
	// model without gears.
	gearIndex int
	// gears lists, per gear, the dims of the gear-carrying inputs
	// concatenated in gearLayout order, as aclmdlGetInputDynamicDims returns.
	gears [][]int64
	// gearDims holds the same gears as the C structs that
	// aclmdlSetInputDynamicDims takes.
	gearDims []C.macl_iodims
	// gearLayout lists the inputs whose dims make up a gear vector.
	gearLayout []*ioBuffer

	// Handles owned by the worker thread; nil or false until created.
	initAcquired bool
	deviceSet    bool
	ctx          unsafe.Pointer
	stream       unsafe.Pointer
	modelLoaded  bool
	modelID      C.uint32_t
	desc         unsafe.Pointer
	inDataset    unsafe.Pointer
	outDataset   unsafe.Pointer
}

// Open loads the OM file at modelPath onto device deviceID. It initialises
// AscendCL, sets the device, creates a context and a stream, loads the
// model, reads its description and allocates a device buffer for every
// input and output. On failure everything already created is destroyed
// before Open returns. A failing AscendCL call is reported as an *Error.
func (l *Lib) Open(modelPath string, deviceID int) (*Session, error) {
	if deviceID < 0 {
		return nil, fmt.Errorf("acl: invalid device id %d; use a value from 0 to the number of NPUs minus 1", deviceID)
	}
	if _, err := os.Stat(modelPath); err != nil {
		return nil, fmt.Errorf("acl: model file: %w", err)
	}

	s := &Session{
		lib:       l,
		modelPath: modelPath,
		deviceID:  deviceID,
		work:      make(chan func()),
		gearIndex: -1,
	}
	go s.loop()
	if err := s.call(s.open); err != nil {
		s.shutdown()
		return nil, fmt.Errorf("acl: open %s on device %d: %w", modelPath, deviceID, err)
	}

	slog.Info("acl: model loaded", "model", modelPath, "device", deviceID,
		"inputs", len(s.Inputs()), "outputs", len(s.out), "gears", len(s.gears))
	return s, nil
}

// loop executes jobs on one locked OS thread until work is closed. The
// goroutine exits still locked, so the Go runtime ends the thread instead
// of handing thread-local AscendCL state to another goroutine.
func (s *Session) loop() {
	runtime.LockOSThread()
	for job := range s.work {
		job()
	}
}

// call runs f on the worker thread and returns its error, or ErrClosed.
func (s *Session) call(f func() error) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrClosed
	}
	result := make(chan error, 1)
	s.work <- func() { result <- f() }
	s.mu.Unlock()
	return <-result
}

// shutdown marks the session closed and stops the worker after the jobs
// already sent.
func (s *Session) shutdown() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.closed {
		s.closed = true
		close(s.work)
	}
}

// Close destroys every resource of the session in the reverse order of
// creation: each output's data buffer and device memory, the output
// dataset, the same for the inputs, the model description, the model, the
// stream, the context, the device, and finally AscendCL itself when no
// other session uses it. A failing destroy call
// does not stop the others; all failures are joined into the result.
// Close is idempotent.
func (s *Session) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	result := make(chan error, 1)
	s.work <- func() { result <- s.release() }
	s.closed = true
	close(s.work)
	s.mu.Unlock()

	if err := <-result; err != nil {
		return fmt.Errorf("acl: close %s: %w", s.modelPath, err)
	}
	slog.Debug("acl: model unloaded", "model", s.modelPath, "device", s.deviceID)
	return nil
}

// Inputs returns the inputs that Run expects, in model order, without the
// gear input.
func (s *Session) Inputs() []TensorInfo {
	var infos []TensorInfo
	for _, b := range s.in {
		if !b.isGearInput {
			infos = append(infos, cloneInfo(b.info))
		}
	}
	return infos
}

// Outputs returns the outputs that Run returns, in model order.
func (s *Session) Outputs() []TensorInfo {
	infos := make([]TensorInfo, len(s.out))
	for i, b := range s.out {
		infos[i] = cloneInfo(b.info)
	}
	return infos
}

// Gears returns the model's gears as aclmdlGetInputDynamicDims reports
// them: per gear, the dims of the gear-carrying inputs concatenated in model
// order, with the gear's values in place of the -1 dims. It is empty for a
// model without gears.
func (s *Session) Gears() [][]int64 {
	gears := make([][]int64, len(s.gears))
	for i, g := range s.gears {
		gears[i] = append([]int64(nil), g...)
	}
	return gears
}

func cloneInfo(info TensorInfo) TensorInfo {
	info.Shape = append([]int64(nil), info.Shape...)
	return info
}

// open performs the creation sequence on the worker thread. On failure it
// releases what it created.
func (s *Session) open() (err error) {
	defer func() {
		if err == nil {
			return
		}
		if releaseErr := s.release(); releaseErr != nil {
			err = errors.Join(err, fmt.Errorf("cleanup after the failed open: %w", releaseErr))
		}
	}()

	l := s.lib
	if err := l.acquireInit(); err != nil {
		return err
	}
	s.initAcquired = true

	if err := l.check("aclrtSetDevice", C.macl_aclrtSetDevice(l.api, C.int32_t(s.deviceID))); err != nil {
		return err
	}
	s.deviceSet = true

	var ctx unsafe.Pointer
	if err := l.check("aclrtCreateContext", C.macl_aclrtCreateContext(l.api, &ctx, C.int32_t(s.deviceID))); err != nil {
		return err
	}
	s.ctx = ctx

	// The synchronous aclmdlExecute does not use the stream. It is created
	// so that the session owns one for asynchronous execution.
	var stream unsafe.Pointer
	if err := l.check("aclrtCreateStream", C.macl_aclrtCreateStream(l.api, &stream)); err != nil {
		return err
	}
	s.stream = stream

	path := C.CString(s.modelPath)
	defer C.free(unsafe.Pointer(path))
	if err := l.check("aclmdlLoadFromFile", C.macl_aclmdlLoadFromFile(l.api, path, &s.modelID)); err != nil {
		return err
	}
	s.modelLoaded = true

	desc := C.macl_aclmdlCreateDesc(l.api)
	if err := l.checkNull("aclmdlCreateDesc", unsafe.Pointer(desc)); err != nil {
		return err
	}
	s.desc = unsafe.Pointer(desc)
	if err := l.check("aclmdlGetDesc", C.macl_aclmdlGetDesc(l.api, desc, s.modelID)); err != nil {
		return err
	}

	if err := s.describe(); err != nil {
		return err
	}
	if err := s.readGears(); err != nil {
		return err
	}
	if err := s.checkDTypes(); err != nil {
		return err
	}
	if s.inDataset, err = s.allocate(s.in); err != nil {
		return err
	}
	if s.outDataset, err = s.allocate(s.out); err != nil {
		return err
	}
	return nil
}

// allocate creates a dataset holding one device buffer per entry of bufs.
// The dataset is returned even on failure so that release can destroy it.
func (s *Session) allocate(bufs []*ioBuffer) (unsafe.Pointer, error) {
	l := s.lib
	dataset := unsafe.Pointer(C.macl_aclmdlCreateDataset(l.api))
	if err := l.checkNull("aclmdlCreateDataset", dataset); err != nil {
		return nil, err
	}
	for _, b := range bufs {
		var dev unsafe.Pointer
		if err := l.check("aclrtMalloc", C.macl_aclrtMalloc(l.api, &dev, C.size_t(b.info.Size), mallocHugeFirst)); err != nil {
			return dataset, fmt.Errorf("allocate %d bytes for %q: %w", b.info.Size, b.info.Name, err)
		}
		b.dev = dev

		buf := unsafe.Pointer(C.macl_aclCreateDataBuffer(l.api, dev, C.size_t(b.info.Size)))
		if err := l.checkNull("aclCreateDataBuffer", buf); err != nil {
			return dataset, fmt.Errorf("data buffer for %q: %w", b.info.Name, err)
		}
		b.buf = buf

		if err := l.check("aclmdlAddDatasetBuffer", C.macl_aclmdlAddDatasetBuffer(l.api, dataset, buf)); err != nil {
			return dataset, fmt.Errorf("add %q to the dataset: %w", b.info.Name, err)
		}
	}
	return dataset, nil
}

// release destroys, in the reverse order of creation, every resource that
// open created, and clears the fields so that a second call does nothing.
// It keeps going after a failure and returns all failures joined.
func (s *Session) release() error {
	l := s.lib
	var errs []error
	keep := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}

	keep(s.releaseBuffers(s.out))
	if s.outDataset != nil {
		keep(l.check("aclmdlDestroyDataset", C.macl_aclmdlDestroyDataset(l.api, s.outDataset)))
		s.outDataset = nil
	}
	keep(s.releaseBuffers(s.in))
	if s.inDataset != nil {
		keep(l.check("aclmdlDestroyDataset", C.macl_aclmdlDestroyDataset(l.api, s.inDataset)))
		s.inDataset = nil
	}
	if s.desc != nil {
		keep(l.check("aclmdlDestroyDesc", C.macl_aclmdlDestroyDesc(l.api, s.desc)))
		s.desc = nil
	}
	if s.modelLoaded {
		keep(l.check("aclmdlUnload", C.macl_aclmdlUnload(l.api, s.modelID)))
		s.modelLoaded = false
	}
	if s.stream != nil {
		keep(l.check("aclrtDestroyStream", C.macl_aclrtDestroyStream(l.api, s.stream)))
		s.stream = nil
	}
	if s.ctx != nil {
		keep(l.check("aclrtDestroyContext", C.macl_aclrtDestroyContext(l.api, s.ctx)))
		s.ctx = nil
	}
	if s.deviceSet {
		keep(l.check("aclrtResetDevice", C.macl_aclrtResetDevice(l.api, C.int32_t(s.deviceID))))
		s.deviceSet = false
	}
	if s.initAcquired {
		keep(l.releaseInit())
		s.initAcquired = false
	}
	return errors.Join(errs...)
}

// releaseBuffers destroys the data buffers and frees the device memory of
// bufs, last entry first.
func (s *Session) releaseBuffers(bufs []*ioBuffer) error {
	l := s.lib
	var errs []error
	for i := len(bufs) - 1; i >= 0; i-- {
		b := bufs[i]
		if b.buf != nil {
			if err := l.check("aclDestroyDataBuffer", C.macl_aclDestroyDataBuffer(l.api, b.buf)); err != nil {
				errs = append(errs, fmt.Errorf("%q: %w", b.info.Name, err))
			}
			b.buf = nil
		}
		if b.dev != nil {
			if err := l.check("aclrtFree", C.macl_aclrtFree(l.api, b.dev)); err != nil {
				errs = append(errs, fmt.Errorf("%q: %w", b.info.Name, err))
			}
			b.dev = nil
		}
	}
	return errors.Join(errs...)
}
