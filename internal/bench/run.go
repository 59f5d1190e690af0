package bench

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/mmadac/mmadac/frontend"
	"github.com/mmadac/mmadac/ir"
	"github.com/mmadac/mmadac/runtime/sampler"
)

// Model is the step function a scenario drives: engine.TextModel and
// engine.ONNXModel both implement it.
type Model interface {
	// Forward runs the transformer, i64 [batch, seq] ids and mask to f32
	// logits [batch, seq, vocab].
	Forward(ids, mask *ir.Tensor) (*ir.Tensor, error)
	// Head returns the folded sampling head, or nil when steps read full
	// logits through Forward.
	Head() sampler.Head
	// LastStepBytes returns the bytes the last model call returned to Go.
	LastStepBytes() int64
}

// Target is one model under test and how to describe it.
type Target struct {
	// Name labels the results, such as "mmadac ort" or "naive export ort".
	Name string
	// Backend and Pipeline describe how the model runs: the backend name,
	// and "default", "none" or "naive export".
	Backend, Pipeline string
	Model             Model
	Config            *frontend.LLaDAConfig
	// FLOPs returns the floating-point operations of one step at the
	// given sizes; nil leaves GFLOP/s unreported.
	FLOPs FLOPCounter
	// Threads is the intra-op thread count of the backend.
	Threads int
	// Mode, when set, names the decoding mode of the results in place of
	// the one the scenario implies, for a model whose head approximates
	// (the block cache).
	Mode string
}

// FLOPCounter returns the FLOPs of one model call: rows sequences of seq
// tokens, of which npos positions go through the folded head (npos is
// ignored without a folded head).
type FLOPCounter func(rows, seq, npos int64) int64

// Run measures one scenario on a target. It validates the scenario,
// runs one untimed warm-up step, then the timed run, and fills in the
// statistics. peak, when positive, is the calibrated GFLOP/s that the
// result is compared with.
func Run(ctx context.Context, t Target, s Scenario, peak float64) (*Result, error) {
	if t.Model == nil || t.Config == nil {
		return nil, errors.New("bench target needs a model and its config")
	}
	if err := s.Validate(t.Config); err != nil {
		return nil, err
	}
	s = s.withTokens(t.Config)
	r := &Result{Name: t.Name, Scenario: s, Backend: t.Backend, Pipeline: t.Pipeline,
		HeadFolding: t.Model.Head() != nil, Mode: modeName(s.Text), Threads: t.Threads}
	if t.Mode != "" {
		r.Mode = t.Mode
		if m := modeName(s.Text); m != "exact" {
			r.Mode += " + " + m
		}
	}
	r.LoadBefore = loadAverage()

	if err := warmUp(ctx, t, s); err != nil {
		return nil, fmt.Errorf("warm-up step: %w", err)
	}
	resetPeakRSS()
	slog.Info("bench: running", "target", t.Name, "scenario", s.Kind, "sequence", s.SequenceLength(), "mode", r.Mode)
	var err error
	switch s.Kind {
	case KindText, KindMMU:
		err = runText(ctx, t, s, r)
	case KindT2I:
		err = runT2I(ctx, t, s, r)
	case KindForward:
		err = runForward(t, s, r)
	}
	if err != nil {
		return nil, fmt.Errorf("scenario %s on %s: %w", s.Kind, t.Name, err)
	}
	r.PeakRSSBytes = peakRSS()
	r.LoadAfter = loadAverage()
	r.summarize(t, peak)
	return r, nil
}

// warmUp runs one step of the scenario's shapes, untimed. With a folded
// head this also builds the head variant the run uses.
func warmUp(ctx context.Context, t Target, s Scenario) error {
	switch s.Kind {
	case KindText, KindMMU:
		// One step of the first block: the sampler checks the context
		// before every step, so cancelling it after the first ends the run.
		w := s
		w.Text.ParallelThreshold, w.Text.StopAtEOS = 0, false
		stepCtx, cancel := context.WithCancel(ctx)
		defer cancel()
		_, err := sampler.GenerateText(stepCtx, t.Model.Forward, sampler.TextRequest{
			Prompt: buildPrompt(w, t.Config), Params: w.Text, Noise: sampler.NewSeeded(w.Seed), Head: t.Model.Head(),
			OnStep: func(sampler.StepEvent) { cancel() },
		})
		if err != nil && ctx.Err() == nil && errors.Is(err, context.Canceled) {
			return nil
		}
		return err
	}
	ids, mask := forwardInputs(s, t.Config)
	_, err := t.Model.Forward(ids, mask)
	return err
}

// stepRecorder turns step events into per-step latencies.
type stepRecorder struct {
	last time.Duration
	r    *Result
	bm   Model
}

// positionCounter is a model whose head computes the block's masked
// positions only, and reports how many it computed in the last step.
type positionCounter interface {
	LastStepPositions() int
}

func (rec *stepRecorder) record(elapsed time.Duration, unmasked int) {
	rec.r.StepMS = append(rec.r.StepMS, float64(elapsed-rec.last)/float64(time.Millisecond))
	rec.r.Unmasked = append(rec.r.Unmasked, unmasked)
	rec.r.bytesToGo += rec.bm.LastStepBytes()
	if pc, ok := rec.bm.(positionCounter); ok && pc.LastStepPositions() > 0 {
		rec.r.stepNPos = append(rec.r.stepNPos, int64(pc.LastStepPositions()))
	}
	rec.last = elapsed
}

func runText(ctx context.Context, t Target, s Scenario, r *Result) error {
	prompt := buildPrompt(s, t.Config)
	rec := &stepRecorder{r: r, bm: t.Model}
	start := time.Now()
	out, err := sampler.GenerateText(ctx, t.Model.Forward, sampler.TextRequest{
		Prompt: prompt, Params: s.Text, Noise: sampler.NewSeeded(s.Seed), Head: t.Model.Head(),
		OnStep: func(ev sampler.StepEvent) {
			n := 0
			for _, p := range ev.Positions {
				n += len(p)
			}
			rec.record(ev.Elapsed, n)
		},
	})
	if err != nil {
		return err
	}
	r.Seconds = time.Since(start).Seconds()
	r.Tokens = s.Batch * s.Text.GenLength
	r.Output = out
	r.PromptLength = len(prompt[0])
	rows := int64(s.Batch)
	if s.Text.CFGScale > 0 {
		rows *= 2
	}
	seq := int64(s.SequenceLength())
	r.bytesFromGo = 2 * rows * seq * 8
	if r.HeadFolding {
		r.bytesFromGo += int64(s.Text.BlockLength) * 8
	}
	r.flopRows, r.flopNPos = rows, int64(s.Text.BlockLength)
	return nil
}

func runT2I(ctx context.Context, t Target, s Scenario, r *Result) error {
	cond, uncond := t2iLayout(s, t.Config)
	length := len(cond[0])
	params := sampler.T2IParams{
		GuidanceScale: s.GuidanceScale, Timesteps: s.T2ISteps, Temperature: s.Temperature,
		MaskID: modelTokens(t.Config).mask, ImageTokenOffset: t.Config.ImageTokenOffset(),
		CodebookSize: t.Config.CodebookSize, NumImageTokens: s.ImageTokens, PrefixLength: length - s.ImageTokens - 2,
	}
	rec := &stepRecorder{r: r, bm: t.Model}
	prevMasked := s.Batch * s.ImageTokens
	start := time.Now()
	var head sampler.ProbsHead
	if ph, ok := t.Model.(sampler.ProbsHead); ok && t.Model.Head() != nil {
		head = ph
	}
	codes, err := sampler.GenerateImageCodes(ctx, t.Model.Forward, sampler.T2IRequest{
		InputIDs: cond, UncondInputIDs: uncond, Params: params, Noise: sampler.NewSeeded(s.Seed), Head: head,
		OnStep: func(ev sampler.T2IStepEvent) {
			masked := 0
			for _, m := range ev.Masked {
				masked += m
			}
			rec.record(ev.Elapsed, prevMasked-masked)
			prevMasked = masked
		},
	})
	if err != nil {
		return err
	}
	r.Seconds = time.Since(start).Seconds()
	r.Tokens = s.Batch * s.ImageTokens
	r.Output = codes
	rows := int64(s.Batch)
	if s.GuidanceScale > 0 {
		rows *= 2
	}
	r.bytesFromGo = 2 * rows * int64(length) * 8
	// With full logits the head covers every position; the folded head
	// covers the image positions (counted over the whole vocabulary, so
	// GFLOP/s is slightly overstated there).
	r.flopRows, r.flopNPos = rows, int64(length)
	if head != nil {
		r.flopNPos = int64(s.ImageTokens)
	}
	return nil
}

// forwardInputs returns the ids and an all-ones mask of the forward
// scenario (and of the t2i warm-up): random text of the sequence length.
func forwardInputs(s Scenario, cfg *frontend.LLaDAConfig) (ids, mask *ir.Tensor) {
	rows, seq := s.Batch, s.SequenceLength()
	if s.Kind == KindT2I && s.GuidanceScale > 0 {
		rows *= 2
	}
	rng := newRNG(s.Seed)
	ids = ir.NewTensor(ir.I64, int64(rows), int64(seq))
	copy(ids.I64(), randomText(rng, modelTokens(cfg), rows*seq))
	mask = ir.NewTensor(ir.I64, int64(rows), int64(seq))
	for i := range mask.I64() {
		mask.I64()[i] = 1
	}
	return ids, mask
}

func runForward(t Target, s Scenario, r *Result) error {
	ids, mask := forwardInputs(s, t.Config)
	start := time.Now()
	for range s.ForwardRuns {
		before := time.Now()
		if _, err := t.Model.Forward(ids, mask); err != nil {
			return err
		}
		r.StepMS = append(r.StepMS, float64(time.Since(before))/float64(time.Millisecond))
		r.bytesToGo += t.Model.LastStepBytes()
	}
	r.Seconds = time.Since(start).Seconds()
	r.Tokens = s.Batch * s.PromptLength * s.ForwardRuns
	r.bytesFromGo = 2 * ids.Shape[0] * ids.Shape[1] * 8
	r.flopRows, r.flopNPos = ids.Shape[0], ids.Shape[1]
	return nil
}

// modeName names the decoding mode of text parameters.
func modeName(p sampler.TextParams) string {
	switch {
	case p.ParallelThreshold > 0 && p.StopAtEOS:
		return fmt.Sprintf("threshold %g + stop at eos", p.ParallelThreshold)
	case p.ParallelThreshold > 0:
		return fmt.Sprintf("threshold %g", p.ParallelThreshold)
	case p.StopAtEOS:
		return "stop at eos"
	}
	return "exact"
}
