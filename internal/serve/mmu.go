package serve

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	_ "image/gif" // registers GIF for image.DecodeConfig
	_ "image/jpeg"
	_ "image/png"
	"io"
	"log/slog"
	"mime"
	"mime/multipart"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/mmadac/mmadac/frontend/imageio"
	"github.com/mmadac/mmadac/frontend/prompt"
	"github.com/mmadac/mmadac/ir"
)

// mmuBody is the request of POST /v1/mmu: the text parameters plus the
// image.
type mmuBody struct {
	textBody
	// Image is the image file in base64, optionally as a data: URL. A
	// multipart request sends it as the file part "image" instead.
	Image string `json:"image"`
	// Squash resizes the image straight to the model's resolution
	// instead of resizing its shorter side and cropping the centre.
	Squash bool `json:"squash"`
}

const mmuFields = textFields + ", image, squash"

// mmuImage is the image of an mmu job, preprocessed in the handler and
// encoded to codes by the worker.
type mmuImage struct {
	// pixels are f32 [1, 3, R, R] in [-1, 1].
	pixels *ir.Tensor
	// tokens is the number of image codes the encoder returns.
	tokens int
	// question is the prompt part after the image.
	question []int64
}

// promptLength is <|mmu|> <|soi|> codes <|eoi|> then the question.
func (m *mmuImage) promptLength() int { return 3 + m.tokens + len(m.question) }

func (s *Server) handleMMU(w http.ResponseWriter, r *http.Request) {
	l := &requestLog{id: s.newID(), kind: "mmu", start: time.Now()}
	defer l.emit()
	w.Header().Set("X-Request-Id", l.id)
	if s.models.VQ == nil {
		s.fail(w, l, &requestError{Status: http.StatusNotImplemented, Message: "this server has no image tokenizer loaded, so it cannot run mmu; start mmadac serve with --vq-model"})
		return
	}
	body, data, err := s.readMMU(r)
	if err != nil {
		s.fail(w, l, err)
		return
	}
	l.params = append(body.logParams(), "image_bytes", len(data), "squash", body.Squash)
	img, err := s.preprocessImage(data, body.Squash)
	if err != nil {
		s.fail(w, l, err)
		return
	}
	work, err := s.prepareText(body.textBody, img)
	if err != nil {
		s.fail(w, l, err)
		return
	}
	j := &job{id: l.id, kind: "mmu", key: work.batchKey(), text: work}
	s.runJob(w, r, j, l, textEventCap(work.params))
}

// readMMU reads an mmu request, JSON with a base64 image or
// multipart/form-data with an "image" file part, and returns the body
// and the image file's bytes. Nothing is written to disk: multipart
// parts are read into memory within the limits.
func (s *Server) readMMU(r *http.Request) (mmuBody, []byte, error) {
	lim := s.cfg.Limits
	body := mmuBody{textBody: newTextBody()}
	mediaType, params, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if mediaType == "multipart/form-data" {
		data, err := s.readMultipart(r, params["boundary"], &body)
		return body, data, err
	}
	// base64 makes 4 bytes of every 3.
	limit := lim.MaxBodyBytes + lim.MaxImageBytes/3*4 + 4
	if err := decodeJSON(r.Body, limit, &body, mmuFields); err != nil {
		return body, nil, err
	}
	if body.Image == "" {
		return body, nil, badField("image", "the request has no image; send it as base64 in image or as the file part image of a multipart/form-data request")
	}
	encoded := body.Image
	if rest, ok := strings.CutPrefix(encoded, "data:"); ok {
		_, after, found := strings.Cut(rest, ",")
		if !found {
			return body, nil, badField("image", "image is a data: URL without a comma before its data")
		}
		encoded = after
	}
	data, err := base64.StdEncoding.DecodeString(encoded)
	if err != nil {
		return body, nil, badField("image", "image is not valid base64: %v", err)
	}
	body.Image = ""
	if int64(len(data)) > lim.MaxImageBytes {
		return body, nil, &requestError{Status: http.StatusRequestEntityTooLarge, Field: "image",
			Message: fmt.Sprintf("image has %d bytes, more than the limit of %d", len(data), lim.MaxImageBytes)}
	}
	return body, data, nil
}

// readMultipart reads the parts of a multipart mmu request: the file
// part "image", and the parameters as text parts named like the JSON
// fields.
func (s *Server) readMultipart(r *http.Request, boundary string, body *mmuBody) ([]byte, error) {
	lim := s.cfg.Limits
	if boundary == "" {
		return nil, badRequest("multipart/form-data request without a boundary parameter")
	}
	mr := multipart.NewReader(io.LimitReader(r.Body, lim.MaxBodyBytes+lim.MaxImageBytes+64<<10), boundary)
	var image []byte
	fields := map[string]json.RawMessage{}
	fieldBytes := int64(0)
	for {
		part, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, badRequest("reading the multipart body failed: %v", err)
		}
		name := part.FormName()
		if name == "image" {
			image, err = io.ReadAll(io.LimitReader(part, lim.MaxImageBytes+1))
			if err != nil {
				return nil, badField("image", "reading the image part failed: %v", err)
			}
			if int64(len(image)) > lim.MaxImageBytes {
				return nil, &requestError{Status: http.StatusRequestEntityTooLarge, Field: "image",
					Message: fmt.Sprintf("image is larger than the limit of %d bytes", lim.MaxImageBytes)}
			}
			continue
		}
		value, err := io.ReadAll(io.LimitReader(part, lim.MaxBodyBytes-fieldBytes+1))
		if err != nil {
			return nil, badField(name, "reading the part %s failed: %v", name, err)
		}
		fieldBytes += int64(len(value))
		if fieldBytes > lim.MaxBodyBytes {
			return nil, &requestError{Status: http.StatusRequestEntityTooLarge, Message: fmt.Sprintf("the form fields are larger than the limit of %d bytes", lim.MaxBodyBytes)}
		}
		raw, err := formValueJSON(name, string(value))
		if err != nil {
			return nil, err
		}
		fields[name] = raw
	}
	if image == nil {
		return nil, badField("image", "the multipart request has no file part named image")
	}
	data, err := json.Marshal(fields)
	if err != nil {
		return nil, err
	}
	if err := decodeJSON(bytes.NewReader(data), int64(len(data)), body, mmuFields); err != nil {
		return nil, err
	}
	return image, nil
}

// formValueJSON converts a form field to the JSON value the JSON body
// would carry, so that both request forms share one decoder and one set
// of error messages. prompt_ids may be a JSON list or ids separated by
// commas or spaces.
func formValueJSON(name, value string) (json.RawMessage, error) {
	switch name {
	case "prompt", "remasking", "image":
		return json.Marshal(value)
	case "prompt_ids":
		v := strings.TrimSpace(value)
		if strings.HasPrefix(v, "[") {
			return json.RawMessage(v), nil
		}
		var ids []int64
		for _, f := range strings.FieldsFunc(v, func(r rune) bool { return r == ',' || r == ' ' || r == '\n' || r == '\t' }) {
			id, err := strconv.ParseInt(f, 10, 64)
			if err != nil {
				return nil, badField("prompt_ids", "prompt_ids: %q is not an integer token id", f)
			}
			ids = append(ids, id)
		}
		return json.Marshal(ids)
	}
	v := strings.TrimSpace(value)
	if json.Valid([]byte(v)) {
		return json.RawMessage(v), nil
	}
	// Not JSON: let the decoder report the field's expected type.
	return json.Marshal(value)
}

// preprocessImage decodes an image file and turns it into the encoder's
// input at the model's resolution. The dimensions are checked from the
// header before the pixels are decoded, so a small file that claims a
// huge image is rejected cheaply.
func (s *Server) preprocessImage(data []byte, squash bool) (*mmuImage, error) {
	cfg, format, err := image.DecodeConfig(bytes.NewReader(data))
	if err != nil {
		return nil, badField("image", "image is not a PNG, JPEG or GIF file: %v", err)
	}
	if cfg.Width <= 0 || cfg.Height <= 0 || cfg.Width*cfg.Height > s.cfg.Limits.MaxImagePixels {
		return nil, badField("image", "image is %dx%d pixels; at most %d pixels are accepted", cfg.Width, cfg.Height, s.cfg.Limits.MaxImagePixels)
	}
	img, err := imageio.DecodeBytes(data)
	if err != nil {
		return nil, badField("image", "decoding the %s image failed: %v", format, err)
	}
	tokens, side := s.imageGrid()
	pixels, err := imageio.Preprocess(img, side*s.models.VQ.Config.Encoder.Factor(), squash)
	if err != nil {
		return nil, badField("image", "preprocessing the image failed: %v", err)
	}
	return &mmuImage{pixels: pixels, tokens: tokens}, nil
}

// imageGrid returns the number of image tokens of the text model and the
// side of their square grid.
func (s *Server) imageGrid() (tokens, side int) {
	n := numImageTokens(s.models.Text.Config.NumVQTokens)
	side = 1
	for side*side < n {
		side++
	}
	return n, side
}

// encodeImages encodes the images of the batch's mmu jobs with one
// encoder call and completes their prompts.
func (s *Server) encodeImages(ctx context.Context, batch []*job) error {
	var mmu []*job
	for _, j := range batch {
		if j.text.image != nil {
			mmu = append(mmu, j)
		}
	}
	if len(mmu) == 0 {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	first := mmu[0].text.image.pixels
	plane := len(first.F32())
	pixels := ir.NewTensor(ir.F32, int64(len(mmu)), first.Shape[1], first.Shape[2], first.Shape[3])
	for b, j := range mmu {
		copy(pixels.F32()[b*plane:], j.text.image.pixels.F32())
	}
	start := time.Now()
	_, codes, err := s.models.VQ.Encode(pixels)
	if err != nil {
		return fmt.Errorf("encoding the image failed: %w", err)
	}
	n := int(codes.Shape[1])
	for b, j := range mmu {
		img := j.text.image
		if n != img.tokens {
			return fmt.Errorf("the image encoder returned %d codes, the text model expects %d (num_vq_tokens)", n, img.tokens)
		}
		j.text.prompt = prompt.MMU(codes.I64()[b*n:(b+1)*n], s.sp, img.question)
	}
	slog.Debug("images encoded", "images", len(mmu), "elapsed", time.Since(start))
	return nil
}
