package interp

import (
	"fmt"
	"sync"
	"unsafe"
)

// The float32 matrix product follows the usual packed-panel scheme of
// optimized BLAS libraries. Each block of kc rows and nc columns of B is
// copied into column panels of nr values per k step. Each block of mc rows
// of A is copied into row panels of mr values per k step. A micro-kernel then multiplies one A panel by one B panel with
// the whole mr×nr tile of C held in registers. The B panel in use stays in
// the L1 cache while the micro-kernel walks down the A block, which stays
// in the L2 cache.
//
// Results differ from the naive triple loop only in the order and fusion of
// the multiply-adds: every tile element is summed in k order within a kc
// block, and the blocks are added in order.

// gemmKernel is one micro-kernel together with the block sizes tuned for it.
type gemmKernel struct {
	name string
	mr   int // rows of the register tile
	nr   int // columns of the register tile
	kc   int // k steps per packed block
	mc   int // maximum rows of A per packed block, a multiple of mr
	nc   int // maximum columns of B per packed block, a multiple of nr

	// tile computes the mr×nr product of a packed A panel a (k groups of
	// mr values) and a packed B panel b (k groups of nr values). It stores
	// the product into c, whose rows are ldc values apart, or adds it to c
	// when accumulate is true. The caller guarantees that all mr×nr
	// elements of c are in bounds.
	tile func(k int, a, b, c *float32, ldc int, accumulate bool)
}

// activeKernel is the fastest micro-kernel this CPU supports. The amd64
// build replaces the portable kernel with an assembly one at init time.
var activeKernel = goKernel

// parallelFlops is the smallest m·n·k for which sgemm splits the work over
// goroutines, because below it starting them costs more than it saves.
const parallelFlops = 1 << 18

// sgemm computes c = a·b for row-major a[m,k], b[k,n], c[m,n], splitting
// the columns (or, for tall and narrow products, the rows) of c over the
// workers. It overwrites c, so c need not be zeroed.
func sgemm(m, n, k int, a, b, c []float32) {
	kern := activeKernel
	if workers <= 1 || m*n*k < parallelFlops {
		gemmBlocked(kern, m, n, k, a, k, b, n, c, n)
		return
	}
	checkGemmOperands(m, n, k, a, k, b, n, c, n)

	colPanels := (n + kern.nr - 1) / kern.nr
	rowPanels := (m + kern.mr - 1) / kern.mr
	if colPanels >= rowPanels {
		parallelFor(colPanels, 1, func(lo, hi int) {
			j0, j1 := lo*kern.nr, min(hi*kern.nr, n)
			gemmBlocked(kern, m, j1-j0, k, a, k, b[j0:], n, c[j0:], n)
		})
		return
	}
	parallelFor(rowPanels, 1, func(lo, hi int) {
		i0, i1 := lo*kern.mr, min(hi*kern.mr, m)
		gemmBlocked(kern, i1-i0, n, k, a[i0*k:], k, b, n, c[i0*n:], n)
	})
}

// gemmWorkspace holds the packed blocks of one gemmBlocked call.
type gemmWorkspace struct {
	a    []float32 // packed A block: mc rows rounded up to mr, times kc
	b    []float32 // packed B block: nc columns rounded up to nr, times kc
	tile []float32 // mr×nr product of an edge tile before it is cut to size
}

// workspaces recycles packing buffers, since kernels such as attention
// call the product once per head and layer.
var workspaces = sync.Pool{New: func() any { return new(gemmWorkspace) }}

// grow returns buf resized to n values, reallocating only when it is too
// small.
func grow(buf []float32, n int) []float32 {
	if cap(buf) < n {
		return make([]float32, n)
	}
	return buf[:n]
}

// gemmBlocked computes c = a·b on the calling goroutine for a[m,k] with row
// stride lda, b[k,n] with row stride ldb and c[m,n] with row stride ldc.
func gemmBlocked(kern gemmKernel, m, n, k int, a []float32, lda int, b []float32, ldb int, c []float32, ldc int) {
	checkGemmOperands(m, n, k, a, lda, b, ldb, c, ldc)
	if m == 0 || n == 0 {
		return
	}
	if k == 0 {
		for i := 0; i < m; i++ {
			clear(c[i*ldc : i*ldc+n])
		}
		return
	}

	// Split m into blocks of equal size (rounded up to mr) instead of full
	// blocks plus a small remainder, so no block is mostly padding.
	mBlocks := (m + kern.mc - 1) / kern.mc
	mc := roundUp((m+mBlocks-1)/mBlocks, kern.mr)
	nc := min(kern.nc, roundUp(n, kern.nr))
	kc := min(kern.kc, k)

	ws := workspaces.Get().(*gemmWorkspace)
	defer workspaces.Put(ws)
	ws.a = grow(ws.a, mc*kc)
	ws.b = grow(ws.b, nc*kc)
	ws.tile = grow(ws.tile, kern.mr*kern.nr)

	for jc := 0; jc < n; jc += nc {
		ncur := min(nc, n-jc)
		for pc := 0; pc < k; pc += kc {
			kcur := min(kc, k-pc)
			packB(kern.nr, kcur, ncur, b[pc*ldb+jc:], ldb, ws.b)
			for ic := 0; ic < m; ic += mc {
				mcur := min(mc, m-ic)
				packA(kern.mr, mcur, kcur, a[ic*lda+pc:], lda, ws.a)
				macroKernel(kern, mcur, ncur, kcur, ws, c[ic*ldc+jc:], ldc, pc > 0)
			}
		}
	}
}

// macroKernel multiplies the packed A block [m,k] by the packed B block
// [k,n] into c, storing or (when accumulate) adding. Tiles that stick out
// of c are computed into ws.tile and copied in part.
func macroKernel(kern gemmKernel, m, n, k int, ws *gemmWorkspace, c []float32, ldc int, accumulate bool) {
	mr, nr := kern.mr, kern.nr
	for jr := 0; jr < n; jr += nr {
		bPanel := &ws.b[jr*k]
		cols := min(nr, n-jr)
		for ir := 0; ir < m; ir += mr {
			aPanel := &ws.a[ir*k]
			rows := min(mr, m-ir)
			if rows == mr && cols == nr {
				kern.tile(k, aPanel, bPanel, &c[ir*ldc+jr], ldc, accumulate)
				continue
			}
			kern.tile(k, aPanel, bPanel, &ws.tile[0], nr, false)
			for i := 0; i < rows; i++ {
				src := ws.tile[i*nr : i*nr+cols]
				dst := c[(ir+i)*ldc+jr : (ir+i)*ldc+jr+cols]
				if !accumulate {
					copy(dst, src)
					continue
				}
				for j, v := range src {
					dst[j] += v
				}
			}
		}
	}
}

// packA copies a[m,k] (row stride lda) into panels of mr rows: panel q
// holds, for each p in [0,k), the values a[q·mr+i, p] for i in [0,mr).
// Rows past m are zero.
func packA(mr, m, k int, a []float32, lda int, dst []float32) {
	for i0 := 0; i0 < m; i0 += mr {
		panel := dst[i0*k : i0*k+mr*k]
		rows := min(mr, m-i0)
		for i := 0; i < rows; i++ {
			row := a[(i0+i)*lda : (i0+i)*lda+k]
			for p, v := range row {
				panel[p*mr+i] = v
			}
		}
		for i := rows; i < mr; i++ {
			for p := 0; p < k; p++ {
				panel[p*mr+i] = 0
			}
		}
	}
}

// packB copies b[k,n] (row stride ldb) into panels of nr columns: panel q
// holds, for each p in [0,k), the values b[p, q·nr+j] for j in [0,nr).
// Columns past n are zero. It reads b row by row, because walking down a
// column panel of a wide b would touch a new page for every value of p.
func packB(nr, k, n int, b []float32, ldb int, dst []float32) {
	full := n / nr * nr
	for p := 0; p < k; p++ {
		row := b[p*ldb : p*ldb+n]
		j0 := 0
		for ; j0 < full; j0 += nr {
			copy(dst[j0*k+p*nr:j0*k+p*nr+nr], row[j0:j0+nr])
		}
		if j0 < n {
			d := dst[j0*k+p*nr : j0*k+p*nr+nr]
			copy(d, row[j0:])
			clear(d[n-j0:])
		}
	}
}

// checkGemmOperands panics when a slice is too short for its matrix. The
// assembly micro-kernels do not check bounds, so this check is what keeps
// a wrong shape from corrupting memory.
func checkGemmOperands(m, n, k int, a []float32, lda int, b []float32, ldb int, c []float32, ldc int) {
	if m < 0 || n < 0 || k < 0 {
		panic(fmt.Sprintf("sgemm: negative size m=%d n=%d k=%d", m, n, k))
	}
	need := func(rows, cols, ld int) int {
		if rows == 0 || cols == 0 {
			return 0
		}
		return (rows-1)*ld + cols
	}
	if len(a) < need(m, k, lda) || len(b) < need(k, n, ldb) || len(c) < need(m, n, ldc) {
		panic(fmt.Sprintf("sgemm: operands too short for m=%d n=%d k=%d: len(a)=%d (row stride %d), len(b)=%d (row stride %d), len(c)=%d (row stride %d)",
			m, n, k, len(a), lda, len(b), ldb, len(c), ldc))
	}
}

func roundUp(x, to int) int {
	return (x + to - 1) / to * to
}

// goKernel is the portable micro-kernel, used where no assembly kernel
// applies. Its 16 accumulators and 8 operands fit in the 32 floating-point
// registers of arm64, but amd64 without AVX2 has only 16 and spills some.
var goKernel = gemmKernel{
	name: "go4x4", mr: 4, nr: 4, kc: 256, mc: 128, nc: 1024,
	tile: tileGo4x4,
}

func tileGo4x4(k int, aPtr, bPtr, cPtr *float32, ldc int, accumulate bool) {
	a := unsafe.Slice(aPtr, 4*k)
	b := unsafe.Slice(bPtr, 4*k)
	var c00, c01, c02, c03 float32
	var c10, c11, c12, c13 float32
	var c20, c21, c22, c23 float32
	var c30, c31, c32, c33 float32
	for p := 0; p < k; p++ {
		av := a[4*p : 4*p+4 : 4*p+4]
		bv := b[4*p : 4*p+4 : 4*p+4]
		a0, a1, a2, a3 := av[0], av[1], av[2], av[3]
		b0, b1, b2, b3 := bv[0], bv[1], bv[2], bv[3]
		c00 += a0 * b0
		c01 += a0 * b1
		c02 += a0 * b2
		c03 += a0 * b3
		c10 += a1 * b0
		c11 += a1 * b1
		c12 += a1 * b2
		c13 += a1 * b3
		c20 += a2 * b0
		c21 += a2 * b1
		c22 += a2 * b2
		c23 += a2 * b3
		c30 += a3 * b0
		c31 += a3 * b1
		c32 += a3 * b2
		c33 += a3 * b3
	}
	c := unsafe.Slice(cPtr, 3*ldc+4)
	rows := [4][4]float32{
		{c00, c01, c02, c03},
		{c10, c11, c12, c13},
		{c20, c21, c22, c23},
		{c30, c31, c32, c33},
	}
	for i, row := range rows {
		dst := c[i*ldc : i*ldc+4]
		if accumulate {
			for j := range row {
				dst[j] += row[j]
			}
		} else {
			copy(dst, row[:])
		}
	}
}
