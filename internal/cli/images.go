package cli

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/mmadac/mmadac/frontend/imageio"
	promptpkg "github.com/mmadac/mmadac/frontend/prompt"
	"github.com/mmadac/mmadac/frontend/tokenizer"
	"github.com/mmadac/mmadac/internal/engine"
	"github.com/mmadac/mmadac/ir"
	"github.com/mmadac/mmadac/runtime/sampler"
)

// DefaultVQModel is the small MAGVIT-v2 checkpoint used when --model is
// not given either.
const DefaultVQModel = "testdata/upstream-tiny/magvit"

// t2iOptions are the flags of `mmadac run t2i`.
type t2iOptions struct {
	model, vqModel, tokenizer string
	promptIDs, prompt, file   string
	request, outDir, backend  string
	guidance, temperature     float64
	steps, textLength, tokens int
	seed                      uint64
	json                      bool
}

// t2iCase is one t2i case object of cases.json.
type t2iCase struct {
	Kind                string         `json:"kind"`
	InputIDs            [][]int64      `json:"input_ids"`
	AttentionMask       [][]int64      `json:"attention_mask"`
	UncondInputIDs      [][]int64      `json:"uncond_input_ids"`
	UncondAttentionMask [][]int64      `json:"uncond_attention_mask"`
	Params              map[string]any `json:"params"`
	NumImageTokens      int            `json:"num_image_tokens"`
	Noise               string         `json:"noise"`
	NoiseOrder          []string       `json:"noise_order"`
}

func newRunT2ICmd() *cobra.Command {
	o := &t2iOptions{}
	cmd := &cobra.Command{
		Use:   "t2i (--prompt TEXT | --prompts-file FILE | --prompt-ids 1,2,3 | --request REQ.json) --out-dir DIR",
		Short: "Generate images: MaskGIT-style decoding of image tokens, then the MAGVIT-v2 decoder",
		Args:  cobra.NoArgs,
		RunE:  func(cmd *cobra.Command, args []string) error { return runT2I(cmd, o) },
	}
	f := cmd.Flags()
	f.StringVar(&o.model, "model", "", "checkpoint folder or bundle (default "+DefaultModel+")")
	f.StringVar(&o.vqModel, "vq-model", "", "MAGVIT-v2 checkpoint folder (default "+DefaultVQModel+" with the default model)")
	f.StringVar(&o.tokenizer, "tokenizer", "", "tokenizer.json to use instead of the checkpoint's")
	f.StringVar(&o.prompt, "prompt", "", "the caption")
	f.StringVar(&o.file, "prompts-file", "", "a file of captions, one image per line")
	f.StringVar(&o.promptIDs, "prompt-ids", "", "comma-separated caption token ids (rows separated by ';')")
	f.StringVar(&o.request, "request", "", "a JSON request: one t2i case object of cases.json")
	f.StringVar(&o.outDir, "out-dir", "", "folder for the PNG images")
	f.Float64Var(&o.guidance, "guidance-scale", 3.5, "classifier-free guidance scale (0 = off)")
	f.IntVar(&o.steps, "steps", 15, "decoding steps (timesteps)")
	f.Float64Var(&o.temperature, "temperature", 1.0, "initial temperature of the re-masking noise")
	f.IntVar(&o.textLength, "text-length", 512, "caption tokens the prefix holds (the prefix is this plus the task token)")
	f.IntVar(&o.tokens, "image-tokens", 0, "image tokens (default: the config's num_vq_tokens)")
	f.Uint64Var(&o.seed, "seed", 0, "seed of the noise source")
	f.StringVar(&o.backend, "backend", "auto", "auto, acl, ort or interp")
	f.BoolVar(&o.json, "json", false, `print {"codes": [[...]], "images": [...]}`)
	return cmd
}

// modelPaths applies the defaults: both tiny models when --model is absent.
func modelPaths(model, vq string) (string, string, error) {
	if model == "" {
		model = DefaultModel
		if vq == "" {
			vq = DefaultVQModel
		}
		if !exists(model) {
			return "", "", usagef("no --model given and the default %s is not here; run from the repository root or pass --model", DefaultModel)
		}
	}
	if vq == "" {
		return "", "", usagef("--vq-model is required with --model")
	}
	return model, vq, nil
}

func runT2I(cmd *cobra.Command, o *t2iOptions) error {
	given := 0
	for _, v := range []string{o.prompt, o.file, o.promptIDs, o.request} {
		if v != "" {
			given++
		}
	}
	if given != 1 {
		return usagef("give exactly one of --prompt, --prompts-file, --prompt-ids or --request")
	}
	if o.outDir == "" {
		return usagef("--out-dir is required")
	}
	model, vqPath, err := modelPaths(o.model, o.vqModel)
	if err != nil {
		return err
	}
	var captions [][]int64
	var tok *tokenizer.Tokenizer
	if o.prompt != "" || o.file != "" {
		if tok, err = loadTokenizer(model, o.tokenizer); err != nil {
			return err
		}
		texts := []string{o.prompt}
		if o.file != "" {
			if texts, err = readLines(o.file); err != nil {
				return err
			}
		}
		for _, t := range texts {
			captions = append(captions, tok.Encode(t))
		}
	}
	if o.promptIDs != "" {
		for _, row := range strings.Split(o.promptIDs, ";") {
			ids, err := parseIDs(row)
			if err != nil {
				return usagef("--prompt-ids: %v", err)
			}
			captions = append(captions, ids)
		}
	}

	text, err := engine.LoadModel(model, o.backend)
	if err != nil {
		return err
	}
	defer text.Close()
	vq, err := loadVQFor(text, model, vqPath, o.backend)
	if err != nil {
		return err
	}
	defer vq.Close()

	req := engine.T2IRequest{Noise: sampler.NewSeeded(o.seed)}
	req.Params.GuidanceScale, req.Params.Timesteps, req.Params.Temperature = o.guidance, o.steps, o.temperature
	if o.request != "" {
		if err := loadT2IRequest(cmd, o, &req); err != nil {
			return err
		}
	} else {
		n := o.tokens
		if n == 0 {
			n = text.Config.NumVQTokens
		}
		if err := promptpkg.CheckT2I(o.textLength+1, n); err != nil {
			return usagef("--text-length %d, --image-tokens %d: %v", o.textLength, n, err)
		}
		vocab := int64(text.Config.Vocab())
		for _, c := range captions {
			for _, id := range c {
				if id < 0 || id >= vocab {
					return usagef("caption id %d is outside the vocabulary [0, %d) of %s", id, vocab, model)
				}
			}
		}
		req.Params.NumImageTokens = n
		sp := specialTokens(text, tok)
		for _, c := range captions {
			ids, mask := promptpkg.T2I(c, sp, o.textLength+1, n)
			uids, umask := promptpkg.T2IUncond(sp, o.textLength+1, n)
			req.InputIDs, req.AttentionMask = append(req.InputIDs, ids), append(req.AttentionMask, mask)
			req.UncondInputIDs, req.UncondAttentionMask = append(req.UncondInputIDs, uids), append(req.UncondAttentionMask, umask)
		}
	}
	stderr := cmd.ErrOrStderr()
	start := time.Now()
	req.OnStep = func(ev sampler.T2IStepEvent) {
		fmt.Fprintf(stderr, "step %d/%d: %v still masked, %.1fs\n", ev.Step+1, ev.Steps, ev.Masked, time.Since(start).Seconds())
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	codes, pixels, err := engine.GenerateImages(ctx, text, vq, req)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(o.outDir, 0o755); err != nil {
		return err
	}
	var paths []string
	for i := range codes {
		img, err := imageio.ToImage(pixels, i)
		if err != nil {
			return err
		}
		path := filepath.Join(o.outDir, fmt.Sprintf("image-%03d.png", i))
		if err := imageio.WritePNG(path, img); err != nil {
			return err
		}
		paths = append(paths, path)
	}
	if o.json {
		return writeJSON(cmd.OutOrStdout(), map[string]any{"codes": codes, "images": paths})
	}
	for _, p := range paths {
		fmt.Fprintln(cmd.OutOrStdout(), p)
	}
	return nil
}

// loadT2IRequest fills a request from a t2i case file; flags given on the
// command line override its params.
func loadT2IRequest(cmd *cobra.Command, o *t2iOptions, req *engine.T2IRequest) error {
	data, err := os.ReadFile(o.request)
	if err != nil {
		return fmt.Errorf("cannot read request file: %w", err)
	}
	var c t2iCase
	if err := json.Unmarshal(data, &c); err != nil {
		return fmt.Errorf("request file %s is not a valid case object: %w", o.request, err)
	}
	if c.Kind != "t2i" || len(c.InputIDs) == 0 {
		return fmt.Errorf("request %s is not a t2i case with input_ids (kind %q)", o.request, c.Kind)
	}
	req.InputIDs, req.AttentionMask = c.InputIDs, c.AttentionMask
	req.UncondInputIDs, req.UncondAttentionMask = c.UncondInputIDs, c.UncondAttentionMask
	req.Params.NumImageTokens = c.NumImageTokens
	for key, flag := range map[string]string{"guidance_scale": "guidance-scale", "timesteps": "steps", "temperature": "temperature"} {
		v, ok := c.Params[key].(float64)
		if !ok || cmd.Flags().Changed(flag) {
			continue
		}
		switch key {
		case "guidance_scale":
			req.Params.GuidanceScale = v
		case "timesteps":
			req.Params.Timesteps = int(v)
		case "temperature":
			req.Params.Temperature = v
		}
	}
	if c.Noise != "" {
		path := c.Noise
		if !filepath.IsAbs(path) {
			path = filepath.Join(filepath.Dir(o.request), path)
		}
		r, err := sampler.NewReplay(path, c.NoiseOrder)
		if err != nil {
			return err
		}
		req.Noise = r
	}
	return nil
}

func readLines(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("cannot read prompts file: %w", err)
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if line := strings.TrimSpace(sc.Text()); line != "" {
			out = append(out, line)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("prompts file %s has no prompts", path)
	}
	return out, nil
}

// squashNames are the file-name parts for which upstream's mmu script
// resizes straight to a square instead of cropping.
var squashNames = regexp.MustCompile(`ai2d|clevr|docvqa|geo|llava`)

// encodeImage preprocesses an image file and returns its codes [1, N].
func encodeImage(vq *engine.VQModel, path string, resolution int, squash string) (*ir.Tensor, *ir.Tensor, error) {
	img, err := imageio.Decode(path)
	if err != nil {
		return nil, nil, err
	}
	if err := imageio.CheckResolution(resolution, vq.Config.Encoder.Factor()); err != nil {
		return nil, nil, usagef("%v", err)
	}
	sq := false
	switch squash {
	case "auto":
		sq = squashNames.MatchString(filepath.Base(path))
	case "true":
		sq = true
	case "false":
	default:
		return nil, nil, usagef("--squash %q: use auto, true or false", squash)
	}
	pixels, err := imageio.Preprocess(img, resolution, sq)
	if err != nil {
		return nil, nil, err
	}
	_, codes, err := vq.Encode(pixels)
	return pixels, codes, err
}

// mmuOptions are the flags of `mmadac run mmu` beyond those of run text.
type mmuOptions struct {
	text       textRunOptions
	vqModel    string
	image      string
	question   string
	resolution int
	squash     string
}

func newRunMMUCmd() *cobra.Command {
	o := &mmuOptions{}
	cmd := &cobra.Command{
		Use:   "mmu --image FILE (--question TEXT | --prompt-ids 1,2,3)",
		Short: "Answer a question about an image: MAGVIT-v2 codes in the prompt, then the text sampler",
		Args:  cobra.NoArgs,
		RunE:  func(cmd *cobra.Command, args []string) error { return runMMU(cmd, o) },
	}
	f := cmd.Flags()
	t := &o.text
	f.StringVar(&t.model, "model", "", "checkpoint folder or bundle (default "+DefaultModel+")")
	f.StringVar(&o.vqModel, "vq-model", "", "MAGVIT-v2 checkpoint folder (default "+DefaultVQModel+" with the default model)")
	f.StringVar(&o.image, "image", "", "PNG or JPEG image")
	f.StringVar(&o.question, "question", "", "the question; tokenised with the chat template")
	f.StringVar(&t.promptIDs, "prompt-ids", "", "comma-separated token ids of the text part of the prompt")
	f.StringVar(&t.tokenizer, "tokenizer", "", "tokenizer.json to use instead of the checkpoint's")
	f.BoolVar(&t.think, "think", false, "prefix the question with the MixCoT reasoning instruction")
	f.IntVar(&o.resolution, "resolution", 0, "image side in pixels (default: sqrt(num_vq_tokens) times the tokenizer's downsampling factor)")
	f.StringVar(&o.squash, "squash", "auto", "resize straight to a square instead of cropping: auto (by file name, as upstream), true or false")
	f.StringVar(&t.backend, "backend", "auto", "auto, acl, ort or interp")
	f.Uint64Var(&t.seed, "seed", 0, "seed of the noise source")
	f.BoolVar(&t.json, "json", false, `print {"ids": [[...]]}, and "text": [...] when --question gave a tokenizer`)
	f.IntVar(&t.params.GenLength, "gen-length", 512, "number of tokens to generate")
	f.IntVar(&t.params.Steps, "steps", 256, "sampling steps in all")
	f.IntVar(&t.params.BlockLength, "block-length", 128, "tokens per block")
	f.Float64Var(&t.params.Temperature, "temperature", 0, "sampling temperature (0 = greedy)")
	f.Float64Var(&t.params.CFGScale, "cfg-scale", 0, "classifier-free guidance scale (0 = off)")
	f.StringVar(&t.params.Remasking, "remasking", "low_confidence", "low_confidence or random")
	return cmd
}

// loadVQFor loads the MAGVIT-v2 model at vqPath and checks that the text
// model reads its codes.
func loadVQFor(text *engine.TextModel, model, vqPath, backend string) (*engine.VQModel, error) {
	vq, err := engine.LoadVQ(vqPath, backend)
	if err != nil {
		return nil, err
	}
	if err := engine.CheckVQ(text, vq); err != nil {
		vq.Close()
		return nil, fmt.Errorf("--model %s with --vq-model %s: %w", model, vqPath, err)
	}
	return vq, nil
}

func runMMU(cmd *cobra.Command, o *mmuOptions) error {
	t := &o.text
	if o.image == "" {
		return usagef("--image is required")
	}
	if (o.question == "") == (t.promptIDs == "") {
		return usagef("give exactly one of --question or --prompt-ids")
	}
	model, vqPath, err := modelPaths(t.model, o.vqModel)
	if err != nil {
		return err
	}
	var tok *tokenizer.Tokenizer
	if o.question != "" {
		if tok, err = loadTokenizer(model, t.tokenizer); err != nil {
			return err
		}
	}
	m, err := engine.LoadModel(model, t.backend)
	if err != nil {
		return err
	}
	defer m.Close()
	vq, err := loadVQFor(m, model, vqPath, t.backend)
	if err != nil {
		return err
	}
	defer vq.Close()

	res := o.resolution
	if res == 0 {
		side := 1
		for side*side < m.Config.NumVQTokens {
			side++
		}
		res = side * vq.Config.Encoder.Factor()
	}
	_, codes, err := encodeImage(vq, o.image, res, o.squash)
	if err != nil {
		return err
	}
	sp := specialTokens(m, tok)
	var chat []int64
	if o.question != "" {
		chat = promptpkg.Chat(tok, sp, []promptpkg.Message{{Role: "user", Content: o.question}}, t.think)
	} else if chat, err = parseIDs(t.promptIDs); err != nil {
		return usagef("--prompt-ids: %v", err)
	}
	full := promptpkg.MMU(codes.I64(), sp, chat)
	p := t.params
	p.MaskID = sp.Mask
	if err := p.Validate(); err != nil {
		return usagef("%v", err)
	}
	fmt.Fprintf(cmd.ErrOrStderr(), "image %s: %d codes; generating %d tokens on %s\n", o.image, codes.Len(), p.GenLength, m.Backend)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	out, err := sampler.GenerateText(ctx, m.Forward, sampler.TextRequest{
		Prompt: [][]int64{full}, Params: p, Noise: sampler.NewSeeded(t.seed), Head: m.Head(),
	})
	if err != nil {
		return err
	}
	if tok == nil {
		return printIDs(cmd.OutOrStdout(), out, t.json)
	}
	ans := answer(tok, sp, out[0], len(full))
	if t.json {
		return writeJSON(cmd.OutOrStdout(), map[string]any{"ids": out, "text": []string{ans}})
	}
	fmt.Fprintln(cmd.OutOrStdout(), ans)
	return nil
}
