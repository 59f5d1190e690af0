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
