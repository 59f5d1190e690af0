//go:build !amd64

package interp

// supportedKernels lists the micro-kernels this CPU can run, fastest first.
// Outside amd64 only the portable kernel exists.
func supportedKernels() []gemmKernel {
	return []gemmKernel{goKernel}
}
