package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	promptpkg "github.com/mmadac/mmadac/frontend/prompt"
	"github.com/mmadac/mmadac/frontend/tokenizer"
	"github.com/mmadac/mmadac/internal/engine"
	"github.com/mmadac/mmadac/runtime/sampler"
)

func newRunCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "run",
		Short: "Run a sampler: text generation (text), image understanding (mmu), text-to-image (t2i)",
	}
	cmd.AddCommand(newRunTextCmd(), newRunMMUCmd(), newRunT2ICmd())
	return cmd
}

// textRunOptions are the flags of `mmadac run text`.
type textRunOptions struct {
	model      string
	prompt     string
	tokenizer  string
	think      bool
	promptIDs  string
	request    string
	backend    string
	seed       uint64
	json       bool
	foldHead   bool
	blockCache string
	params     sampler.TextParams
}

// requestCase is one case object of the golden cases.json format.
type requestCase struct {
	Kind          string         `json:"kind"`
	PromptIDs     [][]int64      `json:"prompt_ids"`
	AttentionMask [][]int64      `json:"attention_mask"`
	Params        map[string]any `json:"params"`
	MaskID        *int64         `json:"mask_id"`
	Noise         string         `json:"noise"`
	NoiseOrder    []string       `json:"noise_order"`
}

func newRunTextCmd() *cobra.Command {
	o := &textRunOptions{}
	cmd := &cobra.Command{
		Use:   "text (--prompt TEXT | --prompt-ids 1,2,3 | --request REQ.json)",
		Short: "Generate text by block diffusion",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runText(cmd, o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.model, "model", "", "checkpoint folder or bundle (default "+DefaultModel+")")
	f.StringVar(&o.prompt, "prompt", "", "the user message; tokenised with the checkpoint's tokenizer.json and the chat template")
	f.StringVar(&o.tokenizer, "tokenizer", "", "tokenizer.json to use instead of the checkpoint's")
	f.BoolVar(&o.think, "think", false, "prefix the message with the MixCoT reasoning instruction")
	f.StringVar(&o.promptIDs, "prompt-ids", "", "comma-separated prompt token ids")
	f.StringVar(&o.request, "request", "", "a JSON request: one text or mmu case object of cases.json")
	f.StringVar(&o.backend, "backend", "auto", "auto, acl, ort or interp")
	f.Uint64Var(&o.seed, "seed", 0, "seed of the noise source")
	f.BoolVar(&o.json, "json", false, `print {"ids": [[...]]} (whole sequences) instead of text`)
	f.StringVar(&o.blockCache, "block-cache", "", "approximate: reuse keys and values within a block, refreshed at each block boundary (faster, may change the output); --block-cache or --block-cache=dual reuses the prefix and the suffix, --block-cache=prefix the prefix only")
	f.Lookup("block-cache").NoOptDefVal = engine.CacheDual
	f.Float64Var(&o.params.ParallelThreshold, "parallel-threshold", 0, "approximate: unmask every masked token of the block whose confidence exceeds this, at least one per step (0 = off); --steps is then ignored, and a block takes as many steps as it needs")
	f.BoolVar(&o.params.StopAtEOS, "stop-at-eos", false, "stop after a block once every row has produced end of text")
	f.BoolVar(&o.foldHead, "fold-head", true, "run steps with the sampling head folded into the graph (false: pull full logits every step, as upstream)")
	f.IntVar(&o.params.GenLength, "gen-length", 128, "number of tokens to generate")
	f.IntVar(&o.params.Steps, "steps", 128, "sampling steps in all (divided evenly over the blocks)")
	f.IntVar(&o.params.BlockLength, "block-length", 128, "tokens per block")
	f.Float64Var(&o.params.Temperature, "temperature", 0, "sampling temperature (0 = greedy)")
	f.Float64Var(&o.params.CFGScale, "cfg-scale", 0, "classifier-free guidance scale (0 = off)")
	f.StringVar(&o.params.Remasking, "remasking", "low_confidence", "low_confidence or random")
	return cmd
}

// noArgs rejects positional arguments. A block-cache mode written after a
// space ("--block-cache prefix") arrives as one, because the flag takes
// its value only after "=", so the error names the "=" form.
func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) == 0 {
		return nil
	}
	if args[0] == engine.CacheDual || args[0] == engine.CachePrefix {
		return usagef("%q is not an argument; give the block-cache mode with an equals sign: --block-cache=%s", args[0], args[0])
	}
	return usagef("%s takes no arguments, got %q; see --help", cmd.CommandPath(), args)
}

// checkBlockCache rejects an unknown --block-cache mode before any model
// is loaded.
func checkBlockCache(mode string) error {
	if mode != "" && mode != engine.CacheDual && mode != engine.CachePrefix {
		return usagef("--block-cache=%s: unknown mode; use --block-cache (the same as =%s) or --block-cache=%s", mode, engine.CacheDual, engine.CachePrefix)
	}
	return nil
}

func runText(cmd *cobra.Command, o *textRunOptions) error {
	given := 0
	for _, v := range []string{o.prompt, o.promptIDs, o.request} {
		if v != "" {
			given++
		}
	}
	if given != 1 {
		return usagef("give exactly one of --prompt, --prompt-ids or --request")
	}
	if err := checkBlockCache(o.blockCache); err != nil {
		return err
	}
	model := o.model
	if model == "" {
		model = DefaultModel
		if !exists(model) {
			return usagef("no --model given and the default %s is not here; run from the repository root or pass --model", DefaultModel)
		}
	}
	var prompt, mask [][]int64
	var noise sampler.NoiseSource = sampler.NewSeeded(o.seed)
	var maskID *int64
	if o.promptIDs != "" {
		ids, err := parseIDs(o.promptIDs)
		if err != nil {
			return usagef("--prompt-ids: %v", err)
		}
		prompt = [][]int64{ids}
	} else if o.request != "" {
		req, err := readRequest(o.request)
		if err != nil {
			return err
		}
		if req.Kind == "t2i" {
			return usagef("request %s is a t2i case; run it with `mmadac run t2i --request`", o.request)
		}
		if req.Kind != "text" && req.Kind != "mmu" {
			return fmt.Errorf("request %s has kind %q; run text takes a text or mmu case", o.request, req.Kind)
		}
		prompt, mask, maskID = req.PromptIDs, req.AttentionMask, req.MaskID
		if err := applyParams(cmd, &o.params, req.Params); err != nil {
			return fmt.Errorf("request %s: %w", o.request, err)
		}
		if req.Noise != "" {
			path := req.Noise
			if !filepath.IsAbs(path) {
				path = filepath.Join(filepath.Dir(o.request), path)
			}
			r, err := sampler.NewReplay(path, req.NoiseOrder)
			if err != nil {
				return err
			}
			noise = r
		}
	}
	var tok *tokenizer.Tokenizer
	if o.prompt != "" || o.tokenizer != "" {
		t, err := loadTokenizer(model, o.tokenizer)
		if err != nil {
			return err
		}
		tok = t
	}
	m, err := engine.LoadModel(model, o.backend)
	if err != nil {
		return err
	}
	defer m.Close()
	m.SetHeadFolding(o.foldHead)
	sp := specialTokens(m, tok)
	if o.prompt != "" {
		prompt = [][]int64{promptpkg.Chat(tok, sp, []promptpkg.Message{{Role: "user", Content: o.prompt}}, o.think)}
	}
	p := o.params
	p.MaskID = m.Config.SpecialTokenIDs()["mask"]
	if p.StopAtEOS {
		ids := m.Config.SpecialTokenIDs()
		p.EOSIDs = []int64{ids["eos"], ids["eot_id"]}
	}
	if sched := m.Schedule(engine.ScheduleTextTransfer); sched != nil {
		ints := make([]int, len(sched.Ints))
		for i, v := range sched.Ints {
			ints[i] = int(v)
		}
		if sampler.CheckSchedule(p, ints) == nil {
			p.Schedule = ints
			slog.Debug("using the schedule folded into the bundle", "steps_per_block", len(ints))
		}
	}
	head := m.Head()
	if o.blockCache != "" {
		cache, err := engine.NewBlockCacheMode(m, o.blockCache)
		if err != nil {
			return usagef("--block-cache=%s: %v", o.blockCache, err)
		}
		defer cache.Close()
		head = cache
	}
	if maskID != nil {
		p.MaskID = *maskID
	}
	if err := p.Validate(); err != nil {
		return usagef("%v", err)
	}
	if limit := m.MaxSequenceLength(); limit > 0 && int64(len(prompt[0])+p.GenLength) > limit {
		return usagef("prompt (%d tokens) plus --gen-length %d is longer than the %d positions the model's RoPE tables cover", len(prompt[0]), p.GenLength, limit)
	}
	vocab := int64(m.Config.Vocab())
	for _, row := range prompt {
		for _, id := range row {
			if id < 0 || id >= vocab {
				return usagef("prompt id %d is outside the vocabulary [0, %d) of %s", id, vocab, model)
			}
		}
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	stderr := cmd.ErrOrStderr()
	fmt.Fprintf(stderr, "generating %d tokens in %s on %s\n", p.GenLength, plural(p.GenLength/p.BlockLength, "block"), m.Backend)
	var last time.Duration
	var stream *streamer
	if tok != nil {
		stream = newStreamer(stderr, tok, p.MaskID)
	}
	lp := len(prompt[0])
	out, err := sampler.GenerateText(ctx, m.Forward, sampler.TextRequest{
		Prompt: prompt, AttentionMask: mask, Params: p, Noise: noise, Head: head,
		OnStep: func(ev sampler.StepEvent) {
			n := 0
			for _, row := range ev.Tokens {
				n += len(row)
			}
			// The rate of this step alone: an average since the start
			// would include the first step's one-time session set-up.
			rate := float64(n) / max(ev.Elapsed-last, time.Microsecond).Seconds()
			last = ev.Elapsed
			header := fmt.Sprintf("block %d/%d step %d/%d: %.1f tokens/s", ev.Block+1, ev.Blocks, ev.Step+1, ev.Steps, rate)
			if stream == nil {
				fmt.Fprintln(stderr, header)
				return
			}
			lo := lp + ev.Block*p.BlockLength
			stream.show(header, ev.IDs[0], lo, lo+p.BlockLength, ev.Block+1 == ev.Blocks && ev.Step+1 == ev.Steps)
		},
	})
	if err != nil {
		return err
	}
	if tok != nil && !o.json {
		for _, row := range out {
			fmt.Fprintln(cmd.OutOrStdout(), answer(tok, sp, row, lp))
		}
		return nil
	}
	if tok != nil {
		texts := make([]string, len(out))
		for i, row := range out {
			texts[i] = answer(tok, sp, row, lp)
		}
		return writeJSON(cmd.OutOrStdout(), map[string]any{"ids": out, "text": texts})
	}
	return printIDs(cmd.OutOrStdout(), out, o.json)
}

func printIDs(w io.Writer, ids [][]int64, asJSON bool) error {
	if asJSON {
		return writeJSON(w, map[string]any{"ids": ids})
	}
	for _, row := range ids {
		parts := make([]string, len(row))
		for i, v := range row {
			parts[i] = strconv.FormatInt(v, 10)
		}
		fmt.Fprintln(w, strings.Join(parts, " "))
	}
	return nil
}

func parseIDs(s string) ([]int64, error) {
	var out []int64
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		v, err := strconv.ParseInt(part, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("%q is not an integer token id", part)
		}
		out = append(out, v)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no token ids in %q", s)
	}
	return out, nil
}

func readRequest(path string) (*requestCase, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("cannot read request file: %w", err)
	}
	var req requestCase
	if err := json.Unmarshal(data, &req); err != nil {
		return nil, fmt.Errorf("request file %s is not a valid case object: %w", path, err)
	}
	if len(req.PromptIDs) == 0 {
		return nil, fmt.Errorf("request file %s has no prompt_ids", path)
	}
	return &req, nil
}

// applyParams takes the request's params, except where a flag was given
// on the command line.
func applyParams(cmd *cobra.Command, p *sampler.TextParams, params map[string]any) error {
	num := func(key string) (float64, bool, error) {
		v, ok := params[key]
		if !ok {
			return 0, false, nil
		}
		f, ok := v.(float64)
		if !ok {
			return 0, false, fmt.Errorf("params.%s is %v, want a number", key, v)
		}
		return f, true, nil
	}
	for _, k := range []struct {
		key, flag string
		set       func(float64)
	}{
		{"steps", "steps", func(v float64) { p.Steps = int(v) }},
		{"gen_length", "gen-length", func(v float64) { p.GenLength = int(v) }},
		{"block_length", "block-length", func(v float64) { p.BlockLength = int(v) }},
		{"temperature", "temperature", func(v float64) { p.Temperature = v }},
		{"cfg_scale", "cfg-scale", func(v float64) { p.CFGScale = v }},
	} {
		v, ok, err := num(k.key)
		if err != nil {
			return err
		}
		if ok && !cmd.Flags().Changed(k.flag) {
			k.set(v)
		}
	}
	if r, ok := params["remasking"].(string); ok && !cmd.Flags().Changed("remasking") {
		p.Remasking = r
	}
	return nil
}

// writeJSON prints v as one line of JSON without HTML escaping, so that
// decoded text keeps its < and > characters.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

// plural formats a count with its noun, "1 block" or "3 blocks".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
