package serve

import (
	"context"
	"net/http"
	"strings"
	"testing"
)

func TestValidationErrorsNameTheField(t *testing.T) {
	s := newServer(t, tinyModels(t), func(c *Config) {
		c.Limits.MaxBodyBytes = 4096
		c.Limits.MaxPromptBytes = 2048
		c.Limits.MaxSequence = 512
	})
	ts := startServer(t, s)
	ids := []int64{115, 3, 109}
	for _, tc := range []struct {
		name, path string
		body       any
		status     int
		field      string
		contains   string
	}{
		{"steps zero", "/v1/text", map[string]any{"prompt_ids": ids, "steps": 0}, 400, "steps", "positive"},
		{"steps over the limit", "/v1/text", map[string]any{"prompt_ids": ids, "steps": 5000}, 400, "steps", "at most 1024"},
		{"gen_length over the limit", "/v1/text", map[string]any{"prompt_ids": ids, "gen_length": 2048, "block_length": 2048, "steps": 8}, 400, "gen_length", "at most"},
		{"gen_length not a multiple", "/v1/text", map[string]any{"prompt_ids": ids, "gen_length": 10, "block_length": 3, "steps": 10}, 400, "gen_length", "multiple"},
		{"steps not divisible", "/v1/text", map[string]any{"prompt_ids": ids, "gen_length": 16, "block_length": 8, "steps": 5}, 400, "steps", "divisible"},
		{"block_length zero", "/v1/text", map[string]any{"prompt_ids": ids, "block_length": 0}, 400, "block_length", "positive"},
		{"negative temperature", "/v1/text", map[string]any{"prompt_ids": ids, "temperature": -1}, 400, "temperature", ">= 0"},
		{"cfg_scale over the limit", "/v1/text", map[string]any{"prompt_ids": ids, "cfg_scale": 100}, 400, "cfg_scale", "at most"},
		{"negative cfg_scale", "/v1/text", map[string]any{"prompt_ids": ids, "cfg_scale": -1}, 400, "cfg_scale", ">= 0"},
		{"remasking unknown", "/v1/text", map[string]any{"prompt_ids": ids, "remasking": "best"}, 400, "remasking", "low_confidence or random"},
		{"unknown field", "/v1/text", map[string]any{"prompt_ids": ids, "guidance": 2}, 400, "guidance", "unknown field"},
		{"t2i field on text", "/v1/text", map[string]any{"prompt_ids": ids, "timesteps": 2}, 400, "timesteps", "unknown field"},
		{"id outside the vocabulary", "/v1/text", map[string]any{"prompt_ids": []int64{1, 320}}, 400, "prompt_ids", "vocabulary"},
		{"negative id", "/v1/text", map[string]any{"prompt_ids": []int64{-1}}, 400, "prompt_ids", "vocabulary"},
		{"no prompt", "/v1/text", map[string]any{"steps": 4}, 400, "prompt", "prompt_ids"},
		{"both prompts", "/v1/text", map[string]any{"prompt": "hi", "prompt_ids": ids}, 400, "prompt", "only one"},
		{"prompt text without tokenizer", "/v1/text", map[string]any{"prompt": "hi"}, 400, "prompt", "send prompt_ids"},
		{"prompt too long", "/v1/text", map[string]any{"prompt": strings.Repeat("x", 3000)}, 400, "prompt", "limit of 2048"},
		{"sequence too long", "/v1/text", map[string]any{"prompt_ids": make([]int64, 400), "gen_length": 128}, 400, "gen_length", "limit of 512"},
		{"prompt_ids too long", "/v1/text", map[string]any{"prompt_ids": make([]int64, 600)}, 400, "prompt_ids", "limit of 512"},
		{"steps is a string", "/v1/text", `{"prompt_ids": [1], "steps": "ten"}`, 400, "steps", "number"},
		{"prompt_ids not a list", "/v1/text", `{"prompt_ids": 5}`, 400, "prompt_ids", "array"},
		{"seed negative", "/v1/text", `{"prompt_ids": [1], "seed": -1}`, 400, "seed", "number"},
		{"not JSON", "/v1/text", `steps=4`, 400, "", "not valid JSON"},
		{"empty body", "/v1/text", ``, 400, "", "empty"},
		{"two JSON values", "/v1/text", `{"prompt_ids": [1]} {}`, 400, "", "more than one"},
		{"JSON array", "/v1/text", `[1, 2]`, 400, "", "JSON object"},
		{"body too large", "/v1/text", `{"prompt_ids": [` + strings.Repeat("1,", 3000) + `1]}`, 413, "", "larger than the limit"},
		{"timesteps zero", "/v1/t2i", map[string]any{"prompt_ids": ids, "timesteps": 0}, 400, "timesteps", "positive"},
		{"timesteps over the limit", "/v1/t2i", map[string]any{"prompt_ids": ids, "timesteps": 5000}, 400, "timesteps", "at most"},
		{"negative guidance", "/v1/t2i", map[string]any{"prompt_ids": ids, "guidance_scale": -0.5}, 400, "guidance_scale", ">= 0"},
		{"guidance over the limit", "/v1/t2i", map[string]any{"prompt_ids": ids, "guidance_scale": 51}, 400, "guidance_scale", "at most"},
		{"t2i temperature negative", "/v1/t2i", map[string]any{"prompt_ids": ids, "temperature": -1}, 400, "temperature", ">= 0"},
		{"t2i temperature over the limit", "/v1/t2i", map[string]any{"prompt_ids": ids, "temperature": 1000}, 400, "temperature", "at most"},
		{"text field on t2i", "/v1/t2i", map[string]any{"prompt_ids": ids, "steps": 4}, 400, "steps", "unknown field"},
		{"t2i prompt without tokenizer", "/v1/t2i", map[string]any{"prompt": "a cat"}, 400, "prompt", "send prompt_ids"},
		{"t2i id outside the vocabulary", "/v1/t2i", map[string]any{"prompt_ids": []int64{999}}, 400, "prompt_ids", "vocabulary"},
	} {
		resp := post(t, context.Background(), ts.URL+tc.path, tc.body, false)
		var got errorBody
		decodeBody(t, resp, &got)
		if resp.StatusCode != tc.status {
			t.Errorf("%s: status %d (%s), want %d", tc.name, resp.StatusCode, got.Error, tc.status)
		}
		if got.Field != tc.field {
			t.Errorf("%s: field %q (%s), want %q", tc.name, got.Field, got.Error, tc.field)
		}
		if !strings.Contains(got.Error, tc.contains) {
			t.Errorf("%s: error %q does not mention %q", tc.name, got.Error, tc.contains)
		}
		if got.Status != tc.status || got.ID == "" {
			t.Errorf("%s: error body status %d id %q", tc.name, got.Status, got.ID)
		}
	}
}

func TestWrongMethodAndPath(t *testing.T) {
	s := newServer(t, tinyModels(t), nil)
	ts := startServer(t, s)
	resp, err := http.Get(ts.URL + "/v1/text")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed || !strings.Contains(resp.Header.Get("Allow"), "POST") {
		t.Errorf("GET /v1/text: status %d Allow %q, want 405 allowing POST", resp.StatusCode, resp.Header.Get("Allow"))
	}
	resp, err = http.Get(ts.URL + "/v1/nothing")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET /v1/nothing: status %d, want 404", resp.StatusCode)
	}
}
