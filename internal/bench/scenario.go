// Package bench measures mmadac's samplers end to end: the text, mmu,
// text-to-image and single-forward scenarios on any text model (mmadac's
// own graphs on any backend, or an ONNX file exported elsewhere), with
// per-step latency, throughput, achieved GFLOP/s against a calibrated
// matrix-product peak, peak memory and the bytes that cross between the
// backend and Go. It also measures the opt-in accelerations of the text
// sampler (threshold decoding, early stop) against exact decoding.
//
// # Timing
//
// A step is one model call plus the sampler's host work around it. Its
// latency is the time between two consecutive step events of the sampler
// (the first step counts from the start of generation). Every run starts
// with one untimed warm-up step on the same shapes, so session creation
// and the one-time setup of kernels are not charged to step 1.
package bench

import (
	"fmt"
	"math/rand/v2"
	"strings"

	"github.com/mmadac/mmadac/frontend"
	"github.com/mmadac/mmadac/runtime/sampler"
)

// Scenario kinds.
const (
	// KindText is LLaDA block diffusion after a text prompt.
	KindText = "text"
	// KindMMU is text generation after a prompt that holds image codes:
	// <|mmu|> <|soi|> codes <|eoi|> question.
	KindMMU = "mmu"
	// KindT2I is MaskGIT decoding of image tokens with guidance. Only the
	// transformer steps are timed; decoding the codes to pixels is not
	// part of it.
	KindT2I = "t2i"
	// KindForward is one transformer call on a fixed sequence, repeated.
	KindForward = "forward"
)

// Kinds lists the scenario kinds in the order `all` runs them.
var Kinds = []string{KindText, KindMMU, KindT2I, KindForward}

// Scenario sets the shapes and sampler settings of one measurement.
type Scenario struct {
	// Kind is one of KindText, KindMMU, KindT2I or KindForward.
	Kind string `json:"kind"`
	// Batch is the number of sequences generated together.
	Batch int `json:"batch"`
	// PromptLength is the number of text prompt tokens: the whole prompt
	// for text, the question for mmu, the caption prefix for t2i and the
	// whole sequence for forward.
	PromptLength int `json:"prompt_length"`
	// ImageTokens is the number of image codes in the mmu prompt, or of
	// image tokens that t2i generates.
	ImageTokens int `json:"image_tokens,omitempty"`
	// Text holds the text and mmu sampler settings (GenLength, BlockLength,
	// Steps and the opt-in modes). MaskID and EOSIDs are filled in from
	// the model config.
	Text sampler.TextParams `json:"text"`
	// T2ISteps, GuidanceScale and Temperature are the t2i settings.
	T2ISteps      int     `json:"t2i_steps,omitempty"`
	GuidanceScale float64 `json:"guidance_scale,omitempty"`
	Temperature   float64 `json:"t2i_temperature,omitempty"`
	// ForwardRuns is the number of timed calls of the forward scenario.
	ForwardRuns int `json:"forward_runs,omitempty"`
	// Seed seeds the random prompt, the image codes and the sampler noise.
	Seed uint64 `json:"seed"`
}

// DefaultScenario returns the standard shapes of a kind:
//   - text: prompt 64, gen 256, block 32, 256 steps, greedy;
//   - mmu: 256 image codes and a 32-token question, gen 128, block 32,
//     128 steps;
//   - t2i: a 64-token caption, 1024 image tokens, 15 steps, guidance 3.5,
//     temperature 1;
//   - forward: 8 calls on one sequence of 320 tokens (the text scenario's
//     prompt and generation).
func DefaultScenario(kind string) (Scenario, error) {
	text := sampler.TextParams{Remasking: "low_confidence"}
	switch kind {
	case KindText:
		text.GenLength, text.BlockLength, text.Steps = 256, 32, 256
		return Scenario{Kind: kind, Batch: 1, PromptLength: 64, Text: text, Seed: 1}, nil
	case KindMMU:
		text.GenLength, text.BlockLength, text.Steps = 128, 32, 128
		return Scenario{Kind: kind, Batch: 1, PromptLength: 32, ImageTokens: 256, Text: text, Seed: 1}, nil
	case KindT2I:
		return Scenario{Kind: kind, Batch: 1, PromptLength: 64, ImageTokens: 1024, T2ISteps: 15,
			GuidanceScale: 3.5, Temperature: 1, Seed: 1}, nil
	case KindForward:
		return Scenario{Kind: kind, Batch: 1, PromptLength: 320, ForwardRuns: 8, Seed: 1}, nil
	}
	return Scenario{}, fmt.Errorf("unknown scenario %q; use %s", kind, strings.Join(Kinds, ", "))
}

// SequenceLength returns the length of the sequences the model runs on.
func (s Scenario) SequenceLength() int {
	switch s.Kind {
	case KindText:
		return s.PromptLength + s.Text.GenLength
	case KindMMU:
		return mmuPrefix(s) + s.Text.GenLength
	case KindT2I:
		// [iPAD]... <|t2i|> caption, then <|soi|> image <|eoi|>.
		return t2iPrefix(s) + s.ImageTokens + 2
	}
	return s.PromptLength
}

// mmuPrefix is the mmu prompt length: <|mmu|> <|soi|> codes <|eoi|> and
// the question.
func mmuPrefix(s Scenario) int { return 3 + s.ImageTokens + s.PromptLength }

// t2iPrefix is the t2i text prefix: <|t2i|>, BOS, the caption and EOS.
func t2iPrefix(s Scenario) int { return s.PromptLength + 3 }

// Validate checks the scenario against the model config.
func (s Scenario) Validate(cfg *frontend.LLaDAConfig) error {
	if s.Batch <= 0 {
		return fmt.Errorf("batch must be positive, got %d", s.Batch)
	}
	if s.PromptLength <= 0 {
		return fmt.Errorf("prompt length must be positive, got %d", s.PromptLength)
	}
	switch s.Kind {
	case KindText, KindMMU:
		// Run fills the token ids from the config; check with them.
		s = s.withTokens(cfg)
		if err := s.Text.Validate(); err != nil {
			return err
		}
		if s.Kind == KindMMU && s.ImageTokens <= 0 {
			return fmt.Errorf("mmu needs a positive number of image tokens, got %d", s.ImageTokens)
		}
	case KindT2I:
		if s.T2ISteps <= 0 {
			return fmt.Errorf("t2i steps must be positive, got %d", s.T2ISteps)
		}
		if s.ImageTokens < 2 {
			return fmt.Errorf("t2i needs at least 2 image tokens, got %d", s.ImageTokens)
		}
		if cfg.CodebookSize <= 0 {
			return fmt.Errorf("the model config has no codebook_size, so it has no image tokens for t2i")
		}
	case KindForward:
		if s.ForwardRuns <= 0 {
			return fmt.Errorf("forward runs must be positive, got %d", s.ForwardRuns)
		}
	default:
		return fmt.Errorf("unknown scenario %q; use %s", s.Kind, strings.Join(Kinds, ", "))
	}
	if n, limit := s.SequenceLength(), cfg.MaxSequenceLength; limit > 0 && n > limit {
		return fmt.Errorf("scenario %s needs sequences of %d tokens, the model allows %d (max_sequence_length); shorten the prompt or the generation", s.Kind, n, limit)
	}
	if s.Kind == KindT2I || s.Kind == KindMMU {
		if hi := cfg.ImageTokenOffset() + int64(cfg.CodebookSize); hi > int64(cfg.Vocab()) {
			return fmt.Errorf("image tokens [%d, %d) lie outside the vocabulary of %d ids", cfg.ImageTokenOffset(), hi, cfg.Vocab())
		}
	}
	return nil
}

// withTokens fills the text parameters' mask id and, for early stop, the
// end-of-text ids (eos and eot_id) from the model config.
func (s Scenario) withTokens(cfg *frontend.LLaDAConfig) Scenario {
	tk := modelTokens(cfg)
	s.Text.MaskID = tk.mask
	if s.Text.StopAtEOS && len(s.Text.EOSIDs) == 0 {
		s.Text.EOSIDs = tk.eosIDs
	}
	return s
}

// tokens are the ids a scenario lays out, read from the model config.
type tokens struct {
	mask, eos, mmu, soi, eoi, t2i, bos, pad int64
	// eosIDs are the end-of-text ids for early stop: eos and eot_id.
	eosIDs []int64
	// textLimit bounds the random prompt ids to [0, textLimit), below
	// every special token, so that prompts hold ordinary text ids only.
	textLimit int64
}

func modelTokens(cfg *frontend.LLaDAConfig) tokens {
	ids := cfg.SpecialTokenIDs()
	t := tokens{mask: ids["mask"], eos: ids["eos"], mmu: ids["mmu"], soi: ids["soi"], eoi: ids["eoi"],
		t2i: ids["t2i"], bos: ids["bos"], pad: ids["ipad"]}
	t.eosIDs = []int64{t.eos}
	if id, ok := ids["eot_id"]; ok && id != t.eos {
		t.eosIDs = append(t.eosIDs, id)
	}
	vocab := int64(cfg.Vocab())
	t.textLimit = vocab
	for _, id := range ids {
		if id >= 0 && id < t.textLimit {
			t.textLimit = id
		}
	}
	if t.textLimit < 2 {
		// Specials at the bottom of the vocabulary: draw from all ids
		// except the mask.
		t.textLimit = vocab
	}
	return t
}

// randomText returns n text ids below the special tokens that avoid the
// mask id.
func randomText(rng *rand.Rand, tk tokens, n int) []int64 {
	out := make([]int64, n)
	for i := range out {
		for {
			out[i] = rng.Int64N(tk.textLimit)
			if out[i] != tk.mask {
				break
			}
		}
	}
	return out
}

// buildPrompt returns the prompt rows of a text or mmu scenario.
func buildPrompt(s Scenario, cfg *frontend.LLaDAConfig) [][]int64 {
	tk := modelTokens(cfg)
	rng := rand.New(rand.NewPCG(s.Seed, 0xbe9c4))
	rows := make([][]int64, s.Batch)
	for b := range rows {
		if s.Kind == KindText {
			rows[b] = randomText(rng, tk, s.PromptLength)
			continue
		}
		row := []int64{tk.mmu, tk.soi}
		for range s.ImageTokens {
			row = append(row, cfg.ImageTokenOffset()+rng.Int64N(int64(cfg.CodebookSize)))
		}
		row = append(row, tk.eoi)
		rows[b] = append(row, randomText(rng, tk, s.PromptLength)...)
	}
	return rows
}

// t2iLayout returns the t2i input rows, conditional and unconditional:
// <|t2i|> BOS caption EOS <|soi|> masks <|eoi|>, the unconditional
// caption being padding, as upstream lays out an empty caption.
func t2iLayout(s Scenario, cfg *frontend.LLaDAConfig) (cond, uncond [][]int64) {
	tk := modelTokens(cfg)
	rng := rand.New(rand.NewPCG(s.Seed, 0x7215))
	build := func(caption []int64) []int64 {
		row := []int64{tk.t2i, tk.bos}
		row = append(row, caption...)
		row = append(row, tk.eos, tk.soi)
		for range s.ImageTokens {
			row = append(row, tk.mask)
		}
		return append(row, tk.eoi)
	}
	empty := make([]int64, s.PromptLength)
	for i := range empty {
		empty[i] = tk.pad
	}
	for range s.Batch {
		cond = append(cond, build(randomText(rng, tk, s.PromptLength)))
		uncond = append(uncond, build(empty))
	}
	return cond, uncond
}
