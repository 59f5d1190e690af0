package serve

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/mmadac/mmadac/frontend/tokenizer"
)

func TestTextMatchesGolden(t *testing.T) {
	s := newServer(t, tinyModels(t), nil)
	ts := startServer(t, s)
	ran := 0
	for _, c := range goldenCases(t) {
		// Cases with recorded noise replay uniforms that a seed cannot
		// reproduce, and the padded batch case has two rows.
		if c.Kind != "text" || c.Noise != "" || len(c.PromptIDs) != 1 {
			continue
		}
		ran++
		resp := post(t, context.Background(), ts.URL+"/v1/text", textRequest(c), false)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: status %d", c.Name, resp.StatusCode)
		}
		var got textResult
		decodeBody(t, resp, &got)
		if !slices.Equal(got.IDs, c.ExpectedIDs[0]) {
			t.Errorf("%s: ids %v, want %v", c.Name, got.IDs, c.ExpectedIDs[0])
		}
		if got.Text != nil {
			t.Errorf("%s: text %q without a tokenizer, want null", c.Name, *got.Text)
		}
		if got.PromptLength != len(c.PromptIDs[0]) {
			t.Errorf("%s: prompt_length %d, want %d", c.Name, got.PromptLength, len(c.PromptIDs[0]))
		}
	}
	if ran < 3 {
		t.Fatalf("only %d golden text cases ran", ran)
	}
}

func TestTextDefaultsAreTheCLIs(t *testing.T) {
	s := newServer(t, tinyModels(t), nil)
	ts := startServer(t, s)
	prompt := []int64{115, 3, 109}
	resp := post(t, context.Background(), ts.URL+"/v1/text", map[string]any{"prompt_ids": prompt}, false)
	var got textResult
	decodeBody(t, resp, &got)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	// The CLI's defaults: 128 tokens in one block of 128 steps.
	if len(got.IDs) != len(prompt)+128 {
		t.Errorf("%d ids, want the prompt plus 128", len(got.IDs))
	}
	if got.Steps != 128 {
		t.Errorf("steps %d, want 128", got.Steps)
	}
	if !slices.Equal(got.IDs[:3], prompt) {
		t.Errorf("ids start %v, want the prompt %v", got.IDs[:3], prompt)
	}
	if got.ID == "" || resp.Header.Get("X-Request-Id") != got.ID {
		t.Errorf("id %q, header X-Request-Id %q", got.ID, resp.Header.Get("X-Request-Id"))
	}
}

func TestTextStreamEvents(t *testing.T) {
	s := newServer(t, tinyModels(t), nil)
	ts := startServer(t, s)
	c := goldenCaseNamed(t, "text", "greedy-three-blocks") // 24 tokens, 3 blocks of 3 steps
	resp := post(t, context.Background(), ts.URL+"/v1/text", textRequest(c), true)
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("Content-Type %q", ct)
	}
	events := readEvents(t, resp.Body)
	var names []string
	for _, ev := range events {
		names = append(names, ev.Name)
	}
	want := []string{"queued", "start"}
	for range 9 {
		want = append(want, "step")
	}
	want = append(want, "result")
	if !slices.Equal(names, want) {
		t.Fatalf("events %v, want %v", names, want)
	}

	var start textStart
	if err := json.Unmarshal(events[1].Data, &start); err != nil {
		t.Fatal(err)
	}
	if start.GenLength != 24 || start.PromptLength != 12 || start.MaskID != 250 || start.Blocks != 3 {
		t.Errorf("start event %+v", start)
	}
	seq := slices.Clone(c.PromptIDs[0])
	for range 24 {
		seq = append(seq, start.MaskID)
	}
	for i, ev := range events[2:11] {
		var st textStep
		if err := json.Unmarshal(ev.Data, &st); err != nil {
			t.Fatal(err)
		}
		if st.Step != i+1 || st.Steps != 9 || st.Block != i/3+1 {
			t.Errorf("step event %d: step %d/%d block %d", i, st.Step, st.Steps, st.Block)
		}
		if len(st.Positions) != len(st.Tokens) || len(st.Positions) != len(st.Confidences) {
			t.Fatalf("step %d: %d positions, %d tokens, %d confidences", st.Step, len(st.Positions), len(st.Tokens), len(st.Confidences))
		}
		for k, pos := range st.Positions {
			lo, hi := 12+(st.Block-1)*8, 12+st.Block*8
			if pos < lo || pos >= hi {
				t.Errorf("step %d unmasks position %d outside its block [%d, %d)", st.Step, pos, lo, hi)
			}
			if seq[pos] != start.MaskID {
				t.Errorf("step %d unmasks position %d twice", st.Step, pos)
			}
			seq[pos] = st.Tokens[k]
		}
		if st.TokensPerSecond <= 0 {
			t.Errorf("step %d: tokens_per_second %g", st.Step, st.TokensPerSecond)
		}
	}
	var result textResult
	if err := json.Unmarshal(events[len(events)-1].Data, &result); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(result.IDs, c.ExpectedIDs[0]) {
		t.Errorf("result ids %v, want %v", result.IDs, c.ExpectedIDs[0])
	}
	if !slices.Equal(seq, result.IDs) {
		t.Errorf("the steps' tokens give %v, the result is %v", seq, result.IDs)
	}
}

// writeCharTokenizer writes a tokenizer.json whose tokens are single
// characters with ids below the tiny model's special tokens, and whose
// added tokens are the model's chat tokens.
func writeCharTokenizer(t *testing.T) string {
	t.Helper()
	vocab := map[string]int{}
	for c := ' '; c <= '~'; c++ {
		vocab[string(c)] = int(c) // ids 32..126
	}
	vocab["\n"] = 10
	added := []map[string]any{}
	for content, id := range map[string]int{"<|startoftext|>": 240, "<|endoftext|>": 241, "<|mdm_mask|>": 250,
		"<|start_header_id|>": 251, "<|end_header_id|>": 252, "<|eot_id|>": 254} {
		added = append(added, map[string]any{"id": id, "content": content, "special": true,
			"single_word": false, "lstrip": false, "rstrip": false, "normalized": false})
	}
	doc := map[string]any{
		"version": "1.0", "added_tokens": added, "normalizer": nil, "pre_tokenizer": nil, "post_processor": nil,
		"decoder": map[string]any{"type": "Fuse"},
		"model":   map[string]any{"type": "BPE", "vocab": vocab, "merges": []string{}},
	}
	data, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "tokenizer.json")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestTextPromptWithTokenizer(t *testing.T) {
	models := tinyModels(t)
	path := writeCharTokenizer(t)
	tok, err := tokenizer.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	models.Tokenizer, models.TokenizerPath = tok, path
	s := newServer(t, models, nil)
	ts := startServer(t, s)

	body := map[string]any{"prompt": "  hi  ", "steps": 4, "gen_length": 4, "block_length": 4}
	resp := post(t, context.Background(), ts.URL+"/v1/text", body, true)
	events := readEvents(t, resp.Body)
	resp.Body.Close()
	var start textStart
	if err := json.Unmarshal(events[1].Data, &start); err != nil {
		t.Fatal(err)
	}
	// BOS <|start_header_id|> user <|end_header_id|> \n hi <|eot_id|>
	// <|start_header_id|> assistant <|end_header_id|> \n
	want := []int64{240, 251, 'u', 's', 'e', 'r', 252, '\n', 'h', 'i', 254, 251, 'a', 's', 's', 'i', 's', 't', 'a', 'n', 't', 252, '\n'}
	if !slices.Equal(start.PromptIDs, want) {
		t.Errorf("prompt ids %v, want the chat layout %v", start.PromptIDs, want)
	}
	if start.PromptText == nil || *start.PromptText != tok.Decode(want, false) {
		t.Errorf("prompt_text %v, want the decoded prompt %q", start.PromptText, tok.Decode(want, false))
	}
	var st textStep
	if err := json.Unmarshal(events[2].Data, &st); err != nil {
		t.Fatal(err)
	}
	if len(st.Pieces) != len(st.Tokens) {
		t.Errorf("step has %d pieces for %d tokens", len(st.Pieces), len(st.Tokens))
	}
	var result textResult
	if err := json.Unmarshal(events[len(events)-1].Data, &result); err != nil {
		t.Fatal(err)
	}
	if result.Text == nil {
		t.Fatal("result text is null with a tokenizer loaded")
	}
	if got := tok.Decode(result.IDs[len(want):], true); *result.Text != got {
		t.Errorf("text %q, want the decoded answer %q", *result.Text, got)
	}
}
