package passes

// The default pipelines on the real tiny MMaDA transformer: the fusions
// fire once per layer, the ascend pipeline lowers every fused op, and the
// interpreter gives the same logits before and after.

import (
	"math"
	"math/rand/v2"
	"path/filepath"
	"testing"

	"github.com/mmadac/mmadac/frontend"
	"github.com/mmadac/mmadac/ir"
	"github.com/mmadac/mmadac/models/mmada"
	"github.com/mmadac/mmadac/runtime/interp"
)

// tinyModelDir holds the upstream-format tiny checkpoint (2 layers,
// d_model 64, vocabulary 320).
var tinyModelDir = filepath.Join("..", "testdata", "upstream-tiny", "mmada")

// modelTolerance bounds the logits difference a pipeline may cause: the
// fused kernels sum in another order than the unfused ops.
const modelTolerance = 1e-5

// loadTinyModel returns the config and the open checkpoint; the checkpoint
// closes when the test ends.
func loadTinyModel(tb testing.TB) (*frontend.LLaDAConfig, *frontend.Checkpoint) {
	tb.Helper()
	cfg, err := frontend.LoadLLaDAConfig(tinyModelDir)
	if err != nil {
		tb.Fatal(err)
	}
	ckpt, err := frontend.OpenCheckpoint(tinyModelDir)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { ckpt.Close() })
	return cfg, ckpt
}

// modelInputs draws token ids over the whole vocabulary and a padding mask
// whose second row ends in two padding tokens.
func modelInputs(vocab, batch, seq int64) map[string]*ir.Tensor {
	rng := rand.New(rand.NewPCG(7, 0))
	ids := ir.NewTensor(ir.I64, batch, seq)
	for i := range ids.I64() {
		ids.I64()[i] = rng.Int64N(vocab)
	}
	mask := ir.NewTensor(ir.I64, batch, seq)
	for b := int64(0); b < batch; b++ {
		for s := int64(0); s < seq; s++ {
			if b == 0 || s < seq-2 {
				mask.I64()[b*seq+s] = 1
			}
		}
	}
	return map[string]*ir.Tensor{mmada.InputIDs: ids, mmada.AttentionMask: mask}
}

func TestPipelinesOnTinyTransformer(t *testing.T) {
	cfg, ckpt := loadTinyModel(t)
	layers := cfg.NLayers
	const batch, seq = 2, 8
	feeds := modelInputs(int64(cfg.Vocab()), batch, seq)

	for _, shape := range []struct {
		name string
		opts mmada.Options
	}{
		{"symbolic", mmada.Options{}},
		{"static", mmada.Options{Batch: batch, Seq: seq}},
	} {
		ref, err := mmada.Build(cfg, ckpt, shape.opts)
		if err != nil {
			t.Fatal(err)
		}
		if err := ir.Verify(ref); err != nil {
			t.Fatalf("%s transformer fails Verify before any pass: %v", shape.name, err)
		}
		want, err := runGraph(ref, feeds)
		if err != nil {
			t.Fatal(err)
		}

		for _, target := range []string{"onnx", "ascend"} {
			t.Run(shape.name+"/"+target, func(t *testing.T) {
				g, err := mmada.Build(cfg, ckpt, shape.opts)
				if err != nil {
					t.Fatal(err)
				}
				c := &Context{Eval: interp.EvalNode, MaxSeqLen: 64}
				if _, err := Run(g, c, Options{Target: target, Verify: true}); err != nil {
					t.Fatal(err)
				}
				ops := countOps(g)
				t.Logf("%d nodes after the %s pipeline; rewrites %v", len(g.Nodes), target, c.Stats)

				for _, op := range []string{"cos", "sin"} {
					if ops[op] != 0 {
						t.Errorf("%d %s ops left; fold-rope should turn them into tables", ops[op], op)
					}
				}
				switch target {
				case "onnx":
					if ops["attention"] != layers {
						t.Errorf("%d attention ops, want one per layer (%d)", ops["attention"], layers)
					}
					if ops["softmax"] != 0 {
						t.Errorf("%d standalone softmax ops left, want 0", ops["softmax"])
					}
					if ops["rms_norm"] != 2*layers+1 {
						t.Errorf("%d rms_norm ops, want two per layer plus the final norm (%d)", ops["rms_norm"], 2*layers+1)
					}
					if ops["swiglu"] != layers {
						t.Errorf("%d swiglu ops, want one per layer (%d)", ops["swiglu"], layers)
					}
					if ops["rope"] != 2*layers {
						t.Errorf("%d rope ops, want two per layer, for q and k (%d)", ops["rope"], 2*layers)
					}
				case "ascend":
					for _, op := range []string{"attention", "rms_norm", "swiglu", "rope"} {
						if ops[op] != 0 {
							t.Errorf("%d fused %s ops left after decompose-fused", ops[op], op)
						}
					}
					if ops["softmax"] != layers {
						t.Errorf("%d softmax ops, want one per layer (%d) after lowering attention", ops["softmax"], layers)
					}
				}

				got, err := runGraph(g, feeds)
				if err != nil {
					t.Fatal(err)
				}
				// Padding rows are unspecified (the ascend target clamps the
				// masking constant to what float16 holds, which changes
				// only them), so only real tokens are compared.
				zeroPaddingRows(want[mmada.Logits], feeds[mmada.AttentionMask])
				zeroPaddingRows(got[mmada.Logits], feeds[mmada.AttentionMask])
				if err := compareOutputs(want, got, modelTolerance); err != nil {
					t.Errorf("logits after the %s pipeline: %v", target, err)
				}
				if d := maxAbsDiff(want[mmada.Logits].F32(), got[mmada.Logits].F32()); d > 0 {
					t.Logf("max abs logits difference after the %s pipeline: %g", target, d)
				}
			})
		}
	}
}

// TestPipelineTextRoundTrip prints the optimised transformer, parses it
// back and requires the same text, so that the dumps of --dump-dir can be
// read again by `mmadac ir`.
func TestPipelineTextRoundTrip(t *testing.T) {
	cfg, ckpt := loadTinyModel(t)
	for _, target := range []string{"onnx", "ascend"} {
		g, err := mmada.Build(cfg, ckpt, mmada.Options{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := Run(g, &Context{Eval: interp.EvalNode, MaxSeqLen: 64}, Options{Target: target, Verify: true}); err != nil {
			t.Fatal(err)
		}
		text := g.String()
		parsed, err := ir.ParseString(text)
		if err != nil {
			t.Fatalf("%s: parse optimised transformer: %v", target, err)
		}
		if again := parsed.String(); again != text {
			t.Errorf("%s: print(parse(text)) differs from the printed optimised transformer:\n%s", target, lineDiff(text, again))
		}
	}
}

// zeroPaddingRows clears the logits of positions whose mask is 0.
func zeroPaddingRows(logits, mask *ir.Tensor) {
	vocab := int(logits.Shape[len(logits.Shape)-1])
	d := logits.F32()
	for i, m := range mask.I64() {
		if m == 0 {
			clear(d[i*vocab : (i+1)*vocab])
		}
	}
}

// TestSinkGatherNarrowsLastLayer builds the folded greedy head of the tiny
// transformer with and without sink-gather. With it, the last layer's
// query projection, attention, output projection and MLP run on the
// selected positions only, the graph does fewer FLOPs, and the tokens and
// confidences are those of the unnarrowed graph.
func TestSinkGatherNarrowsLastLayer(t *testing.T) {
	cfg, ckpt := loadTinyModel(t)
	const batch, seq = 2, 8
	build := func(disable []string) *ir.Graph {
		g, err := mmada.Build(cfg, ckpt, mmada.Options{})
		if err != nil {
			t.Fatal(err)
		}
		c := &Context{Eval: interp.EvalNode, MaxSeqLen: 64, Head: &HeadSpec{Mode: HeadGreedy}}
		if _, err := Run(g, c, Options{Target: "onnx", Verify: true, Disable: disable}); err != nil {
			t.Fatal(err)
		}
		return g
	}
	wide, narrow := build([]string{"sink-gather"}), build(nil)

	// Narrowed nodes carry the positions' symbolic size in their rows.
	narrowed := map[string]int{}
	for _, n := range narrow.Nodes {
		sh := n.Outputs[0].Type.Shape
		for _, d := range sh {
			if d.Sym == "npos" {
				narrowed[n.Op]++
				break
			}
		}
	}
	// q, o, gate, up and down projections plus the head's matmul.
	if narrowed["matmul"] != 6 || narrowed["attention"] != 1 || narrowed["swiglu"] != 1 || narrowed["rms_norm"] != 2 {
		t.Errorf("narrowed ops %v; want 6 matmul, 1 attention, 1 swiglu, 2 rms_norm", narrowed)
	}
	bind := map[string]int64{"batch": batch, "seq": seq, "npos": 3}
	if w, n := Stats(wide, bind).FLOPs, Stats(narrow, bind).FLOPs; n >= w {
		t.Errorf("narrowed graph does %d FLOPs, the wide one %d", n, w)
	}

	feeds := modelInputs(int64(cfg.Vocab()), batch, seq)
	feeds[InputPositions] = ir.FromI64([]int64{5, 1, 7}, 3)
	want, err := runGraph(wide, feeds)
	if err != nil {
		t.Fatal(err)
	}
	got, err := runGraph(narrow, feeds)
	if err != nil {
		t.Fatal(err)
	}
	wt, gt := want["tokens"].I64(), got["tokens"].I64()
	wc, gc := want["confidence"].F64(), got["confidence"].F64()
	for i := range wt {
		if wt[i] != gt[i] || math.Abs(wc[i]-gc[i]) > 1e-6 {
			t.Errorf("selected row %d: token %d confidence %g narrowed, %d and %g wide", i, gt[i], gc[i], wt[i], wc[i])
		}
	}
}
