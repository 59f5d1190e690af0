package serve

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"strings"

	"github.com/mmadac/mmadac/runtime/sampler"
)

// Limits bound what one request may ask for. They protect the server
// from requests that would hold the model for hours or exhaust memory.
// The sampler's own rules (divisibility of steps and lengths) are checked
// separately by its Validate methods.
type Limits struct {
	// MaxBodyBytes bounds a JSON request body.
	MaxBodyBytes int64
	// MaxImageBytes bounds the encoded image of an mmu request, and the
	// multipart body is allowed this much plus MaxBodyBytes.
	MaxImageBytes int64
	// MaxImagePixels bounds width*height of a decoded mmu image.
	MaxImagePixels int
	// MaxPromptBytes bounds the prompt text in bytes.
	MaxPromptBytes int
	// MaxSteps bounds text steps and t2i timesteps.
	MaxSteps int
	// MaxGenLength bounds gen_length.
	MaxGenLength int
	// MaxSequence bounds the prompt plus generated tokens of text and
	// mmu, and the whole t2i sequence.
	MaxSequence int
	// MaxGuidance bounds cfg_scale and guidance_scale.
	MaxGuidance float64
	// MaxTemperature bounds temperature.
	MaxTemperature float64
}

// DefaultLimits returns the limits used when the command line does not
// change them. They admit every upstream default (128 steps, 128 tokens,
// guidance 3.5) with room to spare.
func DefaultLimits() Limits {
	return Limits{
		MaxBodyBytes:   1 << 20,
		MaxImageBytes:  10 << 20,
		MaxImagePixels: 4096 * 4096,
		MaxPromptBytes: 64 << 10,
		MaxSteps:       1024,
		MaxGenLength:   1024,
		MaxSequence:    4096,
		MaxGuidance:    50,
		MaxTemperature: 100,
	}
}

// requestError is a failure the client can fix (HTTP 4xx). Field names
// the JSON field at fault, when there is one.
type requestError struct {
	Status  int
	Field   string
	Message string
}

func (e *requestError) Error() string { return e.Message }

// badField returns a 400 error about one field.
func badField(field, format string, args ...any) *requestError {
	return &requestError{Status: http.StatusBadRequest, Field: field, Message: fmt.Sprintf(format, args...)}
}

// badRequest returns a 400 error that concerns no single field.
func badRequest(format string, args ...any) *requestError {
	return &requestError{Status: http.StatusBadRequest, Message: fmt.Sprintf(format, args...)}
}

// textBody is the JSON body of POST /v1/text and the fields of
// POST /v1/mmu. Fields absent from the request keep the values that
// newTextBody sets, which are the CLI's defaults.
type textBody struct {
	Prompt      string  `json:"prompt"`
	PromptIDs   []int64 `json:"prompt_ids"`
	Steps       int     `json:"steps"`
	GenLength   int     `json:"gen_length"`
	BlockLength int     `json:"block_length"`
	Temperature float64 `json:"temperature"`
	CFGScale    float64 `json:"cfg_scale"`
	Remasking   string  `json:"remasking"`
	Seed        uint64  `json:"seed"`
	// Image is the base64 encoding of an image file (mmu only; it may
	// also be a data: URL).
	Image string `json:"image,omitempty"`
}

func newTextBody() textBody {
	d := sampler.DefaultTextParams(0)
	return textBody{
		Steps: d.Steps, GenLength: d.GenLength, BlockLength: d.BlockLength,
		Temperature: d.Temperature, CFGScale: d.CFGScale, Remasking: d.Remasking,
	}
}

// textFields lists the JSON fields of text requests, for error messages.
const textFields = "prompt, prompt_ids, steps, gen_length, block_length, temperature, cfg_scale, remasking, seed"

// params returns the sampler parameters of the body.
func (b textBody) params(maskID int64) sampler.TextParams {
	return sampler.TextParams{
		Steps: b.Steps, GenLength: b.GenLength, BlockLength: b.BlockLength,
		Temperature: b.Temperature, CFGScale: b.CFGScale, Remasking: b.Remasking, MaskID: maskID,
	}
}

// validate checks the body against the limits and the sampler's rules,
// before the prompt is tokenized.
func (b textBody) validate(lim Limits) error {
	if err := checkPromptFields(b.Prompt, b.PromptIDs, lim); err != nil {
		return err
	}
	switch {
	case b.Steps > lim.MaxSteps:
		return badField("steps", "steps must be at most %d, got %d", lim.MaxSteps, b.Steps)
	case b.GenLength > lim.MaxGenLength:
		return badField("gen_length", "gen_length must be at most %d, got %d", lim.MaxGenLength, b.GenLength)
	case b.Temperature > lim.MaxTemperature:
		return badField("temperature", "temperature must be at most %g, got %g", lim.MaxTemperature, b.Temperature)
	case b.CFGScale > lim.MaxGuidance:
		return badField("cfg_scale", "cfg_scale must be at most %g, got %g", lim.MaxGuidance, b.CFGScale)
	}
	return samplerError(b.params(0).Validate())
}

// t2iBody is the JSON body of POST /v1/t2i.
type t2iBody struct {
	Prompt        string  `json:"prompt"`
	PromptIDs     []int64 `json:"prompt_ids"`
	GuidanceScale float64 `json:"guidance_scale"`
	Timesteps     int     `json:"timesteps"`
	Temperature   float64 `json:"temperature"`
	Seed          uint64  `json:"seed"`
}

// t2iFields lists the JSON fields of t2i requests, for error messages.
const t2iFields = "prompt, prompt_ids, guidance_scale, timesteps, temperature, seed"

func (b t2iBody) validate(lim Limits) error {
	if err := checkPromptFields(b.Prompt, b.PromptIDs, lim); err != nil {
		return err
	}
	switch {
	case b.Timesteps <= 0:
		return badField("timesteps", "timesteps must be positive, got %d", b.Timesteps)
	case b.Timesteps > lim.MaxSteps:
		return badField("timesteps", "timesteps must be at most %d, got %d", lim.MaxSteps, b.Timesteps)
	case b.GuidanceScale < 0:
		return badField("guidance_scale", "guidance_scale must be >= 0, got %g", b.GuidanceScale)
	case b.GuidanceScale > lim.MaxGuidance:
		return badField("guidance_scale", "guidance_scale must be at most %g, got %g", lim.MaxGuidance, b.GuidanceScale)
	case b.Temperature < 0:
		return badField("temperature", "temperature must be >= 0, got %g", b.Temperature)
	case b.Temperature > lim.MaxTemperature:
		return badField("temperature", "temperature must be at most %g, got %g", lim.MaxTemperature, b.Temperature)
	}
	return nil
}

// checkPromptFields requires exactly one of prompt and prompt_ids.
func checkPromptFields(prompt string, ids []int64, lim Limits) error {
	switch {
	case prompt == "" && len(ids) == 0:
		return badField("prompt", "the request has neither prompt nor prompt_ids; send one of them")
	case prompt != "" && len(ids) > 0:
		return badField("prompt", "the request has both prompt and prompt_ids; send only one")
	case len(prompt) > lim.MaxPromptBytes:
		return badField("prompt", "prompt has %d bytes, more than the limit of %d", len(prompt), lim.MaxPromptBytes)
	case len(ids) > lim.MaxSequence:
		return badField("prompt_ids", "prompt_ids has %d tokens, more than the limit of %d", len(ids), lim.MaxSequence)
	}
	return nil
}

// checkIDs requires every prompt id to lie in the model's vocabulary.
func checkIDs(ids []int64, vocab int64) error {
	for i, id := range ids {
		if id < 0 || id >= vocab {
			return badField("prompt_ids", "prompt_ids[%d] = %d is outside the vocabulary [0, %d)", i, id, vocab)
		}
	}
	return nil
}

// samplerFields are the JSON names that the sampler's Validate messages
// start with; samplerError uses them to name the field.
var samplerFields = []string{"steps", "gen_length", "block_length", "temperature", "cfg_scale", "remasking", "timesteps", "guidance_scale"}

// samplerError turns an error of TextParams.Validate or T2IParams.Validate
// into a 400 naming the field its message starts with. Those messages
// start with the field's JSON name, which keeps the server's wording
// identical to the CLI's.
func samplerError(err error) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	for _, f := range samplerFields {
		if strings.HasPrefix(msg, f+" ") {
			return badField(f, "%s", msg)
		}
	}
	return badRequest("%s", msg)
}

// decodeJSON reads a JSON request body of at most limit bytes into dst.
// Unknown fields are rejected so that a misspelt parameter does not
// silently fall back to its default.
func decodeJSON(r io.Reader, limit int64, dst any, fields string) error {
	lr := &io.LimitedReader{R: r, N: limit + 1}
	dec := json.NewDecoder(lr)
	dec.DisallowUnknownFields()
	err := dec.Decode(dst)
	if lr.N <= 0 {
		return &requestError{Status: http.StatusRequestEntityTooLarge, Message: fmt.Sprintf("request body is larger than the limit of %d bytes", limit)}
	}
	if err != nil {
		return jsonError(err, fields)
	}
	if dec.More() {
		return badRequest("request body holds more than one JSON value")
	}
	return nil
}

// jsonError turns an encoding/json error into a 400 that names the field.
func jsonError(err error, fields string) error {
	var typeErr *json.UnmarshalTypeError
	var syntaxErr *json.SyntaxError
	var netErr net.Error
	switch {
	case errors.As(err, &netErr) && netErr.Timeout():
		return &requestError{Status: http.StatusRequestTimeout, Message: "reading the request body timed out; send it in one go"}
	case errors.As(err, &typeErr):
		// Fields of the embedded textBody come as "textBody.steps"; the
		// client knows them by their JSON name alone.
		field := typeErr.Field
		if i := strings.LastIndexByte(field, '.'); i >= 0 {
			field = field[i+1:]
		}
		if field == "" {
			return badRequest("request body must be a JSON object, got a JSON %s", typeErr.Value)
		}
		return badField(field, "%s must be a JSON %s, got a JSON %s", field, jsonKind(typeErr.Type.Kind().String()), typeErr.Value)
	case errors.As(err, &syntaxErr):
		return badRequest("request body is not valid JSON at byte %d: %v", syntaxErr.Offset, err)
	case errors.Is(err, io.EOF):
		return badRequest("request body is empty; send a JSON object with %s", fields)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return badRequest("request body ends in the middle of a JSON value")
	}
	if name, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		name = strings.Trim(name, `"`)
		return badField(name, "unknown field %q; the fields of this endpoint are %s", name, fields)
	}
	return badRequest("request body: %v", err)
}

// jsonKind names a Go kind as the JSON type a client has to send.
func jsonKind(kind string) string {
	switch kind {
	case "int", "int64", "uint64", "float64":
		return "number (" + kind + ")"
	case "slice":
		return "array"
	}
	return kind
}

// finite replaces a non-finite float, which JSON cannot carry, with 0.
func finite(v float64) float64 {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return 0
	}
	return v
}
