package passes

// Go tests of single passes for what the golden cases cannot show: numbers
// over several input sizes, error paths of the context's evaluator, and
// graphs built with the Go builder.

import (
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/mmadac/mmadac/ir"
	"github.com/mmadac/mmadac/runtime/interp"
)

// ropeGraph builds the transformer's RoPE tables (theta 500000, head_dim
// 16, as the tiny MMaDA config) and applies them to an input x.
func ropeGraph(t *testing.T) *ir.Graph {
	t.Helper()
	const theta, headDim = 500000.0, 16
	g, err := ir.Build("rope", func(g *ir.Graph) {
		ids := g.Input("ids", ir.I64, ir.Shape{ir.D(1), ir.S("seq")})
		x := g.Input("x", ir.F32, ir.Shape{ir.D(1), ir.S("seq"), ir.D(headDim)})
		inv := ir.NewTensor(ir.F32, headDim/2)
		for j := range headDim / 2 {
			inv.F32()[j] = 1 / float32(math.Pow(theta, float64(float32(2*j)/headDim)))
		}
		pos := g.Op("arange", ir.Attrs{"axis": int64(1), "dtype": ir.F32}, ids)
		ang := g.Op("mul", nil, g.Op("unsqueeze", ir.Attrs{"axes": []int64{1}}, pos), g.Constant(inv))
		full := g.Op("concat", ir.Attrs{"axis": int64(1)}, ang, ang)
		g.SetOutput("cos", g.Op("mul", nil, x, g.Op("cos", nil, full)))
		g.SetOutput("sin", g.Op("mul", nil, x, g.Op("sin", nil, full)))
	})
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// TestFoldRoPEBitIdentical runs the folded and the unfolded RoPE graph on
// the interpreter for sequence lengths up to the table length and requires
// identical bits: the pass builds its tables with the interpreter's
// float32 arithmetic.
func TestFoldRoPEBitIdentical(t *testing.T) {
	const maxSeqLen = 32
	folded := ropeGraph(t)
	c := &Context{Eval: interp.EvalNode, MaxSeqLen: maxSeqLen}
	if err := runOne(Registry["fold-rope"], folded, c); err != nil {
		t.Fatal(err)
	}
	if err := ir.Verify(folded); err != nil {
		t.Fatal(err)
	}
	if c.Stats["fold-rope.folded"] != 2 {
		t.Fatalf("fold-rope folded %d patterns, want 2 (cos and sin)", c.Stats["fold-rope.folded"])
	}
	if got := folded.Meta["rope_table_length"]; got != "32" {
		t.Errorf("meta rope_table_length = %q, want 32", got)
	}
	for _, seq := range []int64{1, 7, maxSeqLen} {
		err := compareGraphs(ropeGraph(t), folded, map[string]int64{"seq": seq}, 2, 0)
		if err != nil {
			t.Errorf("seq %d: %v", seq, err)
		}
	}
}

// TestFoldRoPEBeyondTable documents the limit of a folded graph: a
// sequence longer than the table fails with an index error instead of
// giving wrong numbers.
func TestFoldRoPEBeyondTable(t *testing.T) {
	const maxSeqLen = 8
	g := ropeGraph(t)
	if err := runOne(Registry["fold-rope"], g, &Context{MaxSeqLen: maxSeqLen}); err != nil {
		t.Fatal(err)
	}
	feeds, err := randomInputs(g, map[string]int64{"seq": maxSeqLen + 1}, 2, 1)
	if err != nil {
		t.Fatal(err)
	}
	_, err = runGraph(g, feeds)
	if err == nil || !strings.Contains(err.Error(), "out of range") {
		t.Fatalf("running a folded graph past its table returned %v, want an index out of range error", err)
	}
}

func TestFoldRoPEDefaultTableLength(t *testing.T) {
	g := ropeGraph(t)
	if err := runOne(Registry["fold-rope"], g, &Context{}); err != nil {
		t.Fatal(err)
	}
	if got, want := g.Meta["rope_table_length"], "4096"; got != want {
		t.Errorf("meta rope_table_length = %q with no MaxSeqLen, want DefaultMaxSeqLen %s", got, want)
	}
}

// TestFoldConstantsEvalError requires an evaluator failure to stop the
// pass with an error that names the op and wraps the cause.
func TestFoldConstantsEvalError(t *testing.T) {
	g, err := ir.ParseString(`graph @eval_error {
  input %x : f32[2]
  const %a : f32[2] = [1.0,2.0]
  %n = neg %a : f32[2]
  %y = add %x, %n : f32[2]
  output y = %y
}
`)
	if err != nil {
		t.Fatal(err)
	}
	cause := errors.New("no kernel")
	c := &Context{Eval: func(*ir.Node, []*ir.Tensor) ([]*ir.Tensor, error) { return nil, cause }}
	err = runOne(Registry["fold-constants"], g, c)
	if !errors.Is(err, cause) {
		t.Fatalf("fold-constants returned %v, want an error wrapping the evaluator's", err)
	}
	for _, want := range []string{"fold-constants", "neg", "eval_error"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
}

// TestFoldConstantsLimitBoundary folds a result of exactly FoldLimit bytes
// and leaves one of a single element more.
func TestFoldConstantsLimitBoundary(t *testing.T) {
	for _, tc := range []struct {
		elems  int64
		folded int
	}{
		{16, 1},
		{17, 0},
	} {
		g, err := ir.Build("limit", func(g *ir.Graph) {
			c := g.Constant(ir.NewTensor(ir.F32, tc.elems))
			g.SetOutput("y", g.Op("add", nil, g.Input("x", ir.F32, ir.Static(tc.elems)), g.Op("exp", nil, c)))
		})
		if err != nil {
			t.Fatal(err)
		}
		c := &Context{Eval: interp.EvalNode, FoldLimit: 64}
		if err := runOne(Registry["fold-constants"], g, c); err != nil {
			t.Fatal(err)
		}
		if got := c.Stats["fold-constants.folded"]; got != tc.folded {
			t.Errorf("f32[%d] (%d bytes) with a 64-byte limit: folded %d nodes, want %d", tc.elems, 4*tc.elems, got, tc.folded)
		}
	}
}

// headGraph is hidden [batch, seq, d] times a head weight, both inputs so
// the interpreter can run the graph.
func headGraph(t *testing.T) *ir.Graph {
	t.Helper()
	g, err := ir.Build("head", func(g *ir.Graph) {
		h := g.Input("h", ir.F32, ir.Shape{ir.S("batch"), ir.S("seq"), ir.D(8)})
		wt := g.Input("wt", ir.F32, ir.Static(8, 12))
		g.SetOutput("logits", g.Op("matmul", nil, h, wt))
	})
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// TestFoldSamplingHeadGreedyNumbers compares the folded greedy head with
// the argmax and softmax probability computed from the full logits.
func TestFoldSamplingHeadGreedyNumbers(t *testing.T) {
	full := headGraph(t)
	folded := headGraph(t)
	c := &Context{Eval: interp.EvalNode, Head: &HeadSpec{Mode: HeadGreedy}}
	if err := runOne(Registry["fold-sampling-head"], folded, c); err != nil {
		t.Fatal(err)
	}
	if err := ir.Verify(folded); err != nil {
		t.Fatal(err)
	}

	const batch, seq = 2, 5
	feeds, err := randomInputs(full, map[string]int64{"batch": batch, "seq": seq}, 2, 3)
	if err != nil {
		t.Fatal(err)
	}
	want, err := runGraph(full, feeds)
	if err != nil {
		t.Fatal(err)
	}
	positions := []int64{4, 0, 2}
	feeds[InputPositions] = ir.FromI64(positions, int64(len(positions)))
	got, err := runGraph(folded, feeds)
	if err != nil {
		t.Fatal(err)
	}

	logits := want["logits"].F32()
	tokens, conf := got["tokens"].I64(), got["confidence"].F64()
	const vocab = 12
	for b := range int64(batch) {
		for i, p := range positions {
			row := logits[(b*seq+p)*vocab : (b*seq+p+1)*vocab]
			best, sum := 0, 0.0
			for j, v := range row {
				if v > row[best] {
					best = j
				}
			}
			for _, v := range row {
				sum += math.Exp(float64(v) - float64(row[best]))
			}
			k := b*int64(len(positions)) + int64(i)
			if tokens[k] != int64(best) {
				t.Errorf("batch %d position %d: token %d, want argmax %d", b, p, tokens[k], best)
			}
			if math.Abs(conf[k]-1/sum) > 1e-6 {
				t.Errorf("batch %d position %d: confidence %g, want %g", b, p, conf[k], 1/sum)
			}
		}
	}
}
