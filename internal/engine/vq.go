package engine

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"

	"github.com/mmadac/mmadac/frontend"
	"github.com/mmadac/mmadac/ir"
	"github.com/mmadac/mmadac/models/magvit"
)

// VQModel is a loaded MAGVIT-v2 image tokenizer. The graphs have a static
// image size, so the model builds and opens one encoder session per image
// size and one decoder session per code grid, on first use, and keeps
// them. The batch size is free. A VQModel is safe for concurrent use.
type VQModel struct {
	Config *magvit.Config
	// Backend is the backend requested at load time; each session may
	// resolve "auto" on its own.
	Backend string
	ckpt    *frontend.Checkpoint

	mu       sync.Mutex
	encoders map[[2]int]Session // by image (height, width)
	decoders map[[2]int]Session // by grid (rows, columns)
}

// LoadVQ opens a tokenizer checkpoint folder (config.json and
// model.safetensors or pytorch_model.safetensors) for the named backend.
// It checks the quantizer buffers when the file has them and that the
// architecture uses every other tensor of the file, but reads no weights
// until the first Encode or Decode.
func LoadVQ(dir, backend string) (*VQModel, error) {
	if data, err := os.ReadFile(filepath.Join(dir, "config.json")); err == nil {
		var probe map[string]json.RawMessage
		if json.Unmarshal(data, &probe) == nil {
			if _, dm := probe["d_model"]; dm {
				return nil, fmt.Errorf("vq model %s is a MMaDA/LLaDA transformer, not a MAGVIT-v2 image tokenizer; pass it as --model and the tokenizer checkpoint as --vq-model", dir)
			}
		}
	}
	switch backend {
	case BackendAuto, BackendInterp, BackendORT, "":
	default:
		return nil, fmt.Errorf("backend %q cannot run the MAGVIT-v2 graphs; use auto, interp or ort", backend)
	}
	st, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("vq model %s: %w", dir, err)
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("vq model %s is not a folder; pass the tokenizer's checkpoint folder", dir)
	}
	cfg, err := magvit.LoadConfig(dir)
	if err != nil {
		return nil, err
	}
	ck, err := frontend.OpenCheckpoint(dir)
	if err != nil {
		return nil, err
	}
	if err := checkVQCheckpoint(cfg, ck); err != nil {
		ck.Close()
		return nil, fmt.Errorf("vq model %s: %w", dir, err)
	}
	return &VQModel{
		Config: cfg, Backend: backend, ckpt: ck,
		encoders: map[[2]int]Session{}, decoders: map[[2]int]Session{},
	}, nil
}

// checkVQCheckpoint builds both graphs at their smallest size, which
// checks every tensor they read, and rejects tensors they do not read.
func checkVQCheckpoint(cfg *magvit.Config, ck *frontend.Checkpoint) error {
	if err := magvit.CheckQuantizerBuffers(cfg, ck); err != nil {
		return err
	}
	f := cfg.Encoder.Factor()
	enc, err := magvit.BuildEncoder(cfg, ck, magvit.EncoderOptions{Height: f, Width: f})
	if err != nil {
		return err
	}
	dec, err := magvit.BuildDecoder(cfg, ck, magvit.DecoderOptions{NumTokens: 1})
	if err != nil {
		return err
	}
	if unused := magvit.UnusedTensors(ck.Names(), enc, dec); len(unused) > 0 {
		return fmt.Errorf("the architecture does not use %d tensors of the checkpoint (first %s); config.json does not describe these weights",
			len(unused), unused[0])
	}
	return nil
}

// CodebookSize returns the number of codes, 2^z.
func (m *VQModel) CodebookSize() int64 { return m.Config.CodebookSize() }

// CheckVQ requires vq to be an image tokenizer whose codes the text model
// reads: the codebook of the size the text config declares, and image
// tokens that fit the text vocabulary. Without it, mmu would feed the
// model codes it was never trained on and still print a result.
func CheckVQ(text *TextModel, vq *VQModel) error {
	c := text.Config
	size := vq.CodebookSize()
	if c.CodebookSize != 0 && int64(c.CodebookSize) != size {
		return fmt.Errorf("the text model reads %d image codes (codebook_size in its config.json) but the MAGVIT-v2 model has %d; pass the MAGVIT-v2 checkpoint the text model was trained with", c.CodebookSize, size)
	}
	if hi := c.ImageTokenOffset() + size; hi > int64(c.Vocab()) {
		return fmt.Errorf("image tokens [%d, %d) do not fit the text model's vocabulary of %d; pass the MAGVIT-v2 checkpoint the text model was trained with", c.ImageTokenOffset(), hi, c.Vocab())
	}
	return nil
}

// Encode turns pixels f32 [B, 3, H, W] in [-1, 1] into the latent f32
// [B, z, H/f, W/f] and the codes i64 [B, H/f * W/f]. H and W must be
// multiples of the downsampling factor f.
func (m *VQModel) Encode(pixels *ir.Tensor) (latent, codes *ir.Tensor, err error) {
	if pixels == nil {
		return nil, nil, errors.New("encode: pixel tensor is nil")
	}
	if pixels.DType != ir.F32 || len(pixels.Shape) != 4 || pixels.Shape[1] != 3 || pixels.Shape[0] < 1 {
		return nil, nil, fmt.Errorf("encode: pixels are %v %v; want f32 [batch, 3, height, width]", pixels.DType, pixels.Shape)
	}
	h, w := int(pixels.Shape[2]), int(pixels.Shape[3])
	if err := magvit.CheckImageSize(h, w, m.Config.Encoder.Factor()); err != nil {
		return nil, nil, fmt.Errorf("encode: %w", err)
	}
	sess, err := m.encoderSession(h, w)
	if err != nil {
		return nil, nil, err
	}
	out, err := sess.Run(map[string]*ir.Tensor{magvit.Pixels: pixels})
	if err != nil {
		return nil, nil, fmt.Errorf("encode: %w", err)
	}
	return out[magvit.Latent], out[magvit.Codes], nil
}

// Decode turns codes i64 [B, N] into pixels f32 [B, 3, rows*f, cols*f],
// not clamped. grid is (rows, columns); zero means a square grid, which
// needs a square N. Every code must lie in [0, CodebookSize).
func (m *VQModel) Decode(codes *ir.Tensor, grid [2]int) (*ir.Tensor, error) {
	if codes == nil {
		return nil, errors.New("decode: code tensor is nil")
	}
	if codes.DType != ir.I64 || len(codes.Shape) != 2 || codes.Shape[0] < 1 {
		return nil, fmt.Errorf("decode: codes are %v %v; want i64 [batch, tokens]", codes.DType, codes.Shape)
	}
	n := int(codes.Shape[1])
	grid, err := magvit.GridFor(n, grid)
	if err != nil {
		return nil, fmt.Errorf("decode: %w", err)
	}
	size := m.CodebookSize()
	for i, c := range codes.I64() {
		if c < 0 || c >= size {
			return nil, fmt.Errorf("decode: code %d (row %d, position %d) is outside the codebook [0, %d)", c, i/n, i%n, size)
		}
	}
	sess, err := m.decoderSession(grid)
	if err != nil {
		return nil, err
	}
	out, err := sess.Run(map[string]*ir.Tensor{magvit.Codes: codes})
	if err != nil {
		return nil, fmt.Errorf("decode: %w", err)
	}
	return out[magvit.Pixels], nil
}

// encoderSession returns the encoder session for images of h x w pixels.
func (m *VQModel) encoderSession(h, w int) (Session, error) {
	return m.session(m.encoders, [2]int{h, w}, func() (*ir.Graph, error) {
		return magvit.BuildEncoder(m.Config, m.ckpt, magvit.EncoderOptions{Height: h, Width: w})
	})
}

// decoderSession returns the decoder session for a grid of codes.
func (m *VQModel) decoderSession(grid [2]int) (Session, error) {
	return m.session(m.decoders, grid, func() (*ir.Graph, error) {
		return magvit.BuildDecoder(m.Config, m.ckpt, magvit.DecoderOptions{NumTokens: grid[0] * grid[1], Grid: grid})
	})
}

// session returns the cached session for key, building its graph and
// opening it on first use. The lock is held while opening, so two calls
// for one size do not both read the weights.
func (m *VQModel) session(cache map[[2]int]Session, key [2]int, build func() (*ir.Graph, error)) (Session, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.encoders == nil {
		return nil, errors.New("vq model is closed")
	}
	if s, ok := cache[key]; ok {
		return s, nil
	}
	g, err := build()
	if err != nil {
		return nil, err
	}
	s, name, err := OpenSession(g, m.Backend)
	if err != nil {
		return nil, fmt.Errorf("opening %s for %dx%d: %w", g.Name, key[0], key[1], err)
	}
	slog.Info("vq session ready", "graph", g.Name, "size", fmt.Sprintf("%dx%d", key[0], key[1]), "backend", name)
	cache[key] = s
	return s, nil
}

// Close releases every session and the checkpoint mapping.
func (m *VQModel) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	var errs []error
	for _, cache := range []map[[2]int]Session{m.encoders, m.decoders} {
		for _, s := range cache {
			errs = append(errs, s.Close())
		}
	}
	m.encoders, m.decoders = nil, nil
	if m.ckpt != nil {
		errs = append(errs, m.ckpt.Close())
		m.ckpt = nil
	}
	return errors.Join(errs...)
}
