package serve

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mmadac/mmadac/frontend/prompt"
	"github.com/mmadac/mmadac/frontend/tokenizer"
	"github.com/mmadac/mmadac/internal/engine"
	"github.com/mmadac/mmadac/runtime/sampler"
)

// Config sets how the server admits and runs requests.
type Config struct {
	// MaxQueue is the number of requests that may wait for the model.
	// A request beyond it is rejected with 429.
	MaxQueue int
	// MaxBatch is the largest number of compatible requests run as one
	// sampler call.
	MaxBatch int
	// RequestTimeout bounds a request from admission to its result,
	// queueing included.
	RequestTimeout time.Duration
	// PreviewEvery sends a t2i preview image every this many steps to
	// streaming clients; 0 sends none.
	PreviewEvery int
	// T2ITextLength is upstream's max_text_len: the caption part of a
	// t2i prompt is padded or cut to this many tokens plus the task
	// token (512 for MMaDA-8B).
	T2ITextLength int
	// Limits bound each request.
	Limits Limits
}

// DefaultConfig returns the settings that `mmadac serve` starts with.
func DefaultConfig() Config {
	return Config{
		MaxQueue: 64, MaxBatch: 8, RequestTimeout: 10 * time.Minute,
		PreviewEvery: 2, T2ITextLength: 512, Limits: DefaultLimits(),
	}
}

// Models are the loaded models the server runs. Text is required. VQ
// enables the mmu and t2i endpoints, and Tokenizer enables prompt text:
// without it, clients send prompt_ids and read ids.
type Models struct {
	Text      *engine.TextModel
	TextPath  string
	VQ        *engine.VQModel
	VQPath    string
	Tokenizer *tokenizer.Tokenizer
	// TokenizerPath is the tokenizer.json that Tokenizer came from.
	TokenizerPath string
}

// Server is the HTTP API and the web page around one loaded model. All
// sampling runs on one worker behind a bounded queue (see scheduler).
type Server struct {
	cfg    Config
	models Models
	// forward runs the transformer. head, when not nil, runs text steps
	// with the sampling head folded into the graph. Tests replace both to
	// slow the model down.
	forward sampler.Forward
	head    sampler.Head
	// vocab and sp come from the text config.
	vocab int64
	sp    prompt.Special

	sched   *scheduler
	mux     *http.ServeMux
	started time.Time
	nextID  atomic.Uint64
	// closing is set when shutdown begins; the health endpoint reports it.
	closing atomic.Bool

	mu      sync.Mutex
	httpSrv *http.Server
}

// New returns a server for the models. It starts the worker; call
// Shutdown to stop it.
func New(models Models, cfg Config) (*Server, error) {
	if models.Text == nil {
		return nil, errors.New("serve: no text model loaded")
	}
	if cfg.MaxQueue < 1 {
		return nil, fmt.Errorf("max queue must be at least 1, got %d", cfg.MaxQueue)
	}
	if cfg.MaxBatch < 1 {
		return nil, fmt.Errorf("max batch must be at least 1, got %d", cfg.MaxBatch)
	}
	if cfg.RequestTimeout <= 0 {
		return nil, fmt.Errorf("request timeout must be positive, got %v", cfg.RequestTimeout)
	}
	if cfg.T2ITextLength < 1 {
		return nil, fmt.Errorf("t2i text length must be at least 1, got %d", cfg.T2ITextLength)
	}
	if models.VQ != nil {
		if err := checkVQFits(models.Text, models.VQ); err != nil {
			return nil, fmt.Errorf("--model %s with --vq-model %s: %w", models.TextPath, models.VQPath, err)
		}
	}
	c := models.Text.Config
	sp := prompt.SpecialFromConfig(c.SpecialTokenIDs(), c.ImageTokenOffset())
	if err := sp.Validate(); err != nil {
		return nil, fmt.Errorf("text model %s: %w", models.TextPath, err)
	}
	s := &Server{
		cfg: cfg, models: models, forward: models.Text.Forward, head: models.Text.Head(),
		vocab: int64(c.Vocab()), sp: sp, started: time.Now(),
	}
	s.sched = newScheduler(cfg.MaxQueue, cfg.MaxBatch, s.runBatch)
	s.routes()
	return s, nil
}

// checkVQFits requires the text model's image tokens to match the image
// tokenizer's codebook.
func checkVQFits(text *engine.TextModel, vq *engine.VQModel) error {
	if err := engine.CheckVQ(text, vq); err != nil {
		return err
	}
	c := text.Config
	if n := numImageTokens(c.NumVQTokens); n != int(math.Pow(math.Round(math.Sqrt(float64(n))), 2)) {
		return fmt.Errorf("num_vq_tokens %d of the text config is not a square; the server needs a square image grid", n)
	}
	return nil
}

// numImageTokens returns num_vq_tokens, or MMaDA-8B's 1024 when the
// config does not give it.
func numImageTokens(configured int) int {
	if configured > 0 {
		return configured
	}
	return 1024
}

// Handler returns the HTTP handler of the API and the page.
func (s *Server) Handler() http.Handler { return s.mux }

func (s *Server) routes() {
	s.mux = http.NewServeMux()
	s.mux.HandleFunc("GET /{$}", s.handlePage)
	s.mux.HandleFunc("GET /v1/health", s.handleHealth)
	s.mux.HandleFunc("GET /v1/models", s.handleModels)
	s.mux.HandleFunc("POST /v1/text", s.handleText)
	s.mux.HandleFunc("POST /v1/mmu", s.handleMMU)
	s.mux.HandleFunc("POST /v1/t2i", s.handleT2I)
}

// Serve accepts connections on ln until Shutdown. Slow clients are cut
// off by the header and body read timeouts. Responses have no overall
// write timeout because event streams last as long as sampling does, so
// each event write gets its own deadline instead.
func (s *Server) Serve(ln net.Listener) error {
	srv := &http.Server{
		Handler:           s.mux,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       2 * time.Minute,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(slog.Default().Handler(), slog.LevelWarn),
	}
	s.mu.Lock()
	s.httpSrv = srv
	s.mu.Unlock()
	slog.Info("server started", "address", ln.Addr().String(), "text_model", s.models.TextPath,
		"backend", s.models.Text.Backend, "vq_model", s.models.VQPath, "tokenizer", s.models.TokenizerPath,
		"max_queue", s.cfg.MaxQueue, "max_batch", s.cfg.MaxBatch)
	err := srv.Serve(ln)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// Shutdown stops accepting requests, waits until every queued and
// running request has finished or ctx ends, then cancels what remains
// and returns which requests finished and which were cancelled. New
// requests meanwhile get 503.
func (s *Server) Shutdown(ctx context.Context) ShutdownReport {
	start := time.Now()
	s.closing.Store(true)
	queued, running := s.sched.depth()
	slog.Info("server stopping", "queued", queued, "running", running)

	s.mu.Lock()
	srv := s.httpSrv
	s.mu.Unlock()
	// http.Server.Shutdown closes the listeners at once and then waits
	// for every connection to go idle, which happens when the handlers of
	// admitted requests have written their results.
	httpDone := make(chan struct{})
	if srv != nil {
		go func() {
			defer close(httpDone)
			if err := srv.Shutdown(context.Background()); err != nil {
				slog.Error("http shutdown failed", "err", err)
			}
		}()
	} else {
		close(httpDone)
	}
	report := s.sched.drain(ctx)
	// Handlers of cancelled jobs need a moment to write their final
	// events; a connection still open after that is closed.
	select {
	case <-httpDone:
	case <-time.After(5 * time.Second):
		slog.Warn("closing connections that are still open after shutdown")
		srv.Close()
	}
	slog.Info("server stopped", "finished", report.Finished, "cancelled", report.Cancelled, "elapsed", time.Since(start))
	return report
}

// newID returns a request id unique within this process.
func (s *Server) newID() string {
	return fmt.Sprintf("r%06d", s.nextID.Add(1))
}
