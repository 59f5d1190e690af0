package serve

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"log/slog"
	"net/http"
	"time"

	"github.com/mmadac/mmadac/frontend/imageio"
	"github.com/mmadac/mmadac/frontend/prompt"
	"github.com/mmadac/mmadac/ir"
	"github.com/mmadac/mmadac/runtime/sampler"
)

// Upstream's t2i defaults (MMaDA's inference_t2i.py and demo app):
// guidance 3.5, 15 timesteps, temperature 1.
const (
	defaultGuidanceScale = 3.5
	defaultTimesteps     = 15
	defaultT2ITemp       = 1.0
)

func newT2IBody() t2iBody {
	return t2iBody{GuidanceScale: defaultGuidanceScale, Timesteps: defaultTimesteps, Temperature: defaultT2ITemp}
}

// t2iWork is the sampler input of a t2i job: the prompt already laid
// out, and the same layout of the empty caption for guidance.
type t2iWork struct {
	params             sampler.T2IParams
	seed               uint64
	input, mask        []int64
	uncond, uncondMask []int64
	grid               [2]int
}

func (w *t2iWork) batchKey() string {
	p := w.params
	return fmt.Sprintf("t2i|%g|%d|%g|%d", p.GuidanceScale, p.Timesteps, p.Temperature, len(w.input))
}

// t2iEventCap covers start, a step and a preview per timestep, and slack.
func t2iEventCap(p sampler.T2IParams) int { return 2*p.Timesteps + 4 }

func (b t2iBody) logParams() []any {
	return []any{"guidance_scale", b.GuidanceScale, "timesteps", b.Timesteps, "temperature", b.Temperature,
		"seed", b.Seed, "prompt_ids", len(b.PromptIDs), "prompt_bytes", len(b.Prompt)}
}

func (s *Server) handleT2I(w http.ResponseWriter, r *http.Request) {
	l := &requestLog{id: s.newID(), kind: "t2i", start: time.Now()}
	defer l.emit()
	w.Header().Set("X-Request-Id", l.id)
	if s.models.VQ == nil {
		s.fail(w, l, &requestError{Status: http.StatusNotImplemented, Message: "this server has no image tokenizer loaded, so it cannot run t2i; start mmadac serve with --vq-model"})
		return
	}
	body := newT2IBody()
	if err := decodeJSON(r.Body, s.cfg.Limits.MaxBodyBytes, &body, t2iFields); err != nil {
		s.fail(w, l, err)
		return
	}
	l.params = body.logParams()
	work, err := s.prepareT2I(body)
	if err != nil {
		s.fail(w, l, err)
		return
	}
	j := &job{id: l.id, kind: "t2i", key: work.batchKey(), t2i: work}
	s.runJob(w, r, j, l, t2iEventCap(work.params))
}

// prepareT2I validates a t2i body and lays out its prompt.
func (s *Server) prepareT2I(body t2iBody) (*t2iWork, error) {
	if err := body.validate(s.cfg.Limits); err != nil {
		return nil, err
	}
	text := body.PromptIDs
	if len(text) > 0 {
		if err := checkIDs(text, s.vocab); err != nil {
			return nil, err
		}
	} else {
		if s.models.Tokenizer == nil {
			return nil, badField("prompt", "the model %s has no tokenizer.json, so the server cannot encode prompt text; send prompt_ids (a list of token ids) instead", s.models.TextPath)
		}
		text = s.models.Tokenizer.Encode(body.Prompt)
		if err := checkIDs(text, s.vocab); err != nil {
			return nil, badField("prompt", "the tokenizer does not fit the model: %v", err)
		}
	}
	n, side := s.imageGrid()
	prefix := s.cfg.T2ITextLength + 1 // the caption plus the task token
	if total := prefix + n + 2; total > s.cfg.Limits.MaxSequence {
		return nil, badRequest("a t2i sequence has %d tokens, more than the limit of %d", total, s.cfg.Limits.MaxSequence)
	}
	w := &t2iWork{
		seed: body.Seed, grid: [2]int{side, side},
		params: sampler.T2IParams{
			GuidanceScale: body.GuidanceScale, Timesteps: body.Timesteps, Temperature: body.Temperature,
			MaskID: s.sp.Mask, ImageTokenOffset: s.sp.ImageOffset,
			CodebookSize: int(s.models.VQ.CodebookSize()), NumImageTokens: n, PrefixLength: prefix,
		},
	}
	w.input, w.mask = prompt.T2I(text, s.sp, prefix, n)
	w.uncond, w.uncondMask = prompt.T2IUncond(s.sp, prefix, n)
	return w, samplerError(w.params.Validate())
}

// t2iStart is the data of the "start" event of a t2i job.
type t2iStart struct {
	ID             string  `json:"id"`
	Kind           string  `json:"kind"`
	PromptIDs      []int64 `json:"prompt_ids"`
	Timesteps      int     `json:"timesteps"`
	NumImageTokens int     `json:"num_image_tokens"`
	Grid           [2]int  `json:"grid"`
	Batch          int     `json:"batch"`
	QueueMS        float64 `json:"queue_ms"`
}

// t2iStep is the data of a t2i "step" event; Masked is the number of
// image positions still masked after the step.
type t2iStep struct {
	Step      int     `json:"step"`
	Steps     int     `json:"steps"`
	Masked    int     `json:"masked"`
	ElapsedMS float64 `json:"elapsed_ms"`
}

// t2iPreview is the data of a "preview" event: the image decoded from
// the codes after Step, masked positions painted mid-grey.
type t2iPreview struct {
	Step   int    `json:"step"`
	Masked int    `json:"masked"`
	PNG    string `json:"png"`
}

// t2iResult is the final JSON of a t2i request.
type t2iResult struct {
	ID        string  `json:"id"`
	Codes     []int64 `json:"codes"`
	PNG       string  `json:"png"`
	Width     int     `json:"width"`
	Height    int     `json:"height"`
	Steps     int     `json:"steps"`
	ElapsedMS float64 `json:"elapsed_ms"`
	Batch     int     `json:"batch"`
}

// runT2I runs a batch of t2i jobs as one GenerateImageCodes call and
// decodes the images with one decoder call.
func (s *Server) runT2I(ctx, hard context.Context, batch []*job) {
	w0 := batch[0].t2i
	p := w0.params
	seeds := make([]uint64, len(batch))
	req := sampler.T2IRequest{Params: p}
	streaming := false
	for b, j := range batch {
		w := j.t2i
		seeds[b] = w.seed
		req.InputIDs = append(req.InputIDs, w.input)
		req.AttentionMask = append(req.AttentionMask, w.mask)
		req.UncondInputIDs = append(req.UncondInputIDs, w.uncond)
		req.UncondAttentionMask = append(req.UncondAttentionMask, w.uncondMask)
		streaming = streaming || j.events != nil
		j.send(event{"start", t2iStart{
			ID: j.id, Kind: "t2i", PromptIDs: w.input, Timesteps: p.Timesteps, NumImageTokens: p.NumImageTokens,
			Grid: w.grid, Batch: len(batch), QueueMS: ms(j.started.Sub(j.enqueued)),
		}})
	}
	req.Noise = newBatchNoise(seeds)

	start := time.Now()
	masked := make([]int, len(batch))
	req.OnStep = func(ev sampler.T2IStepEvent) {
		for b, j := range batch {
			j.stepsDone.Store(int64(ev.Step + 1))
			masked[b] = ev.Masked[b]
			if j.events != nil && j.ctx.Err() == nil {
				j.send(event{"step", t2iStep{Step: ev.Step + 1, Steps: ev.Steps, Masked: ev.Masked[b], ElapsedMS: ms(ev.Elapsed)}})
			}
		}
	}
	// The step event carries no codes, so previews come from the model
	// input of the next step, which holds the codes after this one.
	calls := 0
	fwd := func(ids, mask *ir.Tensor) (*ir.Tensor, error) {
		done := calls
		calls++
		if streaming && s.cfg.PreviewEvery > 0 && done > 0 && done%s.cfg.PreviewEvery == 0 {
			s.sendPreviews(batch, ids, done, masked, w0.grid, p)
		}
		return s.forward(ids, mask)
	}
	codes, err := sampler.GenerateImageCodes(ctx, fwd, req)
	if err != nil {
		finishAll(batch, hard, fmt.Errorf("image generation failed: %w", err))
		return
	}
	pixels, err := s.models.VQ.Decode(idTensor(codes), w0.grid)
	if err != nil {
		finishAll(batch, hard, fmt.Errorf("decoding the image failed: %w", err))
		return
	}
	elapsed := time.Since(start)
	for b, j := range batch {
		if j.ctx.Err() != nil {
			j.finish(nil, context.Cause(j.ctx))
			continue
		}
		img, err := imageio.ToImage(pixels, b)
		if err != nil {
			j.finish(nil, fmt.Errorf("converting the image failed: %w", err))
			continue
		}
		data, err := encodePNG(img)
		if err != nil {
			j.finish(nil, err)
			continue
		}
		j.finish(&t2iResult{
			ID: j.id, Codes: codes[b], PNG: data, Width: img.Bounds().Dx(), Height: img.Bounds().Dy(),
			Steps: p.Timesteps, ElapsedMS: ms(elapsed), Batch: len(batch),
		}, nil)
	}
}

// sendPreviews decodes the image positions of the conditional rows of
// ids (the first len(batch) rows) and sends each streaming job its image.
// A failure is logged and skipped: previews are a courtesy, the result
// does not depend on them.
func (s *Server) sendPreviews(batch []*job, ids *ir.Tensor, step int, masked []int, grid [2]int, p sampler.T2IParams) {
	n, length := p.NumImageTokens, int(ids.Shape[1])
	first := length - n - 1
	codes := ir.NewTensor(ir.I64, int64(len(batch)), int64(n))
	isMasked := make([][]bool, len(batch))
	for b := range batch {
		isMasked[b] = make([]bool, n)
		row := ids.I64()[b*length+first : b*length+first+n]
		for i, t := range row {
			if t == p.MaskID {
				isMasked[b][i] = true // decoded as code 0, then painted over
				continue
			}
			codes.I64()[b*n+i] = t - p.ImageTokenOffset
		}
	}
	pixels, err := s.models.VQ.Decode(codes, grid)
	if err != nil {
		slog.Error("preview decode failed", "ids", jobIDs(batch), "step", step, "err", err)
		return
	}
	for b, j := range batch {
		if j.events == nil || j.ctx.Err() != nil {
			continue
		}
		img, err := imageio.ToImage(pixels, b)
		if err != nil {
			slog.Error("preview conversion failed", "id", j.id, "step", step, "err", err)
			continue
		}
		greyMasked(img, isMasked[b], grid)
		data, err := encodePNG(img)
		if err != nil {
			slog.Error("preview encoding failed", "id", j.id, "step", step, "err", err)
			continue
		}
		j.send(event{"preview", t2iPreview{Step: step, Masked: masked[b], PNG: data}})
	}
}

// greyMasked paints the pixel patch of every masked code position
// mid-grey. Code i covers the patch at grid row i/cols, column i%cols.
func greyMasked(img *image.RGBA, masked []bool, grid [2]int) {
	b := img.Bounds()
	ph, pw := b.Dy()/grid[0], b.Dx()/grid[1]
	grey := image.NewUniform(color.RGBA{128, 128, 128, 255})
	for i, m := range masked {
		if !m {
			continue
		}
		r, c := i/grid[1], i%grid[1]
		rect := image.Rect(b.Min.X+c*pw, b.Min.Y+r*ph, b.Min.X+(c+1)*pw, b.Min.Y+(r+1)*ph)
		draw.Draw(img, rect, grey, image.Point{}, draw.Src)
	}
}

// encodePNG returns img as base64 PNG.
func encodePNG(img image.Image) (string, error) {
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		return "", fmt.Errorf("encoding PNG failed: %w", err)
	}
	return base64.StdEncoding.EncodeToString(buf.Bytes()), nil
}

func jobIDs(batch []*job) []string {
	ids := make([]string, len(batch))
	for i, j := range batch {
		ids[i] = j.id
	}
	return ids
}
