package serve

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/mmadac/mmadac/frontend/tokenizer"
	"github.com/mmadac/mmadac/internal/engine"
)

// The small checkpoints of the repository, used when `mmadac serve` runs
// from the repository root without --model.
const (
	defaultModel   = "testdata/upstream-tiny/mmada"
	defaultVQModel = "testdata/upstream-tiny/magvit"
)

// Options are the flags of `mmadac serve`.
type Options struct {
	Model           string
	VQModel         string
	Tokenizer       string
	Backend         string
	Listen          string
	ShutdownTimeout time.Duration
	Config          Config
}

// NewCommand returns the `serve` command.
func NewCommand() *cobra.Command {
	o := &Options{Config: DefaultConfig()}
	cmd := &cobra.Command{
		Use:   "serve [--model DIR] [--vq-model DIR] [--listen 127.0.0.1:8080]",
		Short: "Serve the samplers over HTTP, with a live web page of the unmasking",
		Long: `serve loads a model once and answers POST /v1/text, /v1/mmu and /v1/t2i
(JSON, or a text/event-stream of step events with Accept: text/event-stream),
GET /v1/health and GET /v1/models, and the demo page at /.

Requests with the same parameters and prompt length are batched into one
sampler call (up to --max-batch); a request returns the same result batched
or alone. Up to --max-queue requests wait; more get 429. On SIGINT or SIGTERM
the server stops accepting requests, lets queued and running ones finish for
up to --shutdown-timeout, cancels the rest and logs which ended how.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			o.resolveDefaults(cmd)
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return Run(ctx, o)
		},
	}
	f := cmd.Flags()
	c := &o.Config
	f.StringVar(&o.Model, "model", defaultModel, "text model: checkpoint folder or bundle")
	f.StringVar(&o.VQModel, "vq-model", "", "image tokenizer checkpoint folder; enables mmu and t2i (default "+defaultVQModel+" when --model is not given, else none)")
	f.StringVar(&o.Tokenizer, "tokenizer", "", "tokenizer.json for prompt text (default: tokenizer.json in the --model folder, when present)")
	f.StringVar(&o.Backend, "backend", engine.BackendAuto, "auto, interp or ort")
	f.StringVar(&o.Listen, "listen", "127.0.0.1:8080", "address to listen on; the default accepts local connections only")
	f.DurationVar(&o.ShutdownTimeout, "shutdown-timeout", 30*time.Second, "on SIGTERM, how long queued and running requests may take before they are cancelled")
	f.IntVar(&c.MaxQueue, "max-queue", c.MaxQueue, "requests that may wait for the model; more are answered 429")
	f.IntVar(&c.MaxBatch, "max-batch", c.MaxBatch, "most requests run as one batched sampler call")
	f.DurationVar(&c.RequestTimeout, "request-timeout", c.RequestTimeout, "longest time a request may take, queueing included (answered 504)")
	f.IntVar(&c.PreviewEvery, "preview-every", c.PreviewEvery, "send a t2i preview image every this many steps (0: none)")
	f.IntVar(&c.T2ITextLength, "t2i-text-length", c.T2ITextLength, "caption length of t2i prompts in tokens (upstream max_text_len; 512 for MMaDA-8B)")
	l := &c.Limits
	f.Int64Var(&l.MaxBodyBytes, "max-body-bytes", l.MaxBodyBytes, "largest JSON request body in bytes")
	f.Int64Var(&l.MaxImageBytes, "max-image-bytes", l.MaxImageBytes, "largest mmu image file in bytes")
	f.IntVar(&l.MaxImagePixels, "max-image-pixels", l.MaxImagePixels, "largest mmu image in pixels (width times height)")
	f.IntVar(&l.MaxSteps, "max-steps", l.MaxSteps, "largest steps (text) and timesteps (t2i) a request may ask for")
	f.IntVar(&l.MaxGenLength, "max-gen-length", l.MaxGenLength, "largest gen_length a request may ask for")
	f.IntVar(&l.MaxSequence, "max-sequence", l.MaxSequence, "most tokens of prompt plus generated text, and of a t2i sequence")
	f.Float64Var(&l.MaxGuidance, "max-guidance", l.MaxGuidance, "largest cfg_scale and guidance_scale a request may ask for")
	return cmd
}

// resolveDefaults applies the defaults that depend on other flags.
func (o *Options) resolveDefaults(cmd *cobra.Command) {
	if o.VQModel == "" && !cmd.Flags().Changed("model") && !cmd.Flags().Changed("vq-model") {
		o.VQModel = defaultVQModel
	}
	if o.Tokenizer == "" && !cmd.Flags().Changed("tokenizer") {
		candidate := filepath.Join(o.Model, tokenizer.FileName)
		if _, err := os.Stat(candidate); err == nil {
			o.Tokenizer = candidate
		}
	}
}

// Run loads the models, serves until ctx ends (the signal), then shuts
// down gracefully.
func Run(ctx context.Context, o *Options) error {
	models, err := LoadModels(o.Model, o.VQModel, o.Tokenizer, o.Backend)
	if err != nil {
		return err
	}
	defer models.Close()
	s, err := New(models, o.Config)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", o.Listen)
	if err != nil {
		return fmt.Errorf("listening on %s failed: %w; pick another address with --listen", o.Listen, err)
	}
	if host, _, err := net.SplitHostPort(ln.Addr().String()); err == nil {
		if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
			slog.Warn("listening on a non-loopback address: the API has no authentication", "address", ln.Addr().String())
		}
	}
	served := make(chan error, 1)
	go func() { served <- s.Serve(ln) }()
	select {
	case err := <-served:
		// Serve only returns early when accepting fails.
		s.Shutdown(context.Background())
		return err
	case <-ctx.Done():
	}
	slog.Info("signal received; shutting down", "grace", o.ShutdownTimeout)
	sctx, cancel := context.WithTimeout(context.Background(), o.ShutdownTimeout)
	defer cancel()
	s.Shutdown(sctx)
	return <-served
}

// LoadModels loads the text model and, when their paths are not empty,
// the image tokenizer and the text tokenizer.
func LoadModels(model, vqModel, tokenizerPath, backend string) (Models, error) {
	start := time.Now()
	m := Models{TextPath: model, VQPath: vqModel, TokenizerPath: tokenizerPath}
	text, err := engine.LoadModel(model, backend)
	if err != nil {
		return m, fmt.Errorf("loading the text model: %w", err)
	}
	m.Text = text
	if vqModel != "" {
		vq, err := engine.LoadVQ(vqModel, backend)
		if err != nil {
			m.Close()
			return m, fmt.Errorf("loading the vq model: %w", err)
		}
		m.VQ = vq
	}
	if tokenizerPath != "" {
		tok, err := tokenizer.Load(tokenizerPath)
		if err != nil {
			m.Close()
			return m, fmt.Errorf("loading the tokenizer: %w", err)
		}
		m.Tokenizer = tok
	}
	slog.Info("models loaded", "text", model, "backend", text.Backend, "vq", vqModel, "tokenizer", tokenizerPath, "elapsed", time.Since(start))
	return m, nil
}

// Close releases the loaded models.
func (m Models) Close() error {
	var errs []error
	if m.Text != nil {
		errs = append(errs, m.Text.Close())
	}
	if m.VQ != nil {
		errs = append(errs, m.VQ.Close())
	}
	return errors.Join(errs...)
}
