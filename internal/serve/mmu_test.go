package serve

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"mime/multipart"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
)

// mmuGolden returns the golden mmu case, the question part of its prompt
// (after <|eoi|>) and the image it was made from.
func mmuGolden(t *testing.T) (goldenCase, []int64, []byte) {
	t.Helper()
	c := goldenCaseNamed(t, "mmu", "mmu")
	prompt := c.PromptIDs[0]
	eoi := slices.Index(prompt, 245)
	if eoi < 0 {
		t.Fatal("golden mmu prompt has no <|eoi|>")
	}
	img, err := os.ReadFile("../../testdata/images/dog.png")
	if err != nil {
		t.Fatal(err)
	}
	return c, prompt[eoi+1:], img
}

// multipartBody builds a multipart/form-data body with an image part and
// text fields.
func multipartBody(t *testing.T, image []byte, fields map[string]string) (*bytes.Buffer, string) {
	t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	for k, v := range fields {
		if err := mw.WriteField(k, v); err != nil {
			t.Fatal(err)
		}
	}
	if image != nil {
		fw, err := mw.CreateFormFile("image", "dog.png")
		if err != nil {
			t.Fatal(err)
		}
		fw.Write(image)
	}
	if err := mw.Close(); err != nil {
		t.Fatal(err)
	}
	return &buf, mw.FormDataContentType()
}

func joinIDs(ids []int64) string {
	parts := make([]string, len(ids))
	for i, id := range ids {
		parts[i] = fmt.Sprint(id)
	}
	return strings.Join(parts, ",")
}

func TestMMUMultipartMatchesGolden(t *testing.T) {
	s := newServer(t, tinyModels(t), nil)
	ts := startServer(t, s)
	c, question, img := mmuGolden(t)
	fields := map[string]string{"prompt_ids": joinIDs(question)}
	for k, v := range c.Params {
		fields[k] = fmt.Sprint(v)
	}
	body, ct := multipartBody(t, img, fields)
	resp, err := http.Post(ts.URL+"/v1/mmu", ct, body)
	if err != nil {
		t.Fatal(err)
	}
	var got textResult
	decodeBody(t, resp, &got)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if !slices.Equal(got.IDs, c.ExpectedIDs[0]) {
		t.Errorf("ids %v\nwant %v", got.IDs, c.ExpectedIDs[0])
	}
}

func TestMMUBase64MatchesGolden(t *testing.T) {
	s := newServer(t, tinyModels(t), nil)
	ts := startServer(t, s)
	c, question, img := mmuGolden(t)
	body := textRequest(c)
	body["prompt_ids"] = question
	body["image"] = "data:image/png;base64," + base64.StdEncoding.EncodeToString(img)
	resp := post(t, context.Background(), ts.URL+"/v1/mmu", body, false)
	var got textResult
	decodeBody(t, resp, &got)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if !slices.Equal(got.IDs, c.ExpectedIDs[0]) {
		t.Errorf("ids %v\nwant %v", got.IDs, c.ExpectedIDs[0])
	}
}

func TestMMUImageErrors(t *testing.T) {
	s := newServer(t, tinyModels(t), func(c *Config) {
		c.Limits.MaxImageBytes = 70_000
		c.Limits.MaxImagePixels = 229 * 155
	})
	ts := startServer(t, s)
	_, question, img := mmuGolden(t)
	ids := joinIDs(question)
	big := make([]byte, 80_000)
	copy(big, img)
	for _, tc := range []struct {
		name   string
		image  []byte
		fields map[string]string
		status int
		field  string
	}{
		{"no image part", nil, map[string]string{"prompt_ids": ids}, 400, "image"},
		{"not an image", []byte("hello"), map[string]string{"prompt_ids": ids}, 400, "image"},
		{"image too large", big, map[string]string{"prompt_ids": ids}, 413, "image"},
		{"bad prompt id", img, map[string]string{"prompt_ids": "1,x"}, 400, "prompt_ids"},
		{"steps not a number", img, map[string]string{"prompt_ids": ids, "steps": "ten"}, 400, "steps"},
		{"unknown field", img, map[string]string{"prompt_ids": ids, "guidance": "2"}, 400, "guidance"},
		{"no prompt", img, map[string]string{}, 400, "prompt"},
	} {
		body, ct := multipartBody(t, tc.image, tc.fields)
		resp, err := http.Post(ts.URL+"/v1/mmu", ct, body)
		if err != nil {
			t.Fatal(err)
		}
		var got errorBody
		decodeBody(t, resp, &got)
		if resp.StatusCode != tc.status || got.Field != tc.field {
			t.Errorf("%s: status %d field %q (%s), want %d %q", tc.name, resp.StatusCode, got.Field, got.Error, tc.status, tc.field)
		}
	}

	// JSON requests: a missing image, bad base64, and an image whose
	// header claims more pixels than allowed.
	small := startServer(t, newServer(t, tinyModels(t), func(c *Config) { c.Limits.MaxImagePixels = 100 }))
	for _, tc := range []struct {
		name  string
		image string
	}{
		{"no image", ""},
		{"bad base64", "###"},
		{"data URL without comma", "data:image/png;base64"},
		{"too many pixels", base64.StdEncoding.EncodeToString(img)},
	} {
		resp := post(t, context.Background(), small.URL+"/v1/mmu", map[string]any{"prompt_ids": question, "image": tc.image}, false)
		var got errorBody
		decodeBody(t, resp, &got)
		if resp.StatusCode != 400 || got.Field != "image" {
			t.Errorf("%s: status %d field %q (%s), want 400 image", tc.name, resp.StatusCode, got.Field, got.Error)
		}
	}
}

func TestMMUWithoutVQModel(t *testing.T) {
	models := tinyModels(t)
	models.VQ = nil
	s := newServer(t, models, nil)
	ts := startServer(t, s)
	for _, path := range []string{"/v1/mmu", "/v1/t2i"} {
		resp := post(t, context.Background(), ts.URL+path, map[string]any{"prompt_ids": []int64{1}}, false)
		var got errorBody
		decodeBody(t, resp, &got)
		if resp.StatusCode != http.StatusNotImplemented || !strings.Contains(got.Error, "--vq-model") {
			t.Errorf("%s: status %d %q, want 501 naming --vq-model", path, resp.StatusCode, got.Error)
		}
	}
}

func TestMMUBatchEncodesTogether(t *testing.T) {
	s := newServer(t, tinyModels(t), nil)
	entered, release := gateModel(s)
	ts := startServer(t, s)
	c, question, img := mmuGolden(t)
	body := textRequest(c)
	body["prompt_ids"] = question
	body["image"] = base64.StdEncoding.EncodeToString(img)

	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		callText(t, ts.URL, map[string]any{"prompt_ids": []int64{1}, "steps": 2, "gen_length": 2, "block_length": 2})
	}()
	<-entered
	results := make([]textResult, 2)
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp := post(t, context.Background(), ts.URL+"/v1/mmu", body, false)
			decodeBody(t, resp, &results[i])
		}()
		waitFor(t, "the mmu request to queue", func() bool { return queued(s) == i+1 })
	}
	close(release)
	wg.Wait()
	for i, r := range results {
		if r.Batch != 2 {
			t.Errorf("mmu request %d ran in a batch of %d, want 2", i, r.Batch)
		}
		if !slices.Equal(r.IDs, c.ExpectedIDs[0]) {
			t.Errorf("mmu request %d: ids %v\nwant %v", i, r.IDs, c.ExpectedIDs[0])
		}
	}
}
