package engine

import (
	"context"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/mmadac/mmadac/frontend"
	"github.com/mmadac/mmadac/ir"
	"github.com/mmadac/mmadac/runtime/sampler"
)

const goldenDir = "../../testdata/upstream-tiny"

type goldenCase struct {
	Kind          string             `json:"kind"`
	Name          string             `json:"name"`
	File          string             `json:"file"`
	PromptIDs     [][]int64          `json:"prompt_ids"`
	AttentionMask [][]int64          `json:"attention_mask"`
	Params        map[string]any     `json:"params"`
	MaskID        int64              `json:"mask_id"`
	ExpectedIDs   [][]int64          `json:"expected_ids"`
	Noise         string             `json:"noise"`
	NoiseOrder    []string           `json:"noise_order"`
	Extra         map[string]float64 `json:"-"`
}

func loadCases(t *testing.T) []goldenCase {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(goldenDir, "cases.json"))
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Cases []goldenCase `json:"cases"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	return doc.Cases
}

// backends lists the backends every golden test runs on.
func backends(t *testing.T) []string {
	out := []string{BackendInterp}
	if _, err := openORTCheck(); err == nil {
		out = append(out, BackendORT)
	} else if os.Getenv("CI") != "" {
		t.Fatalf("ONNX Runtime is required in CI: %v", err)
	} else {
		t.Logf("skipping the ort backend: %v", err)
	}
	return out
}

func maxAbsDiff(t *testing.T, got, want *ir.Tensor, rowMask []int64) float64 {
	t.Helper()
	if len(got.Shape) != 3 || got.Len() != want.Len() {
		t.Fatalf("logits shape %v, want %v", got.Shape, want.Shape)
	}
	vocab := int(got.Shape[2])
	g, w := got.F32(), want.F32()
	worst := 0.0
	for i := range g {
		if math.IsNaN(float64(g[i])) || math.IsInf(float64(g[i]), 0) {
			t.Fatalf("logit %d is %v", i, g[i])
		}
		if rowMask != nil && rowMask[i/vocab] == 0 {
			continue
		}
		worst = math.Max(worst, math.Abs(float64(g[i]-w[i])))
	}
	return worst
}

func TestGoldenForward(t *testing.T) {
	for _, be := range backends(t) {
		for _, pl := range pipelines[:2] {
			goldenForward(t, be, pl.name, pl.opts)
		}
	}
}

// goldenForward checks every forward case on one backend and pipeline.
func goldenForward(t *testing.T, be, pipeline string, po PassOptions) {
	{
		for _, ckpt := range []struct {
			dir, key string
			tol      float64
		}{{"mmada", "logits", 1e-4}, {"mmada-bf16", "logits_from_bf16_weights", 1e-3}} {
			m, err := LoadTextModelWith(filepath.Join(goldenDir, ckpt.dir), be, po)
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range loadCases(t) {
				if c.Kind != "forward" {
					continue
				}
				ts, err := frontend.ReadSafetensors(filepath.Join(goldenDir, c.File))
				if err != nil {
					t.Fatal(err)
				}
				ids := ts["input_ids"]
				mask, hasMask := ts["attention_mask"]
				if !hasMask {
					mask = ir.NewTensor(ir.I64, ids.Shape...)
					for i := range mask.I64() {
						mask.I64()[i] = 1
					}
				}
				got, err := m.Forward(ids, mask)
				if err != nil {
					t.Fatalf("%s/%s/%s: %v", be, ckpt.dir, c.Name, err)
				}
				var rows []int64
				if hasMask {
					rows = mask.I64()
				}
				d := maxAbsDiff(t, got, ts[ckpt.key], rows)
				t.Logf("%s %s %s %s: max abs error %.3g", be, pipeline, ckpt.dir, c.Name, d)
				if d > ckpt.tol {
					t.Errorf("%s %s %s %s: max abs error %.3g > %g", be, pipeline, ckpt.dir, c.Name, d, ckpt.tol)
				}
			}
			m.Close()
		}
	}
}

func paramsOf(c goldenCase) sampler.TextParams {
	p := sampler.TextParams{
		Steps:       int(c.Params["steps"].(float64)),
		GenLength:   int(c.Params["gen_length"].(float64)),
		BlockLength: int(c.Params["block_length"].(float64)),
		Temperature: c.Params["temperature"].(float64),
		CFGScale:    c.Params["cfg_scale"].(float64),
		Remasking:   c.Params["remasking"].(string),
		MaskID:      c.MaskID,
	}
	return p
}

// pipelines are the configurations every generation case runs under: the
// unoptimised graph with full logits, and the default pipeline with and
// without the folded sampling head.
var pipelines = []struct {
	name string
	opts PassOptions
	head bool
}{
	{"passes-none", PassOptions{None: true}, false},
	{"default", PassOptions{Verify: true}, false},
	{"default+folded-head", PassOptions{Verify: true}, true},
}

func TestGoldenTextGeneration(t *testing.T) {
	for _, be := range backends(t) {
		for _, pl := range pipelines {
			t.Run(be+"/"+pl.name, func(t *testing.T) { goldenTextCases(t, be, pl.opts, pl.head) })
		}
	}
}

func goldenTextCases(t *testing.T, be string, po PassOptions, head bool) {
	m, err := LoadTextModelWith(filepath.Join(goldenDir, "mmada"), be, po)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	m.SetHeadFolding(head)
	checkTextCases(t, m, be)
}

// checkTextCases generates every golden text and mmu case with m and
// compares the ids with upstream's.
func checkTextCases(t *testing.T, m *TextModel, be string) {
	t.Helper()
	for _, c := range loadCases(t) {
		if c.Kind != "text" && c.Kind != "mmu" {
			continue
		}
		var noise sampler.NoiseSource = sampler.NewSeeded(0)
		if c.Noise != "" {
			r, err := sampler.NewReplay(filepath.Join(goldenDir, c.Noise), c.NoiseOrder)
			if err != nil {
				t.Fatal(err)
			}
			noise = r
		}
		got, err := sampler.GenerateText(context.Background(), m.Forward, sampler.TextRequest{
			Prompt: c.PromptIDs, AttentionMask: c.AttentionMask, Params: paramsOf(c), Noise: noise, Head: m.Head(),
		})
		if err != nil {
			t.Fatalf("%s %s: %v", be, c.Name, err)
		}
		if r, ok := noise.(*sampler.Replay); ok && r.Remaining() != 0 {
			t.Errorf("%s %s: %d recorded draws left unused", be, c.Name, r.Remaining())
		}
		for b := range got {
			for i := range got[b] {
				if got[b][i] != c.ExpectedIDs[b][i] {
					t.Errorf("%s %s: row %d differs at %d:\n got %v\nwant %v", be, c.Name, b, i, got[b], c.ExpectedIDs[b])
					break
				}
			}
		}
	}
}
