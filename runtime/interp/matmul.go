package interp

import (
	"fmt"
	"runtime"
	"sync"

	"github.com/mmadac/mmadac/ir"
)

// workers is the number of goroutines a kernel splits its work over.
var workers = runtime.GOMAXPROCS(0)

// parallelFor splits [0, n) into contiguous chunks of at least grain items
// and runs body on them concurrently.
func parallelFor(n, grain int, body func(lo, hi int)) {
	chunks := workers
	if grain > 0 && n/grain < chunks {
		chunks = n / grain
	}
	if chunks <= 1 {
		body(0, n)
		return
	}
	var wg sync.WaitGroup
	step := (n + chunks - 1) / chunks
	for lo := 0; lo < n; lo += step {
		hi := min(lo+step, n)
		wg.Add(1)
		go func(lo, hi int) {
			defer wg.Done()
			body(lo, hi)
		}(lo, hi)
	}
	wg.Wait()
}

func init() {
	kernels["matmul"] = kernelMatMul
}

func kernelMatMul(n *ir.Node, a []*ir.Tensor) (*ir.Tensor, error) {
	x, y := a[0], a[1]
	if x.DType != ir.F32 {
		return nil, fmt.Errorf("unsupported dtype %v", x.DType)
	}
	xs, ys := x.Shape, y.Shape
	m, k := xs[len(xs)-2], xs[len(xs)-1]
	k2, nn := ys[len(ys)-2], ys[len(ys)-1]
	if k != k2 {
		return nil, fmt.Errorf("inner dimensions differ: %v x %v", xs, ys)
	}
	xd, yd := x.F32(), y.F32()

	// A weight on the right: fold every batch dimension of x into rows.
	if len(ys) == 2 {
		rows := ir.NumElements(xs[:len(xs)-1])
		out := make([]float32, rows*nn)
		sgemm(int(rows), int(nn), int(k), xd, yd, out)
		shape := append(append([]int64(nil), xs[:len(xs)-1]...), nn)
		return ir.FromF32(out, shape...), nil
	}
	batch, err := broadcastShape(xs[:len(xs)-2], ys[:len(ys)-2])
	if err != nil {
		return nil, err
	}
	nb := ir.NumElements(batch)
	out := make([]float32, nb*m*nn)
	xst := broadcastStrides(xs[:len(xs)-2], batch)
	yst := broadcastStrides(ys[:len(ys)-2], batch)
	idx := make([]int64, len(batch))
	for bi := int64(0); bi < nb; bi++ {
		rem := bi
		offX, offY := int64(0), int64(0)
		for d := len(batch) - 1; d >= 0; d-- {
			idx[d] = rem % batch[d]
			rem /= batch[d]
			offX += idx[d] * xst[d]
			offY += idx[d] * yst[d]
		}
		sgemm(int(m), int(nn), int(k),
			xd[offX*m*k:(offX+1)*m*k], yd[offY*k*nn:(offY+1)*k*nn], out[bi*m*nn:(bi+1)*m*nn])
	}
	shape := append(append([]int64(nil), batch...), m, nn)
	return ir.FromF32(out, shape...), nil
}

// Block sizes of sgemm: a kBlock×nBlock panel of b (256 KiB) stays in the
// L2 cache while four rows of a stream past it.
const (
	kBlock = 256
	nBlock = 256
)

// sgemm computes c = a·b for row-major a[m,k], b[k,n], c[m,n], splitting
// the rows of c over the workers.
func sgemm(m, n, k int, a, b, c []float32) {
	for i := range c[:m*n] {
		c[i] = 0
	}
	grain := 4
	if m*n*k < 1<<16 {
		grain = m
	}
	parallelFor((m+3)/4, max(grain/4, 1), func(lo, hi int) {
		for j0 := 0; j0 < n; j0 += nBlock {
			j1 := min(j0+nBlock, n)
			for p0 := 0; p0 < k; p0 += kBlock {
				p1 := min(p0+kBlock, k)
				for r := lo * 4; r < min(hi*4, m); r += 4 {
					if r+4 <= m {
						kernel4(a, b, c, r, n, k, j0, j1, p0, p1)
					} else {
						for i := r; i < m; i++ {
							kernel1(a, b, c, i, n, k, j0, j1, p0, p1)
						}
					}
				}
			}
		}
	})
}

// kernel4 accumulates four rows of c over one block of k and n.
func kernel4(a, b, c []float32, r, n, k, j0, j1, p0, p1 int) {
	c0 := c[r*n+j0 : r*n+j1]
	c1 := c[(r+1)*n+j0 : (r+1)*n+j1]
	c2 := c[(r+2)*n+j0 : (r+2)*n+j1]
	c3 := c[(r+3)*n+j0 : (r+3)*n+j1]
	for p := p0; p < p1; p++ {
		a0, a1, a2, a3 := a[r*k+p], a[(r+1)*k+p], a[(r+2)*k+p], a[(r+3)*k+p]
		bp := b[p*n+j0 : p*n+j1]
		bp = bp[:len(c0)]
		c1 := c1[:len(bp)]
		c2 := c2[:len(bp)]
		c3 := c3[:len(bp)]
		for j, bv := range bp {
			c0[j] += a0 * bv
			c1[j] += a1 * bv
			c2[j] += a2 * bv
			c3[j] += a3 * bv
		}
	}
}

func kernel1(a, b, c []float32, i, n, k, j0, j1, p0, p1 int) {
	ci := c[i*n+j0 : i*n+j1]
	for p := p0; p < p1; p++ {
		av := a[i*k+p]
		bp := b[p*n+j0 : p*n+j1]
		bp = bp[:len(ci)]
		for j, bv := range bp {
			ci[j] += av * bv
		}
	}
}
