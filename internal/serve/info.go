package serve

import (
	_ "embed"
	"net/http"
	"time"
)

// page is the demo page: one HTML file with its script and styles
// inline, so the binary serves it without a build step or other assets.
//
//go:embed page.html
var page []byte

func (s *Server) handlePage(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	// The page loads nothing from elsewhere; the policy makes sure of it.
	h.Set("Content-Security-Policy", "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src 'self' data: blob:")
	h.Set("X-Content-Type-Options", "nosniff")
	w.Write(page)
}

// health is the JSON of GET /v1/health.
type health struct {
	Status  string  `json:"status"`
	Queued  int     `json:"queued"`
	Running int     `json:"running"`
	Batches int64   `json:"batches"`
	UptimeS float64 `json:"uptime_s"`
}

// handleHealth returns 200 while the server admits requests and 503
// once shutdown has begun.
func (s *Server) handleHealth(w http.ResponseWriter, r *http.Request) {
	q, run := s.sched.depth()
	h := health{Status: "ok", Queued: q, Running: run, Batches: s.sched.batches.Load(), UptimeS: time.Since(s.started).Seconds()}
	status := http.StatusOK
	if s.closing.Load() {
		h.Status, status = "stopping", http.StatusServiceUnavailable
	}
	writeJSON(w, status, h)
}

// modelsInfo is the JSON of GET /v1/models: what is loaded, which
// endpoints work, and the defaults and limits of the parameters.
type modelsInfo struct {
	Text      textModelInfo   `json:"text"`
	VQ        *vqModelInfo    `json:"vq"`
	Tokenizer *tokenizerInfo  `json:"tokenizer"`
	Endpoints map[string]bool `json:"endpoints"`
	Defaults  struct {
		Text textBody `json:"text"`
		T2I  t2iBody  `json:"t2i"`
	} `json:"defaults"`
	Limits limitsInfo `json:"limits"`
	Queue  queueInfo  `json:"queue"`
}

type textModelInfo struct {
	Path             string           `json:"path"`
	Backend          string           `json:"backend"`
	VocabSize        int              `json:"vocab_size"`
	Layers           int              `json:"n_layers"`
	DModel           int              `json:"d_model"`
	MaskID           int64            `json:"mask_id"`
	ImageTokenOffset int64            `json:"image_token_offset"`
	NumImageTokens   int              `json:"num_image_tokens"`
	SpecialTokens    map[string]int64 `json:"special_tokens"`
}

type vqModelInfo struct {
	Path         string `json:"path"`
	CodebookSize int64  `json:"codebook_size"`
	ImageSize    int    `json:"image_size"`
	Grid         [2]int `json:"grid"`
}

type tokenizerInfo struct {
	Path      string `json:"path"`
	VocabSize int    `json:"vocab_size"`
}

type limitsInfo struct {
	MaxBodyBytes   int64   `json:"max_body_bytes"`
	MaxImageBytes  int64   `json:"max_image_bytes"`
	MaxImagePixels int     `json:"max_image_pixels"`
	MaxPromptBytes int     `json:"max_prompt_bytes"`
	MaxSteps       int     `json:"max_steps"`
	MaxGenLength   int     `json:"max_gen_length"`
	MaxSequence    int     `json:"max_sequence"`
	MaxGuidance    float64 `json:"max_guidance"`
	MaxTemperature float64 `json:"max_temperature"`
}

type queueInfo struct {
	MaxQueue        int     `json:"max_queue"`
	MaxBatch        int     `json:"max_batch"`
	RequestTimeoutS float64 `json:"request_timeout_s"`
	PreviewEvery    int     `json:"preview_every"`
	T2ITextLength   int     `json:"t2i_text_length"`
}

func (s *Server) handleModels(w http.ResponseWriter, r *http.Request) {
	c := s.models.Text.Config
	info := modelsInfo{
		Text: textModelInfo{
			Path: s.models.TextPath, Backend: s.models.Text.Backend, VocabSize: c.Vocab(),
			Layers: c.NLayers, DModel: c.DModel, MaskID: s.sp.Mask, ImageTokenOffset: s.sp.ImageOffset,
			NumImageTokens: numImageTokens(c.NumVQTokens), SpecialTokens: c.SpecialTokenIDs(),
		},
		Endpoints: map[string]bool{"text": true, "mmu": s.models.VQ != nil, "t2i": s.models.VQ != nil},
	}
	if vq := s.models.VQ; vq != nil {
		_, side := s.imageGrid()
		info.VQ = &vqModelInfo{Path: s.models.VQPath, CodebookSize: vq.CodebookSize(),
			ImageSize: side * vq.Config.Decoder.Factor(), Grid: [2]int{side, side}}
	}
	if t := s.models.Tokenizer; t != nil {
		info.Tokenizer = &tokenizerInfo{Path: s.models.TokenizerPath, VocabSize: t.VocabSize()}
	}
	info.Defaults.Text = newTextBody()
	info.Defaults.T2I = newT2IBody()
	l := s.cfg.Limits
	info.Limits = limitsInfo{l.MaxBodyBytes, l.MaxImageBytes, l.MaxImagePixels, l.MaxPromptBytes, l.MaxSteps, l.MaxGenLength, l.MaxSequence, l.MaxGuidance, l.MaxTemperature}
	info.Queue = queueInfo{s.cfg.MaxQueue, s.cfg.MaxBatch, s.cfg.RequestTimeout.Seconds(), s.cfg.PreviewEvery, s.cfg.T2ITextLength}
	writeJSON(w, http.StatusOK, info)
}
