package bench

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/mmadac/mmadac/frontend"
	"github.com/mmadac/mmadac/ir"
)

// Session runs a graph on named tensors, as engine.Session does.
type Session interface {
	Run(inputs map[string]*ir.Tensor) (map[string]*ir.Tensor, error)
	Close() error
}

// SessionOpener opens a backend session on a graph, as engine.OpenSession
// does for one backend.
type SessionOpener func(g *ir.Graph) (Session, error)

// MatMulShape is one calibration product: A [M, K] times B [K, N].
type MatMulShape struct {
	M, K, N int
}

// ShapeRate is the measured rate of one calibration product.
type ShapeRate struct {
	Shape MatMulShape `json:"shape"`
	// BestMS is the fastest of the timed runs; GFLOPS is 2*M*K*N over it.
	BestMS float64 `json:"best_ms"`
	GFLOPS float64 `json:"gflops"`
	Runs   int     `json:"runs"`
}

// Peak is the calibrated matrix-product rate of a backend on this
// machine: the best rate over the calibration shapes.
type Peak struct {
	Backend string      `json:"backend"`
	GFLOPS  float64     `json:"gflops"`
	Shapes  []ShapeRate `json:"shapes"`
	// Method describes how the numbers were measured, for the report.
	Method string     `json:"method"`
	Load   [3]float64 `json:"load"`
}

// PeakShapes returns the calibration products for a model config: the
// projections of the transformer at a sequence of seq tokens (attention
// d×d, MLP d×h and h×d), the sampling head of one 32-token block, and a
// square 1024³ product that large-matrix kernels run at full speed.
func PeakShapes(cfg *frontend.LLaDAConfig, seq int) []MatMulShape {
	d, h, v := cfg.DModel, cfg.MLPHidden(), cfg.Vocab()
	return []MatMulShape{
		{seq, d, d}, {seq, d, h}, {seq, h, d}, {32, d, v}, {1024, 1024, 1024},
	}
}

// CalibratePeak measures the matrix-product rate of a backend: for every
// shape it builds a one-node graph (an f32 input A times a constant B, the
// way the model multiplies activations by weights), runs it twice
// untimed, then repeats it until minTime has passed (at least 3 timed
// runs) and keeps the fastest run. The fastest run is the one least
// disturbed by other processes on a shared machine. The peak is the best
// rate over the shapes.
func CalibratePeak(backend string, open SessionOpener, shapes []MatMulShape, minTime time.Duration) (Peak, error) {
	p := Peak{Backend: backend, Load: loadAverage(),
		Method: fmt.Sprintf("one matmul node (f32 input A[M,K] times constant B[K,N]) on the %s backend, 2 untimed runs, then the fastest of at least 3 runs over %v per shape; peak = best 2*M*K*N/time over the shapes", backend, minTime)}
	for _, sh := range shapes {
		if sh.M <= 0 || sh.K <= 0 || sh.N <= 0 {
			return p, fmt.Errorf("calibration shape %dx%dx%d must be positive in every dimension", sh.M, sh.K, sh.N)
		}
		rate, err := calibrateShape(open, sh, minTime)
		if err != nil {
			return p, fmt.Errorf("calibrating %dx%dx%d on %s: %w", sh.M, sh.K, sh.N, backend, err)
		}
		slog.Info("bench: calibrated matmul", "backend", backend, "m", sh.M, "k", sh.K, "n", sh.N, "gflops", fmt.Sprintf("%.1f", rate.GFLOPS))
		p.Shapes = append(p.Shapes, rate)
		p.GFLOPS = max(p.GFLOPS, rate.GFLOPS)
	}
	return p, nil
}

func calibrateShape(open SessionOpener, sh MatMulShape, minTime time.Duration) (ShapeRate, error) {
	rng := newRNG(uint64(sh.M*131 + sh.K*17 + sh.N))
	b := ir.NewTensor(ir.F32, int64(sh.K), int64(sh.N))
	for i := range b.F32() {
		b.F32()[i] = float32(rng.NormFloat64())
	}
	g, err := ir.Build("calibrate", func(g *ir.Graph) {
		a := g.Input("a", ir.F32, ir.Static(int64(sh.M), int64(sh.K)))
		g.SetOutput("c", g.Op("matmul", nil, a, g.Constant(b)))
	})
	if err != nil {
		return ShapeRate{}, err
	}
	s, err := open(g)
	if err != nil {
		return ShapeRate{}, err
	}
	defer s.Close()
	a := ir.NewTensor(ir.F32, int64(sh.M), int64(sh.K))
	for i := range a.F32() {
		a.F32()[i] = float32(rng.NormFloat64())
	}
	in := map[string]*ir.Tensor{"a": a}
	for range 2 {
		if _, err := s.Run(in); err != nil {
			return ShapeRate{}, err
		}
	}
	best := time.Duration(1<<63 - 1)
	runs := 0
	for start := time.Now(); runs < 3 || time.Since(start) < minTime; runs++ {
		t0 := time.Now()
		if _, err := s.Run(in); err != nil {
			return ShapeRate{}, err
		}
		best = min(best, time.Since(t0))
	}
	flops := 2 * float64(sh.M) * float64(sh.K) * float64(sh.N)
	return ShapeRate{Shape: sh, BestMS: float64(best) / float64(time.Millisecond), GFLOPS: flops / float64(best.Nanoseconds()), Runs: runs}, nil
}
