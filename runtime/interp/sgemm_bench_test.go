package interp

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// BenchmarkSgemm measures sgemm on the shapes of the transformer's
// projections and reports GFLOP/s (2·m·n·k floating-point operations per
// product).
func BenchmarkSgemm(b *testing.B) {
	shapes := []struct{ m, k, n int }{
		{256, 512, 512},
		{256, 512, 32768},
		{320, 1536, 512},
	}
	for _, s := range shapes {
		b.Run(fmt.Sprintf("m%d_k%d_n%d", s.m, s.k, s.n), func(b *testing.B) {
			rng := rand.New(rand.NewPCG(1, 2))
			a := randomMatrix(rng, s.m*s.k)
			bm := randomMatrix(rng, s.k*s.n)
			c := make([]float32, s.m*s.n)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				sgemm(s.m, s.n, s.k, a, bm, c)
			}
			flops := 2 * float64(s.m) * float64(s.n) * float64(s.k) * float64(b.N)
			b.ReportMetric(flops/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		})
	}
}

func randomMatrix(rng *rand.Rand, n int) []float32 {
	x := make([]float32, n)
	for i := range x {
		x[i] = rng.Float32()*2 - 1
	}
	return x
}

// BenchmarkSgemmTile measures each micro-kernel alone on packed panels that
// stay in the L1 cache, which bounds what sgemm can reach on one core.
func BenchmarkSgemmTile(b *testing.B) {
	const k = 256
	for _, kern := range supportedKernels() {
		b.Run(kern.name, func(b *testing.B) {
			rng := rand.New(rand.NewPCG(1, 2))
			a := randomMatrix(rng, kern.mr*k)
			bp := randomMatrix(rng, k*kern.nr)
			c := make([]float32, kern.mr*kern.nr)
			for i := 0; i < b.N; i++ {
				kern.tile(k, &a[0], &bp[0], &c[0], kern.nr, true)
			}
			flops := 2 * float64(kern.mr*kern.nr*k) * float64(b.N)
			b.ReportMetric(flops/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		})
	}
}
