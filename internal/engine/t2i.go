package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/mmadac/mmadac/ir"
	"github.com/mmadac/mmadac/runtime/sampler"
)

// T2IRequest is one text-to-image generation: prompts already laid out as
// upstream's t2i prompt builder does ([iPAD]... <|t2i|> BOS text EOS
// <|soi|> image positions <|eoi|>), the same for the empty caption, the
// sampler settings and the noise.
type T2IRequest struct {
	InputIDs      [][]int64
	AttentionMask [][]int64
	// UncondInputIDs and UncondAttentionMask are needed when
	// Params.GuidanceScale > 0.
	UncondInputIDs      [][]int64
	UncondAttentionMask [][]int64
	// Params sets GuidanceScale, Timesteps and Temperature. Fields that
	// depend on the models and are left at zero are filled in: MaskID
	// from the text config's mask token, ImageTokenOffset from its image
	// token offset, CodebookSize from the tokenizer, NumImageTokens from
	// Grid or else the text config's num_vq_tokens, and PrefixLength as
	// sequence length - NumImageTokens - 2 (the prefix, <|soi|>, the
	// image, <|eoi|>).
	Params sampler.T2IParams
	// Grid is the latent grid (rows, columns) to decode; zero means
	// square.
	Grid   [2]int
	Noise  sampler.NoiseSource
	OnStep func(sampler.T2IStepEvent)
}

// GenerateImages samples image codes with the text model and decodes them
// with the tokenizer. It returns the codes [B][N] and the decoder output
// f32 [B, 3, H, W] before clamping; imageio.ToImage or ToHWCUint8 apply
// upstream's post-processing.
func GenerateImages(ctx context.Context, text *TextModel, vq *VQModel, req T2IRequest) (codes [][]int64, pixels *ir.Tensor, err error) {
	if text == nil || vq == nil {
		return nil, nil, errors.New("text-to-image needs both a text model and a vq model")
	}
	params, err := t2iParams(text, vq, req)
	if err != nil {
		return nil, nil, err
	}
	codes, err = sampler.GenerateImageCodes(ctx, text.Forward, sampler.T2IRequest{
		InputIDs: req.InputIDs, AttentionMask: req.AttentionMask,
		UncondInputIDs: req.UncondInputIDs, UncondAttentionMask: req.UncondAttentionMask,
		Params: params, Noise: req.Noise, OnStep: req.OnStep, Head: probsHead(text),
	})
	if err != nil {
		return nil, nil, err
	}

	n := params.NumImageTokens
	flat := ir.NewTensor(ir.I64, int64(len(codes)), int64(n))
	for b, row := range codes {
		copy(flat.I64()[b*n:], row)
	}
	slog.Info("t2i codes sampled; decoding", "images", len(codes), "tokens", n)
	pixels, err = vq.Decode(flat, req.Grid)
	if err != nil {
		return nil, nil, err
	}
	return codes, pixels, nil
}

// t2iParams completes the request's parameters from the models' configs
// and checks that text model and tokenizer agree on the codebook.
func t2iParams(text *TextModel, vq *VQModel, req T2IRequest) (sampler.T2IParams, error) {
	p := req.Params
	cfg := text.Config
	if p.MaskID == 0 {
		id, ok := cfg.SpecialTokenIDs()["mask"]
		if !ok {
			return p, errors.New("the text config has no mask token id; set Params.MaskID")
		}
		p.MaskID = id
	}
	if p.ImageTokenOffset == 0 {
		p.ImageTokenOffset = cfg.ImageTokenOffset()
	}
	if err := CheckVQ(text, vq); err != nil {
		return p, err
	}
	size := int(vq.CodebookSize())
	if p.CodebookSize == 0 {
		p.CodebookSize = size
	} else if p.CodebookSize != size {
		return p, fmt.Errorf("codebook size %d does not match the vq model's %d", p.CodebookSize, size)
	}
	if p.NumImageTokens == 0 {
		switch {
		case req.Grid != [2]int{}:
			p.NumImageTokens = req.Grid[0] * req.Grid[1]
		case cfg.NumVQTokens > 0:
			p.NumImageTokens = cfg.NumVQTokens
		default:
			return p, errors.New("the number of image tokens is unknown: the text config has no num_vq_tokens; set Params.NumImageTokens or Grid")
		}
	}
	if req.Grid != [2]int{} && req.Grid[0]*req.Grid[1] != p.NumImageTokens {
		return p, fmt.Errorf("grid %dx%d has %d cells for %d image tokens", req.Grid[0], req.Grid[1], req.Grid[0]*req.Grid[1], p.NumImageTokens)
	}
	if p.PrefixLength == 0 && len(req.InputIDs) > 0 {
		p.PrefixLength = len(req.InputIDs[0]) - p.NumImageTokens - 2
	}
	p.Temperatures = foldedTemperatures(text, p)
	return p, nil
}

// foldedTemperatures returns the bundle's folded t2i temperatures when
// they were computed for this run's steps and initial temperature, else
// nil (the sampler then computes them).
func foldedTemperatures(text *TextModel, p sampler.T2IParams) []float64 {
	sched := text.Schedule(ScheduleT2ITemperature)
	if sched == nil || len(sched.Floats) != p.Timesteps || text.scheduleT2ITemperature != p.Temperature {
		return nil
	}
	return sched.Floats
}

// probsHead returns the model as the t2i sampler's folded head when head
// folding is on.
func probsHead(text *TextModel) sampler.ProbsHead {
	if !text.HeadFolding() {
		return nil
	}
	return text
}
