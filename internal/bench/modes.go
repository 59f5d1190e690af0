package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/mmadac/mmadac/frontend"
	"github.com/mmadac/mmadac/runtime/sampler"
)

// Agreement compares a run in an opt-in mode with exact decoding of the
// same prompt on the same model.
type Agreement struct {
	// Seconds and ExactSeconds are the wall times of the two runs, and
	// SpeedUp their ratio (exact over mode).
	Seconds      float64 `json:"seconds"`
	ExactSeconds float64 `json:"exact_seconds"`
	SpeedUp      float64 `json:"speed_up"`
	// Steps and ExactSteps count model calls. Every step costs the same
	// model work, so their ratio is the speed-up without timing noise.
	Steps      int `json:"steps"`
	ExactSteps int `json:"exact_steps"`
	// Positions counts the generated positions compared, Equal those
	// whose token matches exact decoding, and Fraction is Equal over
	// Positions.
	Positions int     `json:"positions"`
	Equal     int     `json:"equal"`
	Fraction  float64 `json:"fraction"`
}

// Compare fills an Agreement from the mode run and the exact run.
func Compare(mode, exact *Result) (*Agreement, error) {
	if len(mode.Output) != len(exact.Output) {
		return nil, fmt.Errorf("the runs have %d and %d rows", len(mode.Output), len(exact.Output))
	}
	a := &Agreement{Seconds: mode.Seconds, ExactSeconds: exact.Seconds, Steps: mode.Steps, ExactSteps: exact.Steps}
	if mode.Seconds > 0 {
		a.SpeedUp = exact.Seconds / mode.Seconds
	}
	for b := range mode.Output {
		eq, n, err := agree(mode.Output[b], exact.Output[b], mode.PromptLength)
		if err != nil {
			return nil, fmt.Errorf("row %d: %w", b, err)
		}
		a.Equal += eq
		a.Positions += n
	}
	if a.Positions > 0 {
		a.Fraction = float64(a.Equal) / float64(a.Positions)
	}
	return a, nil
}

// agree counts the positions after promptLen where two sequences hold the
// same token.
func agree(got, want []int64, promptLen int) (equal, total int, err error) {
	if len(got) != len(want) {
		return 0, 0, fmt.Errorf("sequences of %d and %d tokens", len(got), len(want))
	}
	if promptLen < 0 || promptLen > len(got) {
		return 0, 0, fmt.Errorf("prompt length %d outside a sequence of %d tokens", promptLen, len(got))
	}
	for i := promptLen; i < len(got); i++ {
		total++
		if got[i] == want[i] {
			equal++
		}
	}
	return equal, total, nil
}

// goldenCase is the part of a cases.json text or mmu case that the mode
// comparison reads.
type goldenCase struct {
	Kind          string         `json:"kind"`
	Name          string         `json:"name"`
	PromptIDs     [][]int64      `json:"prompt_ids"`
	AttentionMask [][]int64      `json:"attention_mask"`
	Params        map[string]any `json:"params"`
	MaskID        int64          `json:"mask_id"`
	ExpectedIDs   [][]int64      `json:"expected_ids"`
	Noise         string         `json:"noise"`
	NoiseOrder    []string       `json:"noise_order"`
}

// CaseAgreement is the mode comparison on one golden case.
type CaseAgreement struct {
	Name string `json:"name"`
	Kind string `json:"kind"`
	// ExactMatchesGolden reports whether exact decoding reproduced the
	// case's expected ids, which shows that the comparison starts from
	// upstream's output.
	ExactMatchesGolden bool `json:"exact_matches_golden"`
	Agreement
}

// CompareCases runs every text and mmu case of a golden cases.json file
// twice: on exact with the case's parameters (exact decoding), and on fast
// with the opt-in mode fields of mode (ParallelThreshold, StopAtEOS,
// EOSIDs) added. fast is exact itself, or the same model behind an
// approximate head such as the block cache. Sampled cases replay their recorded noise in both runs,
// so the mode run sees the same uniforms as exact decoding step by step.
// A mode run that takes more steps than the recording holds gets seeded
// uniforms for the rest.
func CompareCases(ctx context.Context, exact, fast Model, cfg *frontend.LLaDAConfig, casesPath string, mode sampler.TextParams) ([]CaseAgreement, error) {
	data, err := os.ReadFile(casesPath)
	if err != nil {
		return nil, fmt.Errorf("reading golden cases: %w", err)
	}
	var doc struct {
		Cases []goldenCase `json:"cases"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("golden cases %s: %w", casesPath, err)
	}
	if mode.StopAtEOS && len(mode.EOSIDs) == 0 {
		mode.EOSIDs = modelTokens(cfg).eosIDs
	}
	var out []CaseAgreement
	for _, c := range doc.Cases {
		if c.Kind != KindText && c.Kind != KindMMU {
			continue
		}
		ca, err := compareCase(ctx, exact, fast, filepath.Dir(casesPath), c, mode)
		if err != nil {
			return nil, fmt.Errorf("golden case %s/%s: %w", c.Kind, c.Name, err)
		}
		out = append(out, ca)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("golden cases %s hold no text or mmu case", casesPath)
	}
	return out, nil
}

func compareCase(ctx context.Context, exactModel, fastModel Model, dir string, c goldenCase, mode sampler.TextParams) (CaseAgreement, error) {
	p, err := caseParams(c)
	if err != nil {
		return CaseAgreement{}, err
	}
	run := func(m Model, p sampler.TextParams) (*Result, error) {
		var noise sampler.NoiseSource = sampler.NewSeeded(0)
		if c.Noise != "" {
			replay, err := sampler.NewReplay(filepath.Join(dir, c.Noise), c.NoiseOrder)
			if err != nil {
				return nil, err
			}
			noise = &replayThenSeeded{replay: replay, seeded: sampler.NewSeeded(0)}
		}
		r := &Result{PromptLength: len(c.PromptIDs[0])}
		start := time.Now()
		r.Output, err = sampler.GenerateText(ctx, m.Forward, sampler.TextRequest{
			Prompt: c.PromptIDs, AttentionMask: c.AttentionMask, Params: p, Noise: noise, Head: m.Head(),
			OnStep: func(sampler.StepEvent) { r.Steps++ },
		})
		r.Seconds = time.Since(start).Seconds()
		return r, err
	}
	exact, err := run(exactModel, p)
	if err != nil {
		return CaseAgreement{}, fmt.Errorf("exact decoding: %w", err)
	}
	p.ParallelThreshold, p.StopAtEOS, p.EOSIDs = mode.ParallelThreshold, mode.StopAtEOS, mode.EOSIDs
	fast, err := run(fastModel, p)
	if err != nil {
		return CaseAgreement{}, fmt.Errorf("%s: %w", modeName(p), err)
	}
	a, err := Compare(fast, exact)
	if err != nil {
		return CaseAgreement{}, err
	}
	golden := len(c.ExpectedIDs) == len(exact.Output)
	for b := 0; golden && b < len(c.ExpectedIDs); b++ {
		golden = slices.Equal(c.ExpectedIDs[b], exact.Output[b])
	}
	return CaseAgreement{Name: c.Name, Kind: c.Kind, ExactMatchesGolden: golden, Agreement: *a}, nil
}

// replayThenSeeded replays a recording and, once it is used up, draws
// seeded uniforms. Threshold decoding can take more steps than the exact
// schedule that was recorded, and its extra steps then get fresh noise.
type replayThenSeeded struct {
	replay *sampler.Replay
	seeded *sampler.Seeded
}

func (n *replayThenSeeded) Next(kind string, shape []int64) (sampler.Draw, error) {
	if n.replay.Remaining() > 0 {
		return n.replay.Next(kind, shape)
	}
	return n.seeded.Next(kind, shape)
}

// caseParams reads a case's sampler parameters, named as upstream's
// generate() names them.
func caseParams(c goldenCase) (sampler.TextParams, error) {
	if len(c.PromptIDs) == 0 || len(c.PromptIDs[0]) == 0 {
		return sampler.TextParams{}, fmt.Errorf("the case has no prompt_ids")
	}
	p := sampler.TextParams{MaskID: c.MaskID, Remasking: "low_confidence"}
	num := func(key string) (float64, error) {
		v, ok := c.Params[key].(float64)
		if !ok {
			return 0, fmt.Errorf("params.%s is missing or not a number", key)
		}
		return v, nil
	}
	for key, dst := range map[string]*int{"steps": &p.Steps, "gen_length": &p.GenLength, "block_length": &p.BlockLength} {
		v, err := num(key)
		if err != nil {
			return p, err
		}
		*dst = int(v)
	}
	var err error
	if p.Temperature, err = num("temperature"); err != nil {
		return p, err
	}
	if p.CFGScale, err = num("cfg_scale"); err != nil {
		return p, err
	}
	if s, ok := c.Params["remasking"].(string); ok {
		p.Remasking = s
	}
	return p, p.Validate()
}
