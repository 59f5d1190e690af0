package interp

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
)

// referenceGemm returns a·b computed in float64, and for each element the
// sum of |a[i,p]·b[p,j]|, which scales the allowed rounding error.
func referenceGemm(m, n, k int, a []float32, lda int, b []float32, ldb int) (want, scale []float64) {
	want = make([]float64, m*n)
	scale = make([]float64, m*n)
	for i := 0; i < m; i++ {
		for p := 0; p < k; p++ {
			av := float64(a[i*lda+p])
			for j := 0; j < n; j++ {
				bv := float64(b[p*ldb+j])
				want[i*n+j] += av * bv
				scale[i*n+j] += math.Abs(av * bv)
			}
		}
	}
	return want, scale
}

// checkProduct reports the first element of got[m,n] (row stride ldc) that
// differs from the float64 reference by more than float32 summation over k
// terms can explain: k·2⁻²³·Σ|a||b|, twice the worst-case bound, plus a
// floor for k = 0.
func checkProduct(t *testing.T, label string, m, n, k int, a []float32, lda int, b []float32, ldb int, got []float32, ldc int) {
	t.Helper()
	want, scale := referenceGemm(m, n, k, a, lda, b, ldb)
	tol := float64(k) * math.Ldexp(1, -23)
	for i := 0; i < m; i++ {
		for j := 0; j < n; j++ {
			g := float64(got[i*ldc+j])
			w := want[i*n+j]
			if math.IsNaN(g) || math.Abs(g-w) > tol*scale[i*n+j]+1e-30 {
				t.Fatalf("%s: m=%d n=%d k=%d: c[%d,%d] = %g, want %g (allowed error %.3g)",
					label, m, n, k, i, j, g, w, tol*scale[i*n+j])
			}
		}
	}
}

// nanMatrix returns n NaN values, so a test detects any element that the
// product fails to write.
func nanMatrix(n int) []float32 {
	x := make([]float32, n)
	for i := range x {
		x[i] = float32(math.NaN())
	}
	return x
}

// smallBlocks returns kern with block sizes so small that products of a
// few dozen rows and columns already run every blocking loop more than
// once: several k blocks (accumulating into c), several m and n blocks.
func smallBlocks(kern gemmKernel) gemmKernel {
	kern.kc = 7
	kern.mc = 2 * kern.mr
	kern.nc = 2 * kern.nr
	return kern
}

func TestGemmBlockedOddSizes(t *testing.T) {
	sizes := []int{1, 2, 3, 4, 5, 6, 7, 8, 13, 14, 15, 16, 17, 29, 31, 32, 33, 45, 48, 63, 64, 65, 70}
	rng := rand.New(rand.NewPCG(3, 4))
	a := randomMatrix(rng, 70*70)
	b := randomMatrix(rng, 70*70)
	for _, base := range supportedKernels() {
		for _, kern := range []gemmKernel{base, smallBlocks(base)} {
			label := fmt.Sprintf("%s kc=%d mc=%d nc=%d", kern.name, kern.kc, kern.mc, kern.nc)
			for _, m := range sizes {
				for _, n := range sizes {
					for _, k := range []int{1, 2, 7, 16, 33, 70} {
						c := nanMatrix(m * n)
						gemmBlocked(kern, m, n, k, a, k, b, n, c, n)
						checkProduct(t, label, m, n, k, a, k, b, n, c, n)
					}
				}
			}
		}
	}
}

func TestGemmBlockedRandomSizes(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for _, kern := range supportedKernels() {
		for trial := 0; trial < 300; trial++ {
			m, n, k := 1+rng.IntN(70), 1+rng.IntN(70), 1+rng.IntN(70)
			a := randomMatrix(rng, m*k)
			b := randomMatrix(rng, k*n)
			c := nanMatrix(m * n)
			gemmBlocked(kern, m, n, k, a, k, b, n, c, n)
			checkProduct(t, kern.name, m, n, k, a, k, b, n, c, n)
		}
	}
}

// TestGemmBlockedStrides multiplies sub-matrices whose rows are longer than
// the part used, and checks that c outside the result is left alone.
func TestGemmBlockedStrides(t *testing.T) {
	const m, n, k = 23, 37, 41
	const lda, ldb, ldc = k + 3, n + 5, n + 7
	rng := rand.New(rand.NewPCG(7, 8))
	a := randomMatrix(rng, m*lda)
	b := randomMatrix(rng, k*ldb)
	for _, kern := range supportedKernels() {
		for _, kern := range []gemmKernel{kern, smallBlocks(kern)} {
			c := make([]float32, m*ldc)
			for i := range c {
				c[i] = 42
			}
			gemmBlocked(kern, m, n, k, a, lda, b, ldb, c, ldc)
			checkProduct(t, kern.name, m, n, k, a, lda, b, ldb, c, ldc)
			for i := 0; i < m; i++ {
				for j := n; j < ldc; j++ {
					if c[i*ldc+j] != 42 {
						t.Fatalf("%s: c[%d,%d] outside the result changed to %g", kern.name, i, j, c[i*ldc+j])
					}
				}
			}
		}
	}
}

func TestSgemmEmptySizes(t *testing.T) {
	for _, kern := range supportedKernels() {
		withKernel(t, kern, 2)

		// k = 0 makes c a matrix of zeros, even when it held other values.
		c := []float32{1, 2, 3, 4, 5, 6}
		sgemm(2, 3, 0, nil, nil, c)
		for i, v := range c {
			if v != 0 {
				t.Errorf("%s: k=0: c[%d] = %g, want 0", kern.name, i, v)
			}
		}

		// m = 0 and n = 0 touch nothing and accept empty operands.
		sgemm(0, 3, 4, nil, make([]float32, 12), nil)
		sgemm(3, 0, 4, make([]float32, 12), nil, nil)
		sgemm(0, 0, 0, nil, nil, nil)
		sgemmSerial(0, 5, 5, nil, make([]float32, 25), nil)
	}
}

// withKernel makes sgemm use kern and split over w workers until the test
// ends.
func withKernel(t *testing.T, kern gemmKernel, w int) {
	oldKernel, oldWorkers := activeKernel, workers
	activeKernel, workers = kern, w
	t.Cleanup(func() { activeKernel, workers = oldKernel, oldWorkers })
}

// TestSgemmParallel covers both ways sgemm splits the work: by columns for
// wide products and by rows for tall, narrow ones.
func TestSgemmParallel(t *testing.T) {
	shapes := []struct{ m, n, k int }{
		{67, 301, 257}, // wide: split by columns
		{601, 9, 131},  // tall: split by rows
		{1, 4099, 70},  // one row
		{513, 1, 600},  // one column
	}
	rng := rand.New(rand.NewPCG(9, 10))
	for _, kern := range supportedKernels() {
		withKernel(t, kern, 3)
		for _, s := range shapes {
			a := randomMatrix(rng, s.m*s.k)
			b := randomMatrix(rng, s.k*s.n)
			c := nanMatrix(s.m * s.n)
			sgemm(s.m, s.n, s.k, a, b, c)
			checkProduct(t, kern.name, s.m, s.n, s.k, a, s.k, b, s.n, c, s.n)
		}
	}
}

// TestSgemmLarge runs a product of the size of a transformer projection,
// with several blocks along every dimension, on the fastest kernel.
func TestSgemmLarge(t *testing.T) {
	if testing.Short() {
		t.Skip("large product skipped in short mode")
	}
	const m, n, k = 256, 512, 1536
	rng := rand.New(rand.NewPCG(11, 12))
	a := randomMatrix(rng, m*k)
	b := randomMatrix(rng, k*n)
	c := nanMatrix(m * n)
	sgemm(m, n, k, a, b, c)
	checkProduct(t, activeKernel.name, m, n, k, a, k, b, n, c, n)
}

func TestSgemmShortOperandsPanic(t *testing.T) {
	cases := []struct {
		name    string
		m, n, k int
		a, b, c []float32
	}{
		{"short a", 2, 2, 2, make([]float32, 3), make([]float32, 4), make([]float32, 4)},
		{"short b", 2, 2, 2, make([]float32, 4), make([]float32, 3), make([]float32, 4)},
		{"short c", 2, 2, 2, make([]float32, 4), make([]float32, 4), make([]float32, 3)},
		{"negative size", -1, 2, 2, nil, nil, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			defer func() {
				r := recover()
				if r == nil {
					t.Fatal("sgemm did not panic")
				}
				if msg := fmt.Sprint(r); !strings.HasPrefix(msg, "sgemm: ") {
					t.Fatalf("panic message %q does not name sgemm", msg)
				}
			}()
			sgemm(tc.m, tc.n, tc.k, tc.a, tc.b, tc.c)
		})
	}
}

// TestSupportedKernelsBlockSizes checks the invariants gemmBlocked relies
// on: mc and nc are multiples of the tile.
func TestSupportedKernelsBlockSizes(t *testing.T) {
	for _, kern := range supportedKernels() {
		if kern.mc%kern.mr != 0 || kern.nc%kern.nr != 0 || kern.kc <= 0 {
			t.Errorf("%s: mc=%d nc=%d kc=%d must be positive multiples of mr=%d and nr=%d",
				kern.name, kern.mc, kern.nc, kern.kc, kern.mr, kern.nr)
		}
	}
}
