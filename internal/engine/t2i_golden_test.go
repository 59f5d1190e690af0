package engine

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/mmadac/mmadac/runtime/sampler"
)

// t2iCase is a t2i entry of cases.json.
type t2iCase struct {
	Kind                string    `json:"kind"`
	Name                string    `json:"name"`
	InputIDs            [][]int64 `json:"input_ids"`
	AttentionMask       [][]int64 `json:"attention_mask"`
	UncondInputIDs      [][]int64 `json:"uncond_input_ids"`
	UncondAttentionMask [][]int64 `json:"uncond_attention_mask"`
	Params              struct {
		GuidanceScale float64 `json:"guidance_scale"`
		Timesteps     int     `json:"timesteps"`
		Temperature   float64 `json:"temperature"`
	} `json:"params"`
	PrefixLength   int       `json:"prefix_length"`
	NumImageTokens int       `json:"num_image_tokens"`
	ExpectedCodes  [][]int64 `json:"expected_codes"`
	Noise          string    `json:"noise"`
	NoiseOrder     []string  `json:"noise_order"`
	Image          string    `json:"image"`
}

func loadT2ICases(t *testing.T) []t2iCase {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(goldenDir, "cases.json"))
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Cases []t2iCase `json:"cases"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	var out []t2iCase
	for _, c := range doc.Cases {
		if c.Kind == "t2i" {
			out = append(out, c)
		}
	}
	if len(out) == 0 {
		t.Fatal("cases.json has no t2i cases")
	}
	return out
}

func (c t2iCase) request(t *testing.T) T2IRequest {
	t.Helper()
	noise, err := sampler.NewReplay(filepath.Join(goldenDir, c.Noise), c.NoiseOrder)
	if err != nil {
		t.Fatal(err)
	}
	// The model-dependent parameters stay zero: GenerateImages must
	// derive them (prefix 17, 16 tokens) from the configs.
	return T2IRequest{
		InputIDs: c.InputIDs, AttentionMask: c.AttentionMask,
		UncondInputIDs: c.UncondInputIDs, UncondAttentionMask: c.UncondAttentionMask,
		Params: sampler.T2IParams{GuidanceScale: c.Params.GuidanceScale, Timesteps: c.Params.Timesteps, Temperature: c.Params.Temperature},
		Noise:  noise,
	}
}

func TestGoldenT2I(t *testing.T) {
	for _, be := range backends(t) {
		for _, folded := range []bool{true, false} {
			goldenT2I(t, be, PassOptions{Verify: true}, folded)
		}
		goldenT2I(t, be, PassOptions{None: true}, false)
	}
}

// goldenT2I runs every t2i case with the folded probs head (softmax over
// the codebook in the graph) or with full logits.
func goldenT2I(t *testing.T, be string, po PassOptions, folded bool) {
	text, err := LoadTextModelWith(filepath.Join(goldenDir, "mmada"), be, po)
	if err != nil {
		t.Fatal(err)
	}
	defer text.Close()
	text.SetHeadFolding(folded)
	vq := loadTinyVQ(t, be)
	if folded {
		be += "+folded-head"
	}
	if po.None {
		be += "+passes-none"
	}
	checkT2ICases(t, text, vq, be)
}

// checkT2ICases generates every golden t2i case with text and vq and
// compares the codes and the PNG pixels with upstream's.
func checkT2ICases(t *testing.T, text *TextModel, vq *VQModel, be string) {
	t.Helper()
	for _, c := range loadT2ICases(t) {
		req := c.request(t)
		steps := 0
		req.OnStep = func(sampler.T2IStepEvent) { steps++ }
		codes, pixels, err := GenerateImages(context.Background(), text, vq, req)
		if err != nil {
			t.Fatalf("%s %s: %v", be, c.Name, err)
		}
		if r := req.Noise.(*sampler.Replay); r.Remaining() != 0 {
			t.Errorf("%s %s: %d recorded draws left unused", be, c.Name, r.Remaining())
		}
		if steps != c.Params.Timesteps {
			t.Errorf("%s %s: %d step events, want %d", be, c.Name, steps, c.Params.Timesteps)
		}
		for b := range c.ExpectedCodes {
			if !slices.Equal(codes[b], c.ExpectedCodes[b]) {
				t.Errorf("%s %s: row %d codes\n got %v\nwant %v", be, c.Name, b, codes[b], c.ExpectedCodes[b])
			}
		}
		want := readGolden(t, filepath.Join(goldenDir, c.Image)).bytes["image_u8"]
		compareImage(t, be+" "+c.Name, pixels, want)
	}
}

func TestGenerateImagesRejects(t *testing.T) {
	text, err := LoadTextModel(filepath.Join(goldenDir, "mmada"), BackendInterp)
	if err != nil {
		t.Fatal(err)
	}
	defer text.Close()
	vq := loadTinyVQ(t, BackendInterp)
	c := loadT2ICases(t)[0]
	for _, tc := range []struct {
		name   string
		edit   func(r *T2IRequest)
		reason string
	}{
		{"codebook mismatch", func(r *T2IRequest) { r.Params.CodebookSize = 32 }, "does not match the vq model's 64"},
		{"grid too small", func(r *T2IRequest) { r.Grid = [2]int{2, 4} }, "the number of image tokens does not match the prompt"},
		{"grid against tokens", func(r *T2IRequest) { r.Grid = [2]int{2, 4}; r.Params.NumImageTokens = 16 }, "grid 2x4 has 8 cells for 16 image tokens"},
		{"no guidance prompt", func(r *T2IRequest) { r.UncondInputIDs = nil }, "needs the unconditional prompt"},
		{"no noise", func(r *T2IRequest) { r.Noise = nil }, "no noise source"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := c.request(t)
			tc.edit(&req)
			_, _, err := GenerateImages(context.Background(), text, vq, req)
			if err == nil || !strings.Contains(err.Error(), tc.reason) {
				t.Errorf("error %v, want one containing %q", err, tc.reason)
			}
		})
	}
	if _, _, err := GenerateImages(context.Background(), nil, vq, c.request(t)); err == nil {
		t.Error("nil text model accepted")
	}
}
