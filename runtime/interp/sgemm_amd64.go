package interp

import "golang.org/x/sys/cpu"

//go:generate go run sgemm_asmgen.go

// The assembly micro-kernels are in sgemm_amd64.s, written by
// sgemm_asmgen.go; see writeKernel there for the register layout.

//go:noescape
func sgemmKernelAVX512(k int, a, b, c *float32, ldc int, accumulate bool)

//go:noescape
func sgemmKernelAVX2(k int, a, b, c *float32, ldc int, accumulate bool)

var (
	// avx512Kernel keeps a 14×32 tile in 28 of the 32 ZMM registers.
	avx512Kernel = gemmKernel{
		name: "avx512-14x32", mr: 14, nr: 32, kc: 256, mc: 14 * 20, nc: 2048,
		tile: sgemmKernelAVX512,
	}
	// avx2Kernel keeps a 6×16 tile in 12 of the 16 YMM registers.
	avx2Kernel = gemmKernel{
		name: "avx2-6x16", mr: 6, nr: 16, kc: 256, mc: 6 * 40, nc: 2048,
		tile: sgemmKernelAVX2,
	}
)

// supportedKernels lists the micro-kernels this CPU can run, fastest first.
func supportedKernels() []gemmKernel {
	var ks []gemmKernel
	if cpu.X86.HasAVX512F {
		ks = append(ks, avx512Kernel)
	}
	if cpu.X86.HasAVX2 && cpu.X86.HasFMA {
		ks = append(ks, avx2Kernel)
	}
	return append(ks, goKernel)
}

func init() {
	activeKernel = supportedKernels()[0]
}
