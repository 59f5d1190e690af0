package serve

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/mmadac/mmadac/frontend/prompt"
	"github.com/mmadac/mmadac/ir"
	"github.com/mmadac/mmadac/runtime/sampler"
)

// textWork is the sampler input of a text or mmu job.
type textWork struct {
	// prompt is the whole prompt. For mmu the worker fills it in after
	// encoding the image: image prefix, then question.
	prompt []int64
	params sampler.TextParams
	seed   uint64
	// image is set for mmu jobs.
	image *mmuImage
}

// promptLength returns the prompt's length, known before the image of
// an mmu job is encoded.
func (w *textWork) promptLength() int {
	if w.image != nil {
		return w.image.promptLength()
	}
	return len(w.prompt)
}

// batchKey groups text and mmu jobs that one GenerateText call can run:
// the sampler takes rows of one prompt length and one set of parameters.
// The seeds may differ (see batchNoise).
func (w *textWork) batchKey() string {
	p := w.params
	return fmt.Sprintf("text|%d|%d|%d|%g|%g|%s|%d", p.Steps, p.GenLength, p.BlockLength, p.Temperature, p.CFGScale, p.Remasking, w.promptLength())
}

// textEventCap is the number of events a text job can send: start, one
// per step, and slack.
func textEventCap(p sampler.TextParams) int { return p.Steps + 4 }

// logParams returns the parameters for the request log.
func (b textBody) logParams() []any {
	return []any{"steps_requested", b.Steps, "gen_length", b.GenLength, "block_length", b.BlockLength,
		"temperature", b.Temperature, "cfg_scale", b.CFGScale, "remasking", b.Remasking, "seed", b.Seed,
		"prompt_ids", len(b.PromptIDs), "prompt_bytes", len(b.Prompt)}
}

func (s *Server) handleText(w http.ResponseWriter, r *http.Request) {
	l := &requestLog{id: s.newID(), kind: "text", start: time.Now()}
	defer l.emit()
	w.Header().Set("X-Request-Id", l.id)
	body := newTextBody()
	if err := decodeJSON(r.Body, s.cfg.Limits.MaxBodyBytes, &body, textFields); err != nil {
		s.fail(w, l, err)
		return
	}
	l.params = body.logParams()
	work, err := s.prepareText(body, nil)
	if err != nil {
		s.fail(w, l, err)
		return
	}
	j := &job{id: l.id, kind: "text", key: work.batchKey(), text: work}
	s.runJob(w, r, j, l, textEventCap(work.params))
}

// prepareText validates a text or mmu body against the limits and the
// model and returns the job's work. img is nil for text.
func (s *Server) prepareText(body textBody, img *mmuImage) (*textWork, error) {
	lim := s.cfg.Limits
	if err := body.validate(lim); err != nil {
		return nil, err
	}
	ids, err := s.questionIDs(body.Prompt, body.PromptIDs)
	if err != nil {
		return nil, err
	}
	work := &textWork{params: body.params(s.sp.Mask), seed: body.Seed}
	if img != nil {
		img.question = ids
		work.image = img
	} else {
		work.prompt = ids
	}
	if total := work.promptLength() + body.GenLength; total > lim.MaxSequence {
		return nil, badField("gen_length", "the prompt (%d tokens) plus gen_length %d is %d tokens, more than the limit of %d",
			work.promptLength(), body.GenLength, total, lim.MaxSequence)
	}
	return work, nil
}

// questionIDs returns the prompt ids of a text request, or the question
// part of an mmu request: prompt_ids as sent, or prompt text in the chat
// layout, which needs a tokenizer.
func (s *Server) questionIDs(text string, ids []int64) ([]int64, error) {
	if len(ids) > 0 {
		if err := checkIDs(ids, s.vocab); err != nil {
			return nil, err
		}
		return ids, nil
	}
	if s.models.Tokenizer == nil {
		return nil, badField("prompt", "the model %s has no tokenizer.json, so the server cannot encode prompt text; send prompt_ids (a list of token ids) instead", s.models.TextPath)
	}
	ids = prompt.Chat(s.models.Tokenizer, s.sp, []prompt.Message{{Role: "user", Content: text}}, false)
	if len(ids) > s.cfg.Limits.MaxSequence {
		return nil, badField("prompt", "the prompt is %d tokens long, more than the limit of %d", len(ids), s.cfg.Limits.MaxSequence)
	}
	return ids, checkIDs(ids, s.vocab)
}

// textStart is the data of the "start" event of text and mmu jobs.
type textStart struct {
	ID           string  `json:"id"`
	Kind         string  `json:"kind"`
	PromptIDs    []int64 `json:"prompt_ids"`
	PromptText   *string `json:"prompt_text"`
	PromptLength int     `json:"prompt_length"`
	GenLength    int     `json:"gen_length"`
	MaskID       int64   `json:"mask_id"`
	Steps        int     `json:"steps"`
	Blocks       int     `json:"blocks"`
	Batch        int     `json:"batch"`
	QueueMS      float64 `json:"queue_ms"`
}

// textStep is the data of a "step" event: what one sampler step
// unmasked. Step counts from 1 to Steps over all blocks.
type textStep struct {
	Step        int       `json:"step"`
	Steps       int       `json:"steps"`
	Block       int       `json:"block"`
	Blocks      int       `json:"blocks"`
	Positions   []int     `json:"positions"`
	Tokens      []int64   `json:"tokens"`
	Confidences []float64 `json:"confidences"`
	// Pieces are the tokens' texts, when a tokenizer is loaded.
	Pieces          []string `json:"pieces,omitempty"`
	Unmasked        int      `json:"unmasked"`
	ElapsedMS       float64  `json:"elapsed_ms"`
	TokensPerSecond float64  `json:"tokens_per_second"`
}

// textResult is the final JSON of a text or mmu request.
type textResult struct {
	ID string `json:"id"`
	// IDs is the whole sequence, prompt included.
	IDs []int64 `json:"ids"`
	// Text is the decoded answer (the ids after the prompt, special
	// tokens left out), or null without a tokenizer.
	Text            *string `json:"text"`
	PromptLength    int     `json:"prompt_length"`
	Steps           int     `json:"steps"`
	ElapsedMS       float64 `json:"elapsed_ms"`
	TokensPerSecond float64 `json:"tokens_per_second"`
	// Batch is the number of requests that shared the sampler call.
	Batch int `json:"batch"`
}

// runText runs a batch of text and mmu jobs as one GenerateText call.
func (s *Server) runText(ctx, hard context.Context, batch []*job) {
	if err := s.encodeImages(ctx, batch); err != nil {
		finishAll(batch, hard, err)
		return
	}
	p := batch[0].text.params
	prompts := make([][]int64, len(batch))
	seeds := make([]uint64, len(batch))
	for b, j := range batch {
		prompts[b], seeds[b] = j.text.prompt, j.text.seed
		j.send(event{"start", textStart{
			ID: j.id, Kind: j.kind, PromptIDs: j.text.prompt, PromptText: s.decode(j.text.prompt, false),
			PromptLength: len(j.text.prompt), GenLength: p.GenLength, MaskID: p.MaskID, Steps: p.Steps,
			Blocks: p.GenLength / p.BlockLength, Batch: len(batch), QueueMS: ms(j.started.Sub(j.enqueued)),
		}})
	}

	start := time.Now()
	unmasked := make([]int, len(batch))
	out, err := sampler.GenerateText(ctx, s.forward, sampler.TextRequest{
		Prompt: prompts, Params: p, Noise: newBatchNoise(seeds), Head: s.head,
		OnStep: func(ev sampler.StepEvent) {
			step := ev.Block*ev.Steps + ev.Step + 1
			elapsed := time.Since(start)
			for b, j := range batch {
				j.stepsDone.Store(int64(step))
				unmasked[b] += len(ev.Tokens[b])
				if j.events == nil || j.ctx.Err() != nil {
					continue
				}
				j.send(event{"step", textStep{
					Step: step, Steps: p.Steps, Block: ev.Block + 1, Blocks: ev.Blocks,
					Positions: ev.Positions[b], Tokens: ev.Tokens[b], Confidences: finiteAll(ev.Confidences[b]),
					Pieces: s.pieces(ev.Tokens[b]), Unmasked: unmasked[b],
					ElapsedMS: ms(elapsed), TokensPerSecond: rate(unmasked[b], elapsed),
				}})
			}
		},
	})
	elapsed := time.Since(start)
	if err != nil {
		finishAll(batch, hard, fmt.Errorf("text generation failed: %w", err))
		return
	}
	for b, j := range batch {
		if j.ctx.Err() != nil {
			j.finish(nil, context.Cause(j.ctx))
			continue
		}
		lp := len(j.text.prompt)
		j.finish(&textResult{
			ID: j.id, IDs: out[b], Text: s.decode(out[b][lp:], true), PromptLength: lp, Steps: p.Steps,
			ElapsedMS: ms(elapsed), TokensPerSecond: rate(p.GenLength, elapsed), Batch: len(batch),
		}, nil)
	}
}

// finishAll ends every unfinished job of a failed batch. A job whose own
// context ended gets that cause. The others get errShuttingDown when
// shutdown cancelled the batch, and err otherwise.
func finishAll(batch []*job, hard context.Context, err error) {
	for _, j := range batch {
		switch {
		case j.finished:
		case j.ctx.Err() != nil:
			j.finish(nil, context.Cause(j.ctx))
		case hard.Err() != nil:
			j.finish(nil, errShuttingDown)
		default:
			j.finish(nil, err)
		}
	}
}

// decode returns the text of ids, or nil without a tokenizer.
func (s *Server) decode(ids []int64, skipSpecial bool) *string {
	if s.models.Tokenizer == nil {
		return nil
	}
	text := s.models.Tokenizer.Decode(ids, skipSpecial)
	return &text
}

// pieces returns the text of each token on its own, or nil without a
// tokenizer. A byte-level token that holds part of a character decodes
// to U+FFFD; the final text is decoded whole and has no such loss.
func (s *Server) pieces(ids []int64) []string {
	if s.models.Tokenizer == nil {
		return nil
	}
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = s.models.Tokenizer.Decode([]int64{id}, false)
	}
	return out
}

// ms returns d in milliseconds.
func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// rate returns n per second over d.
func rate(n int, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(n) / d.Seconds()
}

func finiteAll(v []float64) []float64 {
	out := make([]float64, len(v))
	for i, x := range v {
		out[i] = finite(x)
	}
	return out
}

// idTensor packs rows of equal length into an i64 tensor.
func idTensor(rows [][]int64) *ir.Tensor {
	t := ir.NewTensor(ir.I64, int64(len(rows)), int64(len(rows[0])))
	for b, row := range rows {
		copy(t.I64()[b*len(row):], row)
	}
	return t
}
