package frontend

import (
	"encoding/json"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLoadTinyConfig(t *testing.T) {
	for _, path := range []string{tinyF32Dir, filepath.Join(tinyF32Dir, "config.json")} {
		c, err := LoadLLaDAConfig(path)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if c.DModel != 64 || c.NHeads != 4 || c.NLayers != 2 || c.HeadDim() != 16 {
			t.Errorf("sizes d_model=%d n_heads=%d n_layers=%d head_dim=%d", c.DModel, c.NHeads, c.NLayers, c.HeadDim())
		}
		if c.MLPHidden() != 160 || c.Vocab() != 320 || c.Tied() {
			t.Errorf("mlp=%d vocab=%d tied=%v, want 160, 320, false", c.MLPHidden(), c.Vocab(), c.Tied())
		}
		if c.RoPETheta != 500000 || c.RMSNormEps != 1e-5 || c.TorchDType != "float32" {
			t.Errorf("rope_theta=%g rms_norm_eps=%g torch_dtype=%q", c.RoPETheta, c.RMSNormEps, c.TorchDType)
		}
		if c.MultiQueryAttention != nil || c.InitCutoffFactor != nil {
			t.Error("null fields decoded as set")
		}
		if c.LLMVocabSize != 256 || c.CodebookSize != 64 || c.NumVQTokens != 16 || c.NewVocabSize != 320 {
			t.Errorf("MMaDA sizes %d %d %d %d", c.LLMVocabSize, c.CodebookSize, c.NumVQTokens, c.NewVocabSize)
		}
		want := map[string]int64{
			"bos": 240, "eos": 241, "soi": 244, "eoi": 245, "t2i": 248, "mmu": 249,
			"ipad": 253, "mask": 250, "start_header": 251, "end_header": 252, "eot_id": 254,
		}
		if got := c.SpecialTokenIDs(); !maps.Equal(got, want) {
			t.Errorf("SpecialTokenIDs = %v, want %v", got, want)
		}
		if c.ImageTokenOffset() != 256 {
			t.Errorf("ImageTokenOffset = %d, want 256", c.ImageTokenOffset())
		}
	}
}

// mmada8BConfig returns the config object of the MMaDA-8B manifest.
func mmada8BConfig(t *testing.T) []byte {
	t.Helper()
	config, _, err := LoadManifest("testdata/mmada-8b-tensors.json")
	if err != nil {
		t.Fatal(err)
	}
	return config
}

func TestMMaDA8BConfigDefaults(t *testing.T) {
	c, err := ParseLLaDAConfig(mmada8BConfig(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if c.HeadDim() != 128 || c.MLPHidden() != 12288 || c.Vocab() != 134656 || c.Tied() {
		t.Errorf("head_dim=%d mlp=%d vocab=%d tied=%v", c.HeadDim(), c.MLPHidden(), c.Vocab(), c.Tied())
	}
	ids := c.SpecialTokenIDs()
	want := map[string]int64{
		"bos": 126080, "eos": 126081, "soi": 126084, "eoi": 126085, "t2i": 126088, "mmu": 126089,
		"ipad": 126093, "mask": 126336, "start_header": 126346, "end_header": 126347, "eot_id": 126348,
	}
	if !maps.Equal(ids, want) {
		t.Errorf("SpecialTokenIDs = %v, want %v", ids, want)
	}
	if c.ImageTokenOffset() != 126349 {
		t.Errorf("ImageTokenOffset = %d", c.ImageTokenOffset())
	}
	ids["mask"] = 1
	if c.SpecialTokenIDs()["mask"] != 126336 {
		t.Error("SpecialTokenIDs returned shared state")
	}
}

func TestSpecialTokensPrecedence(t *testing.T) {
	c, err := ParseLLaDAConfig([]byte(`{"mask_token_id": 7, "eos_token_id": 8, "special_tokens": {"eos": 9, "extra": 3}}`))
	if err != nil {
		t.Fatal(err)
	}
	ids := c.SpecialTokenIDs()
	if ids["mask"] != 7 || ids["eos"] != 9 || ids["extra"] != 3 || ids["soi"] != 126084 {
		t.Errorf("ids = %v; want mask from mask_token_id, eos from special_tokens, extra kept, soi defaulted", ids)
	}
}

func TestConfigDefaultsAndNulls(t *testing.T) {
	c, err := ParseLLaDAConfig([]byte(`{"d_model": 8, "n_heads": 2, "mlp_hidden_size": null, "embedding_size": null,
		"rope_theta": null, "n_kv_heads": null, "future_field": {"x": [1, 2]}}`))
	if err != nil {
		t.Fatal(err)
	}
	if c.MLPHidden() != 32 {
		t.Errorf("MLPHidden = %d, want mlp_ratio 4 * d_model 8", c.MLPHidden())
	}
	if c.RoPETheta != 10000 || c.RMSNormEps != 1e-5 || !c.WeightTying || c.ActivationType != "swiglu" {
		t.Errorf("upstream defaults not applied: %+v", c)
	}
	if c.Vocab() != 0 || c.EmbeddingSize != nil {
		t.Errorf("Vocab = %d, want vocab_size's 0", c.Vocab())
	}
}

func TestConfigParseErrors(t *testing.T) {
	if _, err := ParseLLaDAConfig([]byte(`{"d_model": "big"}`)); err == nil || !strings.Contains(err.Error(), "d_model") {
		t.Errorf("string d_model: err = %v", err)
	}
	if _, err := ParseLLaDAConfig([]byte(`[1]`)); err == nil {
		t.Error("a JSON array parsed as a config")
	}
	path := filepath.Join(t.TempDir(), "config.json")
	os.WriteFile(path, []byte(`{"d_model": `), 0o644)
	if _, err := LoadLLaDAConfig(path); err == nil || !strings.Contains(err.Error(), path) {
		t.Errorf("truncated file: err = %v, want one naming the file", err)
	}
	if _, err := LoadLLaDAConfig(t.TempDir()); err == nil || !strings.Contains(err.Error(), "config.json") {
		t.Errorf("folder without config.json: err = %v", err)
	}
}

// tinyConfigWith returns the tiny test config with key set to value (a JSON
// literal).
func tinyConfigWith(t *testing.T, key, value string) *LLaDAConfig {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(tinyF32Dir, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatal(err)
	}
	if value == "" {
		delete(m, key)
	} else {
		m[key] = json.RawMessage(value)
	}
	data, _ = json.Marshal(m)
	c, err := ParseLLaDAConfig(data)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestValidateRejects(t *testing.T) {
	cases := []struct {
		key, value string
		want       string
	}{
		{"alibi", "true", "alibi is true; only false"},
		{"rope", "false", "rope is false; only true"},
		{"rope", "", "rope is false; only true"},
		{"block_group_size", "2", "block_group_size is 2; only 1"},
		{"block_type", `"sequential"`, `block_type is "sequential"; only "llama"`},
		{"layer_norm_type", `"default"`, `layer_norm_type is "default"; only "rms"`},
		{"activation_type", `"swiglu"`, `activation_type is "swiglu"; only "silu"`},
		{"include_bias", "true", "include_bias is true"},
		{"include_qkv_bias", "true", "include_qkv_bias is true"},
		{"bias_for_layer_norm", "true", "bias_for_layer_norm is true"},
		{"attention_layer_norm", "true", "attention_layer_norm is true"},
		{"scale_logits", "true", "scale_logits is true"},
		{"input_emb_norm", "true", "input_emb_norm is true"},
		{"multi_query_attention", "true", "multi_query_attention is true"},
		{"n_kv_heads", "2", "n_kv_heads is 2; only multi-head attention with n_kv_heads equal to n_heads (4)"},
		{"d_model", "66", "d_model is 66; it must be a multiple of n_heads (4)"},
		{"d_model", "12", "d_model/n_heads is 3; RoPE needs an even head dimension"},
		{"n_heads", "0", "n_heads is 0; it must be positive"},
		{"n_layers", "0", "n_layers is 0"},
		{"vocab_size", "0", "vocab_size is 0; it must be positive"},
		{"embedding_size", "-1", "embedding_size is -1"},
		{"mlp_hidden_size", "0", "mlp_hidden_size (or mlp_ratio*d_model) is 0"},
		{"rope_theta", "0", "rope_theta is 0"},
		{"rms_norm_eps", "-1", "rms_norm_eps is -1"},
		{"mask_token_id", "320", "mask_token_id is 320; token ids must lie in [0, 320)"},
		{"special_tokens", `{"soi": -1}`, `special_tokens["soi"] is -1`},
		{"image_token_offset", "300", "image_token_offset is 300"},
	}
	for _, tc := range cases {
		t.Run(tc.key+"="+tc.value, func(t *testing.T) {
			err := tinyConfigWith(t, tc.key, tc.value).Validate()
			if err == nil {
				t.Fatal("Validate accepted the config")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not contain %q", err, tc.want)
			}
		})
	}
}

func TestValidateAccepts(t *testing.T) {
	cases := []struct{ key, value string }{
		{"attention_dropout", "0.1"},
		{"residual_dropout", "0.5"},
		{"embedding_dropout", "0.2"},
		{"n_kv_heads", "0"},
		{"n_kv_heads", "null"},
		{"n_kv_heads", "4"},
		{"multi_query_attention", "false"},
		{"bias_for_layer_norm", "false"},
		{"mlp_hidden_size", "null"},
		{"embedding_size", "null"},
		{"flash_attention", "true"},
		{"special_tokens", ""},
		{"image_token_offset", ""},
	}
	for _, tc := range cases {
		if err := tinyConfigWith(t, tc.key, tc.value).Validate(); err != nil {
			t.Errorf("%s=%s: %v", tc.key, tc.value, err)
		}
	}
}

func TestValidateListsEveryProblem(t *testing.T) {
	c, err := ParseLLaDAConfig([]byte(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	err = c.Validate()
	if err == nil {
		t.Fatal("an empty config validated")
	}
	for _, field := range []string{"d_model", "n_heads", "n_layers", "block_type", "activation_type", "layer_norm_type", "rope", "vocab_size"} {
		if !strings.Contains(err.Error(), field+" is") {
			t.Errorf("error does not mention %s:\n%v", field, err)
		}
	}
}
