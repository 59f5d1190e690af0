package passes

// Per-pass benchmarks on graphs that grow with n (chains of n blocks), to
// show how each pass scales with graph size:
//
//	go test ./passes -run '^$' -bench . -benchtime 3x

import (
	"fmt"
	"testing"

	"github.com/mmadac/mmadac/ir"
	"github.com/mmadac/mmadac/runtime/interp"
)

// benchSizes are the chain lengths every benchmark runs.
var benchSizes = []int{100, 1000}

// benchPass times one pass on a fresh graph per iteration; building the
// graph is not timed.
func benchPass(b *testing.B, pass string, build func(n int) *ir.Graph, ctx func() *Context) {
	for _, n := range benchSizes {
		b.Run(fmt.Sprintf("n=%d", n), func(b *testing.B) {
			p := Registry[pass]
			nodes := len(build(n).Nodes)
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				g := build(n)
				c := ctx()
				b.StartTimer()
				if err := p.Run(g, c); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(nodes), "ns/node")
		})
	}
}

func benchContext() *Context { return &Context{Eval: interp.EvalNode, MaxSeqLen: 64} }

// mustBuild runs a graph-building function and panics on a build error,
// which in a benchmark helper is a bug in the helper.
func mustBuild(name string, fn func(g *ir.Graph)) *ir.Graph {
	g, err := ir.Build(name, fn)
	if err != nil {
		panic(err)
	}
	return g
}

// rmsNormUnfused adds x*rsqrt(mean(x*x)+eps)*w.
func rmsNormUnfused(g *ir.Graph, x, w *ir.Value) *ir.Value {
	sq := g.Op("mul", nil, x, x)
	ms := g.Op("reduce_mean", ir.Attrs{"axes": []int64{-1}, "keepdims": int64(1)}, sq)
	r := g.Op("rsqrt", nil, g.Op("add", nil, ms, g.Scalar(ir.F32, 1e-5)))
	return g.Op("mul", nil, g.Op("mul", nil, x, r), w)
}

// attentionUnfused adds softmax(q k^T * scale) v.
func attentionUnfused(g *ir.Graph, q, k, v *ir.Value) *ir.Value {
	kt := g.Op("transpose", ir.Attrs{"perm": []int64{0, 1, 3, 2}}, k)
	s := g.Op("mul", nil, g.Op("matmul", nil, q, kt), g.Scalar(ir.F32, 0.25))
	return g.Op("matmul", nil, g.Op("softmax", ir.Attrs{"axis": int64(-1)}, s), v)
}

// rmsNormChain is n residual blocks x = x + rms_norm(x) * w_i.
func rmsNormChain(n int) *ir.Graph {
	return mustBuild("rms_chain", func(g *ir.Graph) {
		x := g.Input("x", ir.F32, ir.Static(4, 64))
		for i := range n {
			w := g.Param(fmt.Sprintf("norm.%d.weight", i), ir.F32, ir.Static(64), nil)
			x = g.Op("add", nil, x, rmsNormUnfused(g, x, w))
		}
		g.SetOutput("y", x)
	})
}

// attentionChain is n self-attention blocks over [1, 2, 8, 16].
func attentionChain(n int) *ir.Graph {
	return mustBuild("attention_chain", func(g *ir.Graph) {
		x := g.Input("x", ir.F32, ir.Static(1, 2, 8, 16))
		for range n {
			x = g.Op("add", nil, x, attentionUnfused(g, x, x, x))
		}
		g.SetOutput("y", x)
	})
}

// swigluChain is n blocks x = silu(x) * x.
func swigluChain(n int) *ir.Graph {
	return mustBuild("swiglu_chain", func(g *ir.Graph) {
		x := g.Input("x", ir.F32, ir.Static(4, 64))
		for range n {
			x = g.Op("mul", nil, g.Op("silu", nil, x), x)
		}
		g.SetOutput("y", x)
	})
}

// fusedChain is n blocks of rms_norm, attention and swiglu nodes.
func fusedChain(n int) *ir.Graph {
	return mustBuild("fused_chain", func(g *ir.Graph) {
		x := g.Input("x", ir.F32, ir.Static(1, 2, 8, 16))
		w := g.Input("w", ir.F32, ir.Static(16))
		for range n {
			h := g.Op("rms_norm", ir.Attrs{"eps": 1e-5}, x, w)
			a := g.Op("attention", ir.Attrs{"scale": 0.25}, h, h, h)
			x = g.Op("swiglu", nil, a, x)
		}
		g.SetOutput("y", x)
	})
}

// constChain is n foldable nodes on small constants, each added to the
// input so that every folded value stays live.
func constChain(n int) *ir.Graph {
	return mustBuild("const_chain", func(g *ir.Graph) {
		x := g.Input("x", ir.F32, ir.Static(16))
		c := g.Constant(ir.NewTensor(ir.F32, 16))
		for range n {
			c = g.Op("add", nil, c, g.Scalar(ir.F32, 1))
			x = g.Op("add", nil, x, c)
		}
		g.SetOutput("y", x)
	})
}

// duplicatedChain holds every node of an n-block chain twice.
func duplicatedChain(n int) *ir.Graph {
	return mustBuild("duplicated_chain", func(g *ir.Graph) {
		x := g.Input("x", ir.F32, ir.Static(4, 64))
		for range n {
			a := g.Op("exp", nil, x)
			b := g.Op("exp", nil, x)
			x = g.Op("add", nil, a, b)
		}
		g.SetOutput("y", x)
	})
}

// halfDeadChain is an n-block chain where every block also computes a
// value no output reads.
func halfDeadChain(n int) *ir.Graph {
	return mustBuild("half_dead_chain", func(g *ir.Graph) {
		x := g.Input("x", ir.F32, ir.Static(4, 64))
		for range n {
			g.Op("neg", nil, g.Op("exp", nil, x))
			x = g.Op("tanh", nil, x)
		}
		g.SetOutput("y", x)
	})
}

// ropeChain is n independent RoPE cos/sin patterns over one sequence.
func ropeChain(n int) *ir.Graph {
	return mustBuild("rope_chain", func(g *ir.Graph) {
		ids := g.Input("ids", ir.I64, ir.Shape{ir.D(1), ir.S("seq")})
		out := g.Input("acc", ir.F32, ir.Shape{ir.S("seq"), ir.D(8)})
		for i := range n {
			inv := ir.FromF32([]float32{1, 0.1, 0.01, float32(i) * 1e-3}, 4)
			pos := g.Op("arange", ir.Attrs{"axis": int64(1), "dtype": ir.F32}, ids)
			ang := g.Op("mul", nil, g.Op("unsqueeze", ir.Attrs{"axes": []int64{1}}, pos), g.Constant(inv))
			full := g.Op("concat", ir.Attrs{"axis": int64(1)}, ang, ang)
			out = g.Op("add", nil, out, g.Op("mul", nil, g.Op("cos", nil, full), g.Op("sin", nil, full)))
		}
		g.SetOutput("y", out)
	})
}

func BenchmarkDCE(b *testing.B) { benchPass(b, "dce", halfDeadChain, benchContext) }

func BenchmarkCSE(b *testing.B) { benchPass(b, "cse", duplicatedChain, benchContext) }

func BenchmarkFoldConstants(b *testing.B) {
	benchPass(b, "fold-constants", constChain, benchContext)
}

func BenchmarkFoldRoPE(b *testing.B) { benchPass(b, "fold-rope", ropeChain, benchContext) }

func BenchmarkFuseRMSNorm(b *testing.B) {
	benchPass(b, "fuse-rms-norm", rmsNormChain, benchContext)
}

func BenchmarkFuseSwiGLU(b *testing.B) { benchPass(b, "fuse-swiglu", swigluChain, benchContext) }

func BenchmarkFuseAttention(b *testing.B) {
	benchPass(b, "fuse-attention", attentionChain, benchContext)
}

func BenchmarkDecomposeFused(b *testing.B) {
	benchPass(b, "decompose-fused", fusedChain, benchContext)
}

// TestBenchGraphsFuse checks that the benchmark graphs are valid and that
// each pass really fires on its graph, so the benchmarks time rewrites and
// not only pattern misses.
func TestBenchGraphsFuse(t *testing.T) {
	for _, tc := range []struct {
		pass  string
		build func(int) *ir.Graph
		rule  string
	}{
		{"dce", halfDeadChain, "dce.removed"},
		{"cse", duplicatedChain, "cse.merged"},
		{"fold-constants", constChain, "fold-constants.folded"},
		{"fold-rope", ropeChain, "fold-rope.folded"},
		{"fuse-rms-norm", rmsNormChain, "fuse-rms-norm.fused"},
		{"fuse-swiglu", swigluChain, "fuse-swiglu.fused"},
		{"fuse-attention", attentionChain, "fuse-attention.fused"},
		{"decompose-fused", fusedChain, "decompose-fused.lowered"},
	} {
		g := tc.build(3)
		if err := ir.Verify(g); err != nil {
			t.Fatalf("benchmark graph for %s: %v", tc.pass, err)
		}
		c := benchContext()
		if err := Registry[tc.pass].Run(g, c); err != nil {
			t.Fatalf("%s: %v", tc.pass, err)
		}
		if err := ir.Verify(g); err != nil {
			t.Errorf("%s breaks its benchmark graph: %v", tc.pass, err)
		}
		if c.Stats[tc.rule] < 3 {
			t.Errorf("%s: Stats[%s] = %d on a 3-block chain, want at least 3", tc.pass, tc.rule, c.Stats[tc.rule])
		}
	}
}
