package serve

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"net/http"
	"slices"
	"testing"
)

// decodePNG decodes a base64 PNG and returns its size.
func decodePNG(t *testing.T, b64 string) (width, height int) {
	t.Helper()
	data, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		t.Fatalf("png is not base64: %v", err)
	}
	img, err := png.Decode(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("png does not decode: %v", err)
	}
	return img.Bounds().Dx(), img.Bounds().Dy()
}

func TestT2IResult(t *testing.T) {
	s := newServer(t, tinyModels(t), nil)
	ts := startServer(t, s)
	c := goldenCaseNamed(t, "t2i", "cfg")
	body := map[string]any{"prompt_ids": c.TextIDs[0], "timesteps": 6, "guidance_scale": 3.5, "seed": 7}
	resp := post(t, context.Background(), ts.URL+"/v1/t2i", body, false)
	var got t2iResult
	decodeBody(t, resp, &got)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if len(got.Codes) != 16 {
		t.Fatalf("%d codes, want 16", len(got.Codes))
	}
	for i, code := range got.Codes {
		if code < 0 || code >= 64 {
			t.Errorf("code %d = %d is outside the codebook [0, 64)", i, code)
		}
	}
	if w, h := decodePNG(t, got.PNG); w != 16 || h != 16 || got.Width != 16 || got.Height != 16 {
		t.Errorf("image %dx%d (reported %dx%d), want 16x16", w, h, got.Width, got.Height)
	}

	// The same seed gives the same codes.
	resp = post(t, context.Background(), ts.URL+"/v1/t2i", body, false)
	var again t2iResult
	decodeBody(t, resp, &again)
	if !slices.Equal(again.Codes, got.Codes) {
		t.Errorf("seed 7 gave %v, then %v", got.Codes, again.Codes)
	}
}

func TestT2IStreamEvents(t *testing.T) {
	s := newServer(t, tinyModels(t), func(c *Config) { c.PreviewEvery = 2 })
	ts := startServer(t, s)
	c := goldenCaseNamed(t, "t2i", "no-cfg")
	body := map[string]any{"prompt_ids": c.TextIDs[0], "timesteps": 5, "guidance_scale": 0}
	resp := post(t, context.Background(), ts.URL+"/v1/t2i", body, true)
	events := readEvents(t, resp.Body)
	resp.Body.Close()

	var names []string
	for _, ev := range events {
		names = append(names, ev.Name)
	}
	// Previews after steps 2 and 4; the image after step 5 is the result.
	want := []string{"queued", "start", "step", "step", "preview", "step", "step", "preview", "step", "result"}
	if !slices.Equal(names, want) {
		t.Fatalf("events %v, want %v", names, want)
	}
	var start t2iStart
	if err := json.Unmarshal(events[1].Data, &start); err != nil {
		t.Fatal(err)
	}
	// The layout of the golden case: 17 caption tokens, <|soi|>, 16
	// masked positions, <|eoi|>.
	if !slices.Equal(start.PromptIDs, c.InputIDs[0]) {
		t.Errorf("prompt ids %v\nwant %v", start.PromptIDs, c.InputIDs[0])
	}
	if start.Grid != [2]int{4, 4} || start.NumImageTokens != 16 {
		t.Errorf("grid %v with %d tokens, want 4x4 with 16", start.Grid, start.NumImageTokens)
	}
	lastMasked := 16
	for _, ev := range events {
		switch ev.Name {
		case "step":
			var st t2iStep
			if err := json.Unmarshal(ev.Data, &st); err != nil {
				t.Fatal(err)
			}
			if st.Masked > lastMasked {
				t.Errorf("step %d: %d masked, more than the %d before", st.Step, st.Masked, lastMasked)
			}
			lastMasked = st.Masked
		case "preview":
			var pv t2iPreview
			if err := json.Unmarshal(ev.Data, &pv); err != nil {
				t.Fatal(err)
			}
			if w, h := decodePNG(t, pv.PNG); w != 16 || h != 16 {
				t.Errorf("preview after step %d is %dx%d", pv.Step, w, h)
			}
			if pv.Masked != lastMasked {
				t.Errorf("preview after step %d reports %d masked, the step %d", pv.Step, pv.Masked, lastMasked)
			}
		}
	}
	if lastMasked != 0 {
		t.Errorf("%d positions masked after the last step", lastMasked)
	}
}

func TestGreyMaskedPaintsPatches(t *testing.T) {
	img := image.NewRGBA(image.Rect(0, 0, 16, 16))
	draw.Draw(img, img.Bounds(), image.NewUniform(color.RGBA{10, 200, 30, 255}), image.Point{}, draw.Src)
	masked := make([]bool, 16)
	masked[5] = true // grid row 1, column 1: pixels [4, 8) x [4, 8)
	greyMasked(img, masked, [2]int{4, 4})
	for y := range 16 {
		for x := range 16 {
			r, g, b, _ := img.At(x, y).RGBA()
			inPatch := x >= 4 && x < 8 && y >= 4 && y < 8
			grey := r>>8 == 128 && g>>8 == 128 && b>>8 == 128
			if inPatch != grey {
				t.Fatalf("pixel (%d, %d): grey %v, in the masked patch %v", x, y, grey, inPatch)
			}
		}
	}
}
